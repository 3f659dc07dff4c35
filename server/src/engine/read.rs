//! Queries Perch makes itself (for its dashboards): the Prometheus API's `query_range`,
//! `query` and label values, answered as typed series. The answer is read whole, bounded in
//! size; PromQL errors keep Prometheus's error type and message.

use std::collections::BTreeMap;

use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use perch_upstream as upstream;
use serde::Deserialize;

use super::{Engine, EngineError};

/// Largest answer read (a dashboard panel's worth, with room).
const MAX_ANSWER: usize = 32 * 1024 * 1024;

/// A query that gave no series.
#[derive(Debug)]
pub enum ReadError {
    Engine(EngineError),
    /// The engine refused the query: Prometheus's `errorType` (`bad_data`, `timeout`, ...)
    /// and message.
    Query {
        kind: String,
        message: String,
    },
    /// The answer was not the Prometheus API's JSON.
    Decode,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Engine(EngineError::Unavailable(why)) => {
                write!(f, "the metrics engine is unavailable: {why}")
            }
            Self::Engine(EngineError::Timeout(after)) => write!(
                f,
                "the metrics engine did not answer within {} s",
                after.as_secs()
            ),
            Self::Engine(_) => f.write_str("the metrics engine gave no answer"),
            Self::Query { kind, message } => write!(f, "{kind}: {message}"),
            Self::Decode => f.write_str("the metrics engine's answer could not be read"),
        }
    }
}

impl From<EngineError> for ReadError {
    fn from(e: EngineError) -> Self {
        Self::Engine(e)
    }
}

/// One series of a range query: its labels and its samples (unix seconds, value).
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(i64, f64)>,
}

/// One series of an instant query.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Deserialize)]
struct Answer<T> {
    status: String,
    data: Option<T>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data<R> {
    #[serde(rename = "resultType")]
    result_type: String,
    result: R,
}

#[derive(Deserialize)]
struct MatrixEntry {
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

#[derive(Deserialize)]
struct VectorEntry {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

/// Prometheus sends sample values as strings ("NaN", "+Inf" included).
fn value(s: &str) -> f64 {
    match s {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap_or(f64::NAN),
    }
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Engine {
    /// The body of a GET to the engine's HTTP API at `path_and_query`.
    pub(super) async fn get(&self, path_and_query: &str) -> Result<bytes::Bytes, ReadError> {
        let targets = self.targets()?;
        let uri = targets
            .query
            .uri(path_and_query)
            .map_err(|_| ReadError::Engine(EngineError::BadRequest))?;
        let request = Request::builder()
            .method(Method::GET)
            .uri(uri)
            .header(http::header::ACCEPT, "application/json")
            .body(
                Full::new(bytes::Bytes::new())
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .map_err(|_| ReadError::Engine(EngineError::BadRequest))?;
        let response = upstream::send(&targets.query, request)
            .await
            .map_err(EngineError::from)?;
        let body = tokio::time::timeout(
            targets.query.timeout,
            upstream::read_body(response.into_body(), MAX_ANSWER),
        )
        .await
        .map_err(|_| ReadError::Engine(EngineError::Timeout(targets.query.timeout)))?
        .map_err(|_| ReadError::Engine(EngineError::NoAnswer))?;
        Ok(body)
    }

    /// GETs `path_and_query` (`/api/v1/...`) from the engine's Prometheus API and decodes
    /// the answer's `data`.
    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> Result<T, ReadError> {
        let body = self.get(path_and_query).await?;
        let answer: Answer<T> = serde_json::from_slice(&body).map_err(|_| ReadError::Decode)?;
        match (answer.status.as_str(), answer.data) {
            ("success", Some(data)) => Ok(data),
            _ => Err(ReadError::Query {
                // VictoriaMetrics says 422 (or 400) where Prometheus says bad_data.
                kind: match answer.error_type.as_deref() {
                    Some("422" | "400") => "bad_data".into(),
                    Some(kind) => kind.to_owned(),
                    None => "error".into(),
                },
                message: answer.error.unwrap_or_default(),
            }),
        }
    }

    /// `query_range` from `start` to `end` (unix seconds) every `step` seconds.
    pub async fn query_range(
        &self,
        expr: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Vec<RangeSeries>, ReadError> {
        let path = format!(
            "/api/v1/query_range?query={}&start={start}&end={end}&step={step}",
            encode(expr)
        );
        let data: Data<serde_json::Value> = self.read(&path).await?;
        if data.result_type != "matrix" {
            return Err(ReadError::Decode);
        }
        let entries: Vec<MatrixEntry> =
            serde_json::from_value(data.result).map_err(|_| ReadError::Decode)?;
        Ok(entries
            .into_iter()
            .map(|e| RangeSeries {
                labels: e.metric,
                points: e
                    .values
                    .iter()
                    .map(|(t, v)| (*t as i64, value(v)))
                    .collect(),
            })
            .collect())
    }

    /// An instant `query` at `time` (unix seconds); a scalar answer is one sample without
    /// labels.
    pub async fn query_instant(
        &self,
        expr: &str,
        time: i64,
    ) -> Result<Vec<InstantSample>, ReadError> {
        let path = format!("/api/v1/query?query={}&time={time}", encode(expr));
        let data: Data<serde_json::Value> = self.read(&path).await?;
        match data.result_type.as_str() {
            "vector" => {
                let entries: Vec<VectorEntry> =
                    serde_json::from_value(data.result).map_err(|_| ReadError::Decode)?;
                Ok(entries
                    .into_iter()
                    .map(|e| InstantSample {
                        labels: e.metric,
                        value: value(&e.value.1),
                    })
                    .collect())
            }
            "scalar" => {
                let (_, v): (f64, String) =
                    serde_json::from_value(data.result).map_err(|_| ReadError::Decode)?;
                Ok(vec![InstantSample {
                    labels: BTreeMap::new(),
                    value: value(&v),
                }])
            }
            _ => Err(ReadError::Decode),
        }
    }

    /// The values of `label` on series matching `matcher` (e.g. `{job!="node"}`), over
    /// the engine's default lookback.
    pub async fn label_values(
        &self,
        label: &str,
        matcher: Option<&str>,
    ) -> Result<Vec<String>, ReadError> {
        let mut path = format!("/api/v1/label/{}/values", encode(label));
        if let Some(m) = matcher {
            path.push_str(&format!("?match[]={}", encode(m)));
        }
        self.read(&path).await
    }

    /// The label sets of series matching `matcher`.
    pub async fn series(
        &self,
        matcher: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<BTreeMap<String, String>>, ReadError> {
        let path = format!(
            "/api/v1/series?match[]={}&start={start}&end={end}",
            encode(matcher)
        );
        self.read(&path).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_prometheus_writes_them() {
        assert_eq!(value("1.5"), 1.5);
        assert_eq!(value("+Inf"), f64::INFINITY);
        assert_eq!(value("-Inf"), f64::NEG_INFINITY);
        assert!(value("NaN").is_nan());
    }

    #[test]
    fn matrix_answers_decode() {
        let text = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"mode":"user"},"values":[[1700000000,"0.5"],[1700000060,"NaN"]]}]}}"#;
        let answer: Answer<Data<serde_json::Value>> = serde_json::from_str(text).unwrap();
        let data = answer.data.unwrap();
        let entries: Vec<MatrixEntry> = serde_json::from_value(data.result).unwrap();
        assert_eq!(entries[0].metric["mode"], "user");
        assert_eq!(entries[0].values.len(), 2);
        let err = r#"{"status":"error","errorType":"bad_data","error":"unknown function"}"#;
        let answer: Answer<Data<serde_json::Value>> = serde_json::from_str(err).unwrap();
        assert_eq!(answer.error_type.as_deref(), Some("bad_data"));
        assert!(answer.data.is_none());
    }
}
