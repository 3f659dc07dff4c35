//! The server's own Prometheus metrics, served at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabels {
    pub node_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProxyRequestLabels {
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProxyRouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~13 s
    Histogram::new(exponential_buckets(0.0001, 2.5, 14))
}

/// Every metric the server exports about itself.
#[derive(Debug)]
pub struct SelfMetrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub open_connections: Gauge,
    pub connections_closed: Family<ReasonLabels, Counter>,
    pub handshake_failures: Family<ReasonLabels, Counter>,
    pub cert_expiry: Gauge,
    pub cert_reloads: Family<ReasonLabels, Counter>,
    pub access_log_dropped: Counter,
    pub login_failures: Family<ReasonLabels, Counter>,
    pub store_errors: Family<ReasonLabels, Counter>,
    pub engine_restarts: Counter,
    pub write_series: Counter,
    pub write_series_recalled: Counter,
    pub node_new_series: Family<NodeLabels, Counter>,
    pub node_series_refused: Family<NodeLabels, Counter>,
    pub proxy_requests: Family<ProxyRequestLabels, Counter>,
    pub proxy_latency: Family<ProxyRouteLabels, Histogram, fn() -> Histogram>,
    pub proxy_upstream_up: Family<ProxyRouteLabels, Gauge>,
    pub proxy_config_reloads: Family<ReasonLabels, Counter>,
    pub backup_last_success: Gauge,
    pub backup_failures: Counter,
    pub backup_last_duration: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub backup_last_size: Gauge,
    pub qan_dropped_queries: Counter,
    pub qan_texts: Gauge,
    pub qan_text_bytes: Gauge,
    /// By each node's `node_id`, `node_name` and labels; rebuilt from the enrolled nodes by
    /// the self-scrape before each round.
    pub node_last_push: Family<Vec<(String, String)>, Gauge>,
    /// When each node's last push was accepted (node id to Unix seconds), exactly; the
    /// user store keeps it to the minute.
    pub node_push_times: std::sync::Mutex<std::collections::HashMap<u64, i64>>,
    pub vmalert_restarts: Counter,
    pub alertmanager_restarts: Counter,
}

impl SelfMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("perch");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from request head to response head, by route",
            latency.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "open_connections",
            "Client connections open now (HTTPS and plain HTTP)",
            open_connections.clone(),
        );
        let connections_closed = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "connections_closed",
            "Client connections Perch closed, by reason: per_address_limit (at accept), idle",
            connections_closed.clone(),
        );
        let handshake_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed, by reason",
            handshake_failures.clone(),
        );
        let cert_expiry = Gauge::default();
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "End of validity of the served certificate, Unix time",
            cert_expiry.clone(),
        );
        let cert_reloads = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "tls_certificate_reloads",
            "Certificate reload attempts after a file change, by outcome",
            cert_reloads.clone(),
        );
        let access_log_dropped = Counter::default();
        registry.register(
            "access_log_dropped",
            "Access log lines dropped because the writer fell behind",
            access_log_dropped.clone(),
        );
        let login_failures = Family::<ReasonLabels, Counter>::default();
        // Every reason from the start, at 0: a rate over the first failures (the
        // brute-force alert) needs the counter's value before them.
        for reason in [
            "unknown_user",
            "bad_password",
            "bad_second_factor",
            "wrong_current_password",
            "throttled",
            "bad_setup_code",
        ] {
            let _ = login_failures.get_or_create(&ReasonLabels { reason });
        }
        registry.register(
            "login_failures",
            "Failed logins and setup attempts, by reason (unknown_user, bad_password, bad_second_factor, wrong_current_password, throttled, bad_setup_code)",
            login_failures.clone(),
        );
        let engine_restarts = Counter::default();
        registry.register(
            "metrics_engine_restarts",
            "Times the bundled metrics engine was (re)started after it stopped or could not start",
            engine_restarts.clone(),
        );
        let write_series = Counter::default();
        registry.register(
            "write_series",
            "Series accepted on the remote-write path",
            write_series.clone(),
        );
        let write_series_recalled = Counter::default();
        registry.register(
            "write_series_recalled",
            "Series accepted on the remote-write path whose labels were byte for byte those that passed in the sender's recent push (only their samples checked)",
            write_series_recalled.clone(),
        );
        let proxy_requests = Family::<ProxyRequestLabels, Counter>::default();
        registry.register(
            "proxy_requests",
            "Requests through the reverse proxy, by route (its name in the routes file) and status",
            proxy_requests.clone(),
        );
        let proxy_latency =
            Family::<ProxyRouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "proxy_request_duration_seconds",
            "Time from request head to the upstream's response head, by route",
            proxy_latency.clone(),
        );
        let proxy_upstream_up = Family::<ProxyRouteLabels, Gauge>::default();
        registry.register(
            "proxy_upstream_up",
            "1 if the route's upstream accepted a connection at the last check or request, else 0",
            proxy_upstream_up.clone(),
        );
        let node_new_series = Family::<NodeLabels, Counter>::default();
        registry.register(
            "node_new_series",
            "Series new to their node (not sent in the last hour or two), by node",
            node_new_series.clone(),
        );
        let node_series_refused = Family::<NodeLabels, Counter>::default();
        registry.register(
            "node_series_limit_refusals",
            "Pushes refused because their node reached --max-new-series-per-node, by node",
            node_series_refused.clone(),
        );
        let store_errors = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "store_errors",
            "Requests that met an error of the user store, by reason (no_space, read_only, quota, io, unavailable, corrupt, other)",
            store_errors.clone(),
        );
        let proxy_config_reloads = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "proxy_config_reloads",
            "Reloads of the routes file (SIGHUP), by outcome: ok or error (the old routes stay)",
            proxy_config_reloads.clone(),
        );
        let backup_last_success = Gauge::default();
        registry.register(
            "backup_last_success_timestamp_seconds",
            "When the last backup that succeeded was taken (Unix time; 0: none since start)",
            backup_last_success.clone(),
        );
        let backup_failures = Counter::default();
        registry.register(
            "backup_failures",
            "Backups that failed (scheduled, from the Backups page, or perch-server backup)",
            backup_failures.clone(),
        );
        let backup_last_duration = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "backup_last_duration_seconds",
            "How long the last successful backup took",
            backup_last_duration.clone(),
        );
        let backup_last_size = Gauge::default();
        registry.register(
            "backup_last_size_bytes",
            "The size of the last successful backup (encrypted)",
            backup_last_size.clone(),
        );
        let qan_dropped_queries = Counter::default();
        registry.register(
            "qan_dropped_queries",
            "Query fingerprints counted under \"other\": their service is at --qan-max-queries-per-service, or the text store is full",
            qan_dropped_queries.clone(),
        );
        let qan_texts = Gauge::default();
        registry.register(
            "qan_texts",
            "Query texts Query Analytics keeps (one per service and fingerprint)",
            qan_texts.clone(),
        );
        let qan_text_bytes = Gauge::default();
        registry.register(
            "qan_text_bytes",
            "Bytes of query texts and examples Query Analytics keeps",
            qan_text_bytes.clone(),
        );
        let node_last_push = Family::<Vec<(String, String)>, Gauge>::default();
        registry.register(
            "node_last_push_timestamp_seconds",
            "When each enrolled node's last push was accepted, Unix time (the node-down alert's clock)",
            node_last_push.clone(),
        );
        let vmalert_restarts = Counter::default();
        registry.register(
            "vmalert_restarts",
            "Times the bundled vmalert was (re)started after it stopped or could not start",
            vmalert_restarts.clone(),
        );
        let alertmanager_restarts = Counter::default();
        registry.register(
            "alertmanager_restarts",
            "Times the bundled Alertmanager was (re)started after it stopped or could not start",
            alertmanager_restarts.clone(),
        );
        registry.register(
            "build",
            "Build information",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        Self {
            registry,
            requests,
            latency,
            open_connections,
            connections_closed,
            handshake_failures,
            cert_expiry,
            cert_reloads,
            access_log_dropped,
            login_failures,
            store_errors,
            engine_restarts,
            write_series,
            write_series_recalled,
            node_new_series,
            node_series_refused,
            proxy_requests,
            proxy_latency,
            proxy_upstream_up,
            proxy_config_reloads,
            backup_last_success,
            backup_failures,
            backup_last_duration,
            backup_last_size,
            qan_dropped_queries,
            qan_texts,
            qan_text_bytes,
            node_last_push,
            node_push_times: std::sync::Mutex::default(),
            vmalert_restarts,
            alertmanager_restarts,
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn handshake_failed(&self, reason: &'static str) {
        self.handshake_failures
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names() {
        let m = SelfMetrics::new();
        m.requests
            .get_or_create(&RequestLabels {
                route: "readyz",
                status: 200,
            })
            .inc();
        m.handshake_failed("timeout");
        m.cert_expiry.set(1_900_000_000);
        let text = m.encode();
        assert!(text.contains(r#"perch_http_requests_total{route="readyz",status="200"} 1"#));
        assert!(text.contains(r#"perch_tls_handshake_failures_total{reason="timeout"} 1"#));
        assert!(text.contains("perch_tls_certificate_expiry_timestamp_seconds 1900000000"));
        assert!(text.contains(r#"perch_build_info{version=""#));
        assert!(text.ends_with("# EOF\n"));
    }
}
