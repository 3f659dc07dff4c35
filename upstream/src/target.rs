//! An upstream: where requests go (a base URL), how Perch authenticates to it, how long it
//! may take to answer, and the client (pool) that reaches it.

use std::path::Path;
use std::time::Duration;

use http::{HeaderValue, Uri};
use url::{Position, Url};

use super::Client;
use super::error::UpstreamError;

/// A URL given for an upstream is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("not a URL: {0}")]
    Syntax(String),
    #[error("the scheme must be http or https, not '{0}'")]
    Scheme(String),
    #[error("a host is required")]
    NoHost,
    #[error(
        "credentials do not belong in the URL (they would show in the process list); use the basic-auth or bearer-token file flags"
    )]
    Credentials,
    #[error("a #fragment is not allowed")]
    Fragment,
    #[error("a ?query is not allowed in a base URL, to which paths are appended")]
    Query,
}

/// An upstream's full URL (`http` or `https`, a host, no credentials, no fragment); a
/// query string is allowed.
pub fn parse_url(s: &str) -> Result<Url, UrlError> {
    let url = Url::parse(s.trim()).map_err(|e| UrlError::Syntax(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::Scheme(url.scheme().to_owned()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UrlError::NoHost);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    if url.fragment().is_some() {
        return Err(UrlError::Fragment);
    }
    Ok(url)
}

/// A base URL, to which request paths are appended: as [`parse_url`], without a query.
pub fn parse_base_url(s: &str) -> Result<Url, UrlError> {
    let url = parse_url(s)?;
    if url.query().is_some() {
        return Err(UrlError::Query);
    }
    Ok(url)
}

/// A secret file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{path}: cannot read: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}: the file is empty")]
    Empty(String),
    #[error("{0}: only printable ASCII is allowed, on one line")]
    NotPrintable(String),
    #[error("the basic-auth user name must not contain ':' (RFC 7617)")]
    UserWithColon,
}

/// The secret in `path`: its contents without one trailing newline (`\n` or `\r\n`). It must
/// be non-empty printable ASCII (spaces allowed), which every header value accepts.
pub fn read_secret(path: &Path) -> Result<String, CredentialError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CredentialError::Unreadable {
        path: name.clone(),
        source,
    })?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if text.is_empty() {
        return Err(CredentialError::Empty(name));
    }
    if !text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Err(CredentialError::NotPrintable(name));
    }
    Ok(text.to_owned())
}

/// How Perch authenticates to an upstream. The credential is kept only as a header value
/// marked sensitive; `Debug` shows the scheme, never the secret.
#[derive(Clone, Default)]
pub struct Credentials {
    header: Option<HeaderValue>,
    scheme: &'static str,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.header.is_some() {
            self.scheme
        } else {
            "none"
        })
    }
}

impl Credentials {
    pub fn none() -> Self {
        Self::default()
    }

    /// HTTP basic auth (RFC 7617): `user` must not contain `:`; both are printable ASCII.
    pub fn basic(user: &str, password: &str) -> Result<Self, CredentialError> {
        if user.contains(':') {
            return Err(CredentialError::UserWithColon);
        }
        if !format!("{user}{password}")
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b))
        {
            return Err(CredentialError::NotPrintable("the basic-auth user".into()));
        }
        let encoded = data_encoding::BASE64.encode(format!("{user}:{password}").as_bytes());
        Ok(Self::sensitive(format!("Basic {encoded}"), "basic"))
    }

    /// A bearer token (printable ASCII, as [`read_secret`] returns).
    pub fn bearer(token: &str) -> Result<Self, CredentialError> {
        if token.is_empty() || !token.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
            return Err(CredentialError::NotPrintable("the bearer token".into()));
        }
        Ok(Self::sensitive(format!("Bearer {token}"), "bearer"))
    }

    fn sensitive(value: String, scheme: &'static str) -> Self {
        // Printable ASCII was checked above, so the value is always a valid header value.
        let header = HeaderValue::try_from(value).ok().map(|mut v| {
            v.set_sensitive(true);
            v
        });
        Self { header, scheme }
    }

    /// The `Authorization` value to send, if any.
    pub fn header(&self) -> Option<&HeaderValue> {
        self.header.as_ref()
    }
}

/// Whether plain-HTTP upstreams use Perch's own HTTP/1.1 pool ([`super::h1pool`]), as they
/// do unless `PERCH_UPSTREAM_POOL=hyper-util` sends them through hyper-util's pool like
/// HTTPS upstreams: a switch for measuring one against the other (`bench/proxy.sh`,
/// BENCHMARKS.md), read once.
fn own_h1_pool() -> bool {
    static OWN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OWN.get_or_init(|| std::env::var("PERCH_UPSTREAM_POOL").map_or(true, |v| v != "hyper-util"))
}

/// One upstream. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Upstream {
    /// Who it is, for people: "the metrics engine". Error answers name it; its URL is not
    /// shown to clients.
    pub name: String,
    base: Url,
    auth: Credentials,
    /// Longest wait for the answer's head (status and headers), connecting included.
    pub timeout: Duration,
    pub(super) client: Client,
    /// For a plain-HTTP upstream: the lean HTTP/1.1 pool used instead of `client`.
    pub(super) h1: Option<super::h1pool::H1Pool>,
}

impl Upstream {
    pub fn new(
        name: impl Into<String>,
        base: Url,
        auth: Credentials,
        timeout: Duration,
        client: Client,
    ) -> Self {
        let h1 = if base.scheme() == "http" && own_h1_pool() {
            let authority = match (base.host_str(), base.port_or_known_default()) {
                (Some(host), Some(port)) if host.contains(':') => format!("[{host}]:{port}"),
                (Some(host), Some(port)) => format!("{host}:{port}"),
                _ => String::new(),
            };
            super::h1pool::H1Pool::new(&authority, client.connect_timeout)
        } else {
            None
        };
        Self {
            name: name.into(),
            base,
            auth,
            timeout,
            client,
            h1,
        }
    }

    pub fn auth(&self) -> &Credentials {
        &self.auth
    }

    /// The base URL up to and including its path (no query), for logs: it holds no
    /// credentials ([`parse_url`] refuses them).
    pub fn display_base(&self) -> &str {
        &self.base[..Position::AfterPath]
    }

    /// The target for `path_and_query` (which starts with `/`, or is empty for the base URL
    /// itself): the base's path without a trailing `/`, then `path_and_query`.
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, UpstreamError> {
        let target = if path_and_query.is_empty() {
            self.base.as_str().to_owned()
        } else {
            self.joined(&self.base[..Position::BeforePath], path_and_query)?
        };
        target.parse().map_err(|_| self.bad_target())
    }

    /// As [`Upstream::uri`], in the form its connection pool sends: for a plain-HTTP
    /// upstream the origin form (`/path?query`, the pool knows where it connects), built
    /// and checked in one step; the absolute URI otherwise.
    pub fn request_uri(&self, path_and_query: &str) -> Result<Uri, UpstreamError> {
        if self.h1.is_none() || path_and_query.is_empty() {
            return self.uri(path_and_query);
        }
        let target = self.joined("", path_and_query)?;
        Uri::from_maybe_shared(bytes::Bytes::from(target)).map_err(|_| self.bad_target())
    }

    /// `origin`, the base's path without a trailing `/`, then `path_and_query` (which must
    /// start with `/`).
    fn joined(&self, origin: &str, path_and_query: &str) -> Result<String, UpstreamError> {
        if !path_and_query.starts_with('/') {
            return Err(self.bad_target());
        }
        let path = self.base.path().trim_end_matches('/');
        let mut target = String::with_capacity(origin.len() + path.len() + path_and_query.len());
        target.push_str(origin);
        target.push_str(path);
        target.push_str(path_and_query);
        Ok(target)
    }

    fn bad_target(&self) -> UpstreamError {
        UpstreamError::BadTarget {
            upstream: self.name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(base: &str) -> Upstream {
        Upstream::new(
            "the engine",
            parse_url(base).unwrap(),
            Credentials::none(),
            Duration::from_secs(1),
            Client::new(Duration::from_secs(1)),
        )
    }

    #[test]
    fn basic_and_bearer_headers() {
        let a = Credentials::basic("Aladdin", "open sesame").unwrap();
        assert_eq!(a.header().unwrap(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(a.header().unwrap().is_sensitive());
        assert_eq!(format!("{a:?}"), "basic");
        let b = Credentials::bearer("s3cr3t.token").unwrap();
        assert_eq!(b.header().unwrap(), "Bearer s3cr3t.token");
        assert!(!format!("{b:?}").contains("s3cr3t"));
        assert!(Credentials::none().header().is_none());
        assert!(matches!(
            Credentials::basic("a:b", "x"),
            Err(CredentialError::UserWithColon)
        ));
        assert!(Credentials::bearer("two words").is_err());
        assert!(Credentials::bearer("line\nbreak").is_err());
        assert!(Credentials::basic("user", "pass\r\nX-Evil: 1").is_err());
    }

    #[test]
    fn secrets_lose_one_trailing_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        for (content, want) in [
            ("abc\n", Some("abc")),
            ("abc\r\n", Some("abc")),
            ("abc", Some("abc")),
            ("two words\n", Some("two words")),
            ("\n", None),
            ("", None),
            ("abc\n\n", None),
            ("tab\there", None),
        ] {
            std::fs::write(&path, content).unwrap();
            assert_eq!(read_secret(&path).ok().as_deref(), want, "{content:?}");
        }
        assert!(matches!(
            read_secret(&dir.path().join("missing")),
            Err(CredentialError::Unreadable { .. })
        ));
    }

    #[test]
    fn urls() {
        assert!(parse_url("http://vminsert:8480/insert/0/prometheus/api/v1/write").is_ok());
        assert!(parse_url("https://mimir.example/api/v1/push?x=1").is_ok());
        assert_eq!(
            parse_base_url("http://p:9090/?a=b").err(),
            Some(UrlError::Query)
        );
        assert_eq!(
            parse_url("ftp://p/").err(),
            Some(UrlError::Scheme("ftp".into()))
        );
        assert_eq!(
            parse_url("http://user:pw@p:9090").err(),
            Some(UrlError::Credentials)
        );
        assert_eq!(
            parse_url("http://user@p:9090").err(),
            Some(UrlError::Credentials)
        );
        assert_eq!(parse_url("http://p/#x").err(), Some(UrlError::Fragment));
        assert!(matches!(parse_url("p:9090"), Err(UrlError::Scheme(_))));
        assert!(matches!(parse_url("not a url"), Err(UrlError::Syntax(_))));
    }

    #[tokio::test]
    async fn paths_are_appended_to_the_base() {
        let vm = upstream("http://vmselect:8481/select/0/prometheus");
        assert_eq!(
            vm.uri("/api/v1/query?query=up").unwrap(),
            "http://vmselect:8481/select/0/prometheus/api/v1/query?query=up"
        );
        let prom = upstream("http://prom:9090/");
        assert_eq!(
            prom.uri("/api/v1/labels").unwrap(),
            "http://prom:9090/api/v1/labels"
        );
        let v6 = upstream("https://[::1]:9443");
        assert_eq!(v6.uri("/x").unwrap(), "https://[::1]:9443/x");
        let write = upstream("http://mimir/api/v1/push?tenant=a");
        assert_eq!(write.uri("").unwrap(), "http://mimir/api/v1/push?tenant=a");
        assert_eq!(write.display_base(), "http://mimir/api/v1/push");
        assert!(prom.uri("api/v1/query").is_err());
        assert!(prom.uri("/a b").is_err());
    }

    #[test]
    fn request_uris_are_origin_form_for_the_plain_http_pool() {
        let vm = upstream("http://127.0.0.1:8428/");
        assert_eq!(
            vm.request_uri("/api/v1/query?query=up").unwrap(),
            "/api/v1/query?query=up"
        );
        let sub = upstream("http://grafana:3000/graph/");
        let uri = sub.request_uri("/d/abc?orgId=1").unwrap();
        assert_eq!(uri, "/graph/d/abc?orgId=1");
        assert!(uri.scheme().is_none() && uri.authority().is_none());
        assert!(sub.request_uri("/a b").is_err());
        // Not a path: as `uri` answers (an error, or the base URL itself).
        assert!(sub.request_uri("api").is_err());
        assert_eq!(sub.request_uri("").unwrap(), "http://grafana:3000/graph/");
        // HTTPS upstreams go through the general client, which needs the absolute URI.
        let tls = upstream("https://[::1]:9443/");
        assert_eq!(tls.request_uri("/x").unwrap(), "https://[::1]:9443/x");
    }
}
