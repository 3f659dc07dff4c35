//! The routes in force: each checked spec with its upstream clients and its metrics, and
//! the lookup of a request path (longest prefix first).

use std::sync::{Arc, Mutex, PoisonError};

use perch_upstream::{Client, Credentials, Upstream};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use super::config::RouteSpec;
use crate::selfmon::{ProxyRequestLabels, ProxyRouteLabels, SelfMetrics};

/// A route ready to serve.
#[derive(Debug)]
pub struct ProxyRoute {
    pub spec: RouteSpec,
    /// HTTP/1.1, or h2 when an https upstream offers it.
    pub upstream: Upstream,
    /// HTTP/1.1 only, for protocol switches (WebSocket).
    pub upgrade_upstream: Upstream,
    pub latency: Histogram,
    pub up: Gauge,
    metrics: Arc<SelfMetrics>,
    /// This route's request counters by status, as found in `metrics` (a route sees few
    /// statuses; looking here costs less than a labelled lookup with the route's name).
    counters: Mutex<Vec<(u16, Counter)>>,
}

impl ProxyRoute {
    /// Counts one answer (from the upstream, or Perch's own 502/504) by status.
    pub fn count(&self, status: u16) {
        self.requests(status).inc();
    }

    fn requests(&self, status: u16) -> Counter {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, c)) = counters.iter().find(|(s, _)| *s == status) {
            return c.clone();
        }
        let c = self
            .metrics
            .proxy_requests
            .get_or_create(&ProxyRequestLabels {
                route: self.spec.name.clone(),
                status,
            })
            .clone();
        counters.push((status, c.clone()));
        c
    }
}

/// What a request path matched.
#[derive(Debug)]
pub enum Hit {
    /// The path is under the route's prefix.
    Route(Arc<ProxyRoute>),
    /// The path is the prefix without its final `/`: redirect there, as nginx does.
    AddSlash(Arc<ProxyRoute>),
}

/// The routes, longest prefix first.
#[derive(Debug, Default)]
pub struct Table {
    routes: Vec<Arc<ProxyRoute>>,
}

impl Table {
    /// Builds clients for each spec; fails on an unreadable CA file (named in the error).
    pub fn build(specs: Vec<RouteSpec>, metrics: &Arc<SelfMetrics>) -> Result<Self, String> {
        let mut routes = Vec::with_capacity(specs.len());
        for spec in specs {
            let client = match &spec.ca_file {
                Some(ca) => Client::with_ca_file(ca, spec.connect_timeout)
                    .map_err(|e| format!("route {}: ca_file: {e}", spec.prefix))?,
                None => Client::new(spec.connect_timeout),
            };
            let labels = ProxyRouteLabels {
                route: spec.name.clone(),
            };
            let upstream = Upstream::new(
                spec.name.clone(),
                spec.upstream.clone(),
                Credentials::none(),
                spec.timeout,
                client.clone(),
            );
            let upgrade_upstream = Upstream::new(
                spec.name.clone(),
                spec.upstream.clone(),
                Credentials::none(),
                spec.timeout,
                client.http1_only(),
            );
            routes.push(Arc::new(ProxyRoute {
                latency: metrics.proxy_latency.get_or_create(&labels).clone(),
                up: metrics.proxy_upstream_up.get_or_create(&labels).clone(),
                spec,
                upstream,
                upgrade_upstream,
                metrics: metrics.clone(),
                counters: Mutex::new(Vec::new()),
            }));
        }
        routes.sort_by_key(|r| std::cmp::Reverse(r.spec.prefix.len()));
        Ok(Self { routes })
    }

    pub fn routes(&self) -> &[Arc<ProxyRoute>] {
        &self.routes
    }

    /// The route for `path`, if any.
    pub fn find(&self, path: &str) -> Option<Hit> {
        for r in &self.routes {
            let prefix = r.spec.prefix.as_str();
            if path.starts_with(prefix) {
                return Some(Hit::Route(r.clone()));
            }
            if path.len() + 1 == prefix.len() && prefix.starts_with(path) {
                return Some(Hit::AddSlash(r.clone()));
            }
        }
        None
    }

    /// Names of the routes, for removing the metrics of those a reload dropped.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| r.spec.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn table(text: &str) -> Table {
        let specs = super::super::config::parse(text, "t", &HashSet::new()).unwrap();
        Table::build(specs, &Arc::new(SelfMetrics::new())).unwrap()
    }

    fn found(t: &Table, path: &str) -> Option<String> {
        t.find(path).map(|hit| match hit {
            Hit::Route(r) => r.spec.name.clone(),
            Hit::AddSlash(r) => format!("slash:{}", r.spec.name),
        })
    }

    #[test]
    fn the_longest_prefix_wins() {
        let t = table(
            "[[route]]\nprefix = \"/a/\"\nupstream = \"http://x\"\n\
             [[route]]\nprefix = \"/a/b/\"\nupstream = \"http://y\"\n",
        );
        assert_eq!(found(&t, "/a/").as_deref(), Some("a"));
        assert_eq!(found(&t, "/a/c").as_deref(), Some("a"));
        assert_eq!(found(&t, "/a/b/c").as_deref(), Some("a-b"));
        assert_eq!(found(&t, "/a/b").as_deref(), Some("slash:a-b"));
        assert_eq!(found(&t, "/a").as_deref(), Some("slash:a"));
        assert_eq!(found(&t, "/ab/"), None);
        assert_eq!(found(&t, "/"), None);
        assert_eq!(found(&t, "/b/"), None);
    }
}
