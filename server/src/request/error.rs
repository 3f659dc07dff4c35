//! One error type for every handler, and the one place where an error becomes a response:
//! JSON for the API, a page for browsers, Prometheus's shape for `/prometheus`. Errors are
//! typed where they arise (the auth service, the engine and upstream clients, the
//! remote-write decoder) and converted into [`ApiError`]; their status, machine code,
//! `Retry-After` and wording are decided here and nowhere else. Internals (store, hashing
//! and rendering faults) are logged here and shown only as "internal".

use crate::alerting::AlertingError;
use std::time::Duration;

use http::header::{ALLOW, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use perch_auth::{AuthError, Principal};
use perch_remote_write::DecodeError;
use perch_upstream::{Body, UpstreamError};
use serde::Serialize;

use super::{json, message, see_other, text};
use crate::backup::BackupError;
use crate::engine::{EngineError, OverLimit};

/// How a route's errors are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// `{"error": "...", "code": "..."}` (the JSON API, `/metrics`, remote write).
    Api,
    /// An HTML page, or a redirect to the login form (browsers).
    Page,
    /// `{"status": "error", "errorType": "...", "error": "..."}` (the Prometheus API).
    Prometheus,
}

/// Which path met the engine's error: writers keep their samples and retry; readers are
/// told what happened to their query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineOp {
    Write,
    Query,
}

/// Why a request body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Over the route's limit (the text names it).
    TooLarge(&'static str),
    Unreadable,
    Timeout,
    /// The bodies being read already hold the whole body budget.
    Busy,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Nobody signed in. Pages go to `sign_in` (the login or setup form) instead.
    #[error("log in first")]
    Unauthenticated { sign_in: Option<String> },
    #[error("choose a new password first")]
    PasswordChangeRequired,
    #[error("type the code from your authenticator app first (POST /v1/login/second-factor)")]
    SecondFactorRequired,
    #[error("set up a second factor first (the Two-factor page)")]
    SecondFactorEnrolmentRequired,
    #[error(
        "the request did not come from this site's own page (CSRF check failed); reload the page and try again"
    )]
    Csrf,
    #[error("{0}")]
    BadInput(String),
    /// A signed-in caller whose role or token does not reach the route: what it needs.
    #[error("{0}")]
    NotAllowed(String),
    #[error("no such {0}")]
    NotFound(&'static str),
    /// No route has this path.
    #[error("no such path")]
    NoRoute,
    /// A route has the path, with other methods.
    #[error("use {}", .0.join(" or "))]
    MethodNotAllowed(Vec<&'static str>),
    #[error("{}", body_message(*.0))]
    Body(BodyError),
    #[error("internal error")]
    Render(perch_ui::Error),
    #[error("{}", engine_message(*op, error))]
    Engine { op: EngineOp, error: EngineError },
    #[error("{0}")]
    WriteData(DecodeError),
    #[error(
        "the metrics engine refused the data (HTTP {0}): out-of-order or duplicate samples are the usual cause; do not retry this request"
    )]
    EngineRefusedData(StatusCode),
    #[error("the metrics engine answered {0}; retry")]
    EngineFailed(StatusCode),
    #[error("/api/v1/{0} is not served here")]
    QueryNotServed(String),
    #[error("too many queries at once for this user; retry when one finishes")]
    TooManyQueries,
    #[error(
        "node {node} has created {} new series in the last hour, the most it may (--max-new-series-per-node); the push is refused whole. A label whose value keeps changing (an id, a timestamp) is the usual cause",
        .over.limit
    )]
    SeriesLimit { node: String, over: OverLimit },
    #[error("{0}.")]
    Upstream(UpstreamError),
    /// A proxied path an upstream could resolve outside its prefix.
    #[error(
        "The path holds a '.' or '..' segment, an encoded '/' or a backslash; ask for the path itself."
    )]
    EvasivePath,
    #[error("{0}")]
    BadRange(String),
    #[error("There is no such dashboard.")]
    NoDashboard,
    #[error("There is no such file.")]
    NoAsset,
    #[error("{name}.toml: {fault}. Fix the file; the page reads it again on each visit.")]
    BrokenDashboard { name: String, fault: String },
    #[error("{0}")]
    Backup(#[from] crate::backup::BackupError),
    /// Query Analytics' store of query texts cannot be read or written.
    #[error(
        "Query Analytics cannot store query texts now ({0}); the agent sends the report again."
    )]
    QanStore(#[from] perch_qan::StoreError),
    /// vmalert or Alertmanager refused a change or did not answer.
    #[error("{0}")]
    Alerting(#[from] AlertingError),
}

fn body_message(e: BodyError) -> &'static str {
    match e {
        BodyError::TooLarge(limit) => limit,
        BodyError::Unreadable => "The request body could not be read.",
        BodyError::Timeout => "The request body did not arrive in time.",
        BodyError::Busy => {
            "The server is reading too many request bodies at once; retry in a moment."
        }
    }
}

fn engine_message(op: EngineOp, e: &EngineError) -> String {
    match (op, e) {
        (EngineOp::Write, EngineError::Unavailable(why)) => {
            format!("the metrics engine is {why}; keep the samples and retry")
        }
        (EngineOp::Write, EngineError::Timeout(_)) => {
            "the metrics engine did not answer in time; retry".into()
        }
        (EngineOp::Write, EngineError::NoAnswer) => {
            "the metrics engine did not answer; retry".into()
        }
        (EngineOp::Write, EngineError::BadRequest) => "internal error".into(),
        (EngineOp::Query, EngineError::Unavailable(why)) => {
            format!("the metrics engine is {why}")
        }
        (EngineOp::Query, EngineError::Timeout(limit)) => {
            format!("the query did not finish within {limit:?}")
        }
        (EngineOp::Query, EngineError::NoAnswer) => "the metrics engine did not answer".into(),
        (EngineOp::Query, EngineError::BadRequest) => "the request target is not valid".into(),
    }
}

impl ApiError {
    /// The engine's failure on the write or the query path.
    pub fn engine(op: EngineOp, error: EngineError) -> Self {
        Self::Engine { op, error }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Auth(e) => auth_status(e),
            Self::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Self::PasswordChangeRequired
            | Self::Csrf
            | Self::SecondFactorEnrolmentRequired
            | Self::NotAllowed(_) => StatusCode::FORBIDDEN,
            Self::SecondFactorRequired => StatusCode::UNAUTHORIZED,
            Self::BadInput(_)
            | Self::EvasivePath
            | Self::BadRange(_)
            | Self::EngineRefusedData(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_)
            | Self::NoRoute
            | Self::NoDashboard
            | Self::NoAsset
            | Self::QueryNotServed(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Body(BodyError::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Body(BodyError::Unreadable) => StatusCode::BAD_REQUEST,
            Self::Body(BodyError::Timeout) => StatusCode::REQUEST_TIMEOUT,
            Self::Body(BodyError::Busy) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Render(_) | Self::BrokenDashboard { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Engine {
                op,
                error: EngineError::BadRequest,
            } => match op {
                EngineOp::Write => StatusCode::INTERNAL_SERVER_ERROR,
                EngineOp::Query => StatusCode::BAD_REQUEST,
            },
            Self::Engine { .. } | Self::EngineFailed(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::WriteData(e) if too_large(e) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::WriteData(_) => StatusCode::BAD_REQUEST,
            Self::TooManyQueries | Self::SeriesLimit { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Upstream(UpstreamError::Timeout { .. }) => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream(UpstreamError::BadTarget { .. }) => StatusCode::BAD_REQUEST,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Backup(BackupError::Busy | BackupError::NoDir) => StatusCode::CONFLICT,
            Self::Backup(BackupError::Engine(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Backup(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::QanStore(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Alerting(AlertingError::BadInput(_)) => StatusCode::BAD_REQUEST,
            Self::Alerting(AlertingError::NotFound(_)) => StatusCode::NOT_FOUND,
            Self::Alerting(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable machine code of the JSON API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Auth(e) => auth_code(e),
            Self::Unauthenticated { .. } => "unauthenticated",
            Self::PasswordChangeRequired => "password_change_required",
            Self::SecondFactorRequired => "second_factor_required",
            Self::SecondFactorEnrolmentRequired => "second_factor_enrolment_required",
            Self::Csrf => "csrf",
            Self::NotAllowed(_) => "forbidden",
            Self::BadInput(_) | Self::BadRange(_) | Self::Body(BodyError::Unreadable) => {
                "bad_input"
            }
            Self::NotFound(_)
            | Self::NoRoute
            | Self::NoDashboard
            | Self::NoAsset
            | Self::QueryNotServed(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Body(BodyError::TooLarge(_)) => "too_large",
            Self::Body(BodyError::Timeout) => "timeout",
            Self::Body(BodyError::Busy) => "busy",
            Self::Render(_) | Self::BrokenDashboard { .. } => "internal",
            Self::Engine { op, error } => match (op, error) {
                (_, EngineError::Timeout(_)) => "timeout",
                (EngineOp::Write, EngineError::BadRequest) => "internal",
                (EngineOp::Query, EngineError::BadRequest) => "bad_data",
                _ => "unavailable",
            },
            Self::WriteData(e) if too_large(e) => "too_large",
            Self::WriteData(_) => "bad_data",
            Self::EngineRefusedData(_) => "refused_by_engine",
            Self::EngineFailed(_) | Self::TooManyQueries => "unavailable",
            Self::SeriesLimit { .. } => "series_limit",
            Self::Upstream(UpstreamError::Timeout { .. }) => "upstream_timeout",
            Self::Upstream(UpstreamError::BadTarget { .. }) | Self::EvasivePath => "bad_request",
            Self::Upstream(_) => "upstream_unavailable",
            Self::Backup(BackupError::Busy) => "busy",
            Self::Backup(BackupError::NoDir) => "no_backup_dir",
            Self::Backup(BackupError::Engine(_)) => "unavailable",
            Self::Backup(_) => "backup_failed",
            Self::QanStore(_) => "unavailable",
            Self::Alerting(AlertingError::BadInput(_)) => "bad_input",
            Self::Alerting(AlertingError::NotFound(_)) => "not_found",
            Self::Alerting(_) => "unavailable",
        }
    }

    /// Advice beside the message (a password the policy refused).
    pub fn suggestion(&self) -> Option<&str> {
        match self {
            Self::Auth(AuthError::Policy(r)) => r.suggestion.as_deref(),
            _ => None,
        }
    }

    /// How long the client should wait before trying again, when that helps.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Auth(AuthError::Throttled { retry_after }) => Some(*retry_after),
            Self::Auth(AuthError::Store(e)) if e.unavailable().is_some() => {
                Some(Duration::from_secs(10))
            }
            Self::Engine {
                error: EngineError::BadRequest,
                ..
            } => None,
            Self::Engine {
                op: EngineOp::Write,
                ..
            }
            | Self::EngineFailed(_)
            | Self::QanStore(_) => Some(Duration::from_secs(10)),
            Self::Engine {
                op: EngineOp::Query,
                ..
            }
            | Self::TooManyQueries => Some(Duration::from_secs(5)),
            Self::Body(BodyError::Busy) => Some(Duration::from_secs(1)),
            Self::SeriesLimit { over, .. } => Some(over.retry_after),
            _ => None,
        }
    }

    /// `Retry-After` on `resp` when waiting helps (also for a form shown again after a
    /// throttled login).
    pub fn add_retry_after(&self, resp: &mut Response<Body>) {
        if let Some(wait) = self.retry_after()
            && let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
        {
            resp.headers_mut().insert(RETRY_AFTER, v);
        }
    }

    /// The title of the page that shows this error.
    fn title(&self) -> &'static str {
        match self {
            Self::Upstream(UpstreamError::Timeout { .. }) => "Gateway timeout",
            Self::Upstream(UpstreamError::BadTarget { .. }) | Self::EvasivePath => "Bad request",
            Self::Upstream(_) => "Bad gateway",
            Self::BadRange(_) => "Cannot show that range",
            Self::BrokenDashboard { .. } => "This dashboard file is broken",
            _ => match self.status() {
                StatusCode::FORBIDDEN => "Not allowed",
                StatusCode::NOT_FOUND => "Not found",
                StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
                s if s.is_server_error() => "Something went wrong",
                _ => "Cannot do that",
            },
        }
    }

    /// Prometheus's `errorType`.
    fn error_type(&self) -> &'static str {
        match self.status() {
            StatusCode::BAD_REQUEST => "bad_data",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => match self {
                Self::Engine {
                    error: EngineError::Timeout(_),
                    ..
                } => "timeout",
                _ => "unavailable",
            },
            StatusCode::INTERNAL_SERVER_ERROR => "internal",
            _ => self.code(),
        }
    }

    /// The response, in the route's face; `who` fills a page's navigation bar.
    pub fn into_response(self, face: Face, who: Option<&Principal>) -> Response<Body> {
        if matches!(
            self,
            Self::Auth(AuthError::Store(_) | AuthError::Hash(_)) | Self::Render(_)
        ) {
            tracing::error!(error = ?self, "request failed");
        }
        let status = self.status();
        let mut resp = match face {
            Face::Api => {
                #[derive(Serialize)]
                struct Out<'a> {
                    error: String,
                    code: &'a str,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    suggestion: Option<&'a str>,
                }
                json(
                    status,
                    &Out {
                        error: self.to_string(),
                        code: self.code(),
                        suggestion: self.suggestion(),
                    },
                )
            }
            Face::Prometheus => json(
                status,
                &serde_json::json!({
                    "status": "error",
                    "errorType": self.error_type(),
                    "error": self.to_string(),
                }),
            ),
            Face::Page => self.page(who),
        };
        self.add_retry_after(&mut resp);
        let headers = resp.headers_mut();
        match &self {
            Self::Unauthenticated { .. } if face != Face::Page => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"perch\""),
                );
            }
            Self::MethodNotAllowed(allowed) => {
                if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                    headers.insert(ALLOW, v);
                }
            }
            _ => {}
        }
        resp
    }

    /// A browser's answer: the login or password form for who must go there first, the
    /// message page otherwise.
    fn page(&self, who: Option<&Principal>) -> Response<Body> {
        let status = self.status();
        match self {
            Self::Unauthenticated { sign_in } => see_other(sign_in.as_deref().unwrap_or("/login")),
            Self::PasswordChangeRequired => see_other("/password"),
            Self::SecondFactorRequired => see_other("/login/second-factor"),
            Self::SecondFactorEnrolmentRequired => see_other("/two-factor"),
            Self::MethodNotAllowed(_) => text(status, "This method is not allowed here.\n"),
            Self::NoRoute => {
                page_or_text(message(who, status, self.title(), "There is no page here."))
            }
            _ => page_or_text(message(
                who,
                status,
                self.title(),
                &super::sentence(&self.to_string()),
            )),
        }
    }
}

/// The message page, or plain text when even that cannot be rendered.
fn page_or_text(page: Result<Response<Body>, ApiError>) -> Response<Body> {
    page.unwrap_or_else(|e| {
        tracing::error!(error = ?e, "the error page could not be rendered");
        text(StatusCode::INTERNAL_SERVER_ERROR, "Internal error.\n")
    })
}

fn too_large(e: &DecodeError) -> bool {
    matches!(
        e,
        DecodeError::CompressedTooLarge { .. } | DecodeError::DecompressedTooLarge { .. }
    )
}

fn auth_status(e: &AuthError) -> StatusCode {
    match e {
        AuthError::BadCredentials | AuthError::BadEnrollToken => StatusCode::UNAUTHORIZED,
        AuthError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        AuthError::Policy(_) | AuthError::BadInput(_) | AuthError::WrongCurrentPassword => {
            StatusCode::BAD_REQUEST
        }
        AuthError::InvalidCode => StatusCode::UNAUTHORIZED,
        AuthError::NameTaken
        | AuthError::NodeNameTaken(_)
        | AuthError::LastAdmin
        | AuthError::SelfDelete => StatusCode::CONFLICT,
        AuthError::NotFound(_) => StatusCode::NOT_FOUND,
        AuthError::SetupDone => StatusCode::GONE,
        AuthError::BadSetupCode | AuthError::Forbidden => StatusCode::FORBIDDEN,
        AuthError::Store(e) if e.unavailable().is_some() => StatusCode::SERVICE_UNAVAILABLE,
        AuthError::Store(_) | AuthError::Hash(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn auth_code(e: &AuthError) -> &'static str {
    match e {
        AuthError::BadCredentials => "invalid_credentials",
        AuthError::Throttled { .. } => "throttled",
        AuthError::Policy(r) => r.rule.code(),
        AuthError::WrongCurrentPassword => "wrong_current_password",
        AuthError::InvalidCode => "invalid_code",
        AuthError::NameTaken => "name_taken",
        AuthError::NodeNameTaken(_) => "node_exists",
        AuthError::BadEnrollToken => "bad_enroll_token",
        AuthError::BadInput(_) => "bad_input",
        AuthError::NotFound(_) => "not_found",
        AuthError::LastAdmin => "last_admin",
        AuthError::SelfDelete => "self_delete",
        AuthError::SetupDone => "setup_done",
        AuthError::BadSetupCode => "bad_setup_code",
        AuthError::Forbidden => "forbidden",
        AuthError::Store(e) if e.unavailable().is_some() => "store_unavailable",
        AuthError::Store(_) | AuthError::Hash(_) => "internal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(resp: Response<Body>) -> serde_json::Value {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn the_api_face_is_json_with_a_code() {
        let resp = ApiError::Auth(AuthError::Throttled {
            retry_after: Duration::from_millis(300),
        })
        .into_response(Face::Api, None);
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[RETRY_AFTER], "1");
        assert_eq!(body(resp).await["code"], "throttled");

        let resp = ApiError::Unauthenticated { sign_in: None }.into_response(Face::Api, None);
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(resp.headers().contains_key(WWW_AUTHENTICATE));
        assert_eq!(body(resp).await["error"], "log in first");
    }

    #[tokio::test]
    async fn internals_are_not_shown() {
        let e = ApiError::Auth(AuthError::Store(perch_auth::StoreError::Conflict(
            "secret detail".into(),
        )));
        let resp = e.into_response(Face::Api, None);
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let v = body(resp).await;
        assert_eq!(
            (v["error"].as_str(), v["code"].as_str()),
            (Some("internal error"), Some("internal"))
        );
    }

    #[tokio::test]
    async fn the_prometheus_face_has_prometheus_error_types() {
        let cases = [
            (
                ApiError::QueryNotServed("admin/x".into()),
                404,
                "not_found",
                None,
            ),
            (ApiError::TooManyQueries, 429, "unavailable", Some("5")),
            (
                ApiError::engine(
                    EngineOp::Query,
                    EngineError::Timeout(Duration::from_secs(1)),
                ),
                503,
                "timeout",
                Some("5"),
            ),
            (
                ApiError::engine(EngineOp::Query, EngineError::BadRequest),
                400,
                "bad_data",
                None,
            ),
        ];
        for (e, status, error_type, retry) in cases {
            let resp = e.into_response(Face::Prometheus, None);
            assert_eq!(resp.status(), status);
            assert_eq!(
                resp.headers().get(RETRY_AFTER).map(|v| v.to_str().unwrap()),
                retry
            );
            let v = body(resp).await;
            assert_eq!(
                (v["status"].as_str(), v["errorType"].as_str()),
                (Some("error"), Some(error_type))
            );
        }
    }

    #[tokio::test]
    async fn writers_are_told_to_keep_their_samples() {
        let e = ApiError::engine(EngineOp::Write, EngineError::Unavailable("starting".into()));
        let resp = e.into_response(Face::Api, None);
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[RETRY_AFTER], "10");
        let v = body(resp).await;
        assert_eq!(v["code"], "unavailable");
        assert!(v["error"].as_str().unwrap().contains("keep the samples"));
    }

    #[test]
    fn pages_send_who_must_sign_in_to_the_form() {
        let resp = ApiError::Unauthenticated {
            sign_in: Some("/setup".into()),
        }
        .into_response(Face::Page, None);
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(resp.headers()[http::header::LOCATION], "/setup");
        let resp = ApiError::MethodNotAllowed(vec!["GET", "HEAD"]).into_response(Face::Page, None);
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(resp.headers()[ALLOW], "GET, HEAD");
    }
}
