//! Header rules at the edge: hop-by-hop headers (RFC 9110, section 7.6.1) are not passed
//! on in either direction; identity a client claims is dropped, because upstreams trust
//! Perch's word only; the `X-Forwarded-*` headers say who the client is, set by Perch as the
//! edge (never appended to a client's own).

use std::net::IpAddr;

use http::header::{
    AUTHORIZATION, CONNECTION, COOKIE, FORWARDED, HOST, HeaderMap, HeaderName, HeaderValue, TE,
    TRAILER, TRANSFER_ENCODING, UPGRADE,
};

/// `Keep-Alive`, `Proxy-Connection`: hop-by-hop by name, with no constant in `http`.
const KEEP_ALIVE: &str = "keep-alive";

/// Removes `Connection` and every header it lists, `Keep-Alive`, `TE`, `Trailer`,
/// `Transfer-Encoding`, `Upgrade`, and every `Proxy-*` header.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
    headers.remove(KEEP_ALIVE);
    remove_prefixed(headers, "proxy-");
}

/// Removes what a client could use to claim an identity or a route at the upstream:
/// `Authorization`, `Cookie`, `X-WEBAUTH-USER`, `Forwarded`, `X-Real-IP`, every
/// `X-Forwarded-*`. `Host` goes too: the client sets the upstream's own.
pub fn remove_identity(headers: &mut HeaderMap) {
    for name in [AUTHORIZATION, COOKIE, FORWARDED, HOST] {
        headers.remove(name);
    }
    headers.remove("x-webauth-user");
    headers.remove("x-real-ip");
    remove_prefixed(headers, "x-forwarded-");
}

/// Sets `X-Forwarded-For` to the client's address, `X-Forwarded-Proto` to `proto`, and
/// `X-Forwarded-Host` to `host` when there is one.
pub fn set_forwarded(
    headers: &mut HeaderMap,
    client: IpAddr,
    proto: &'static str,
    host: Option<&HeaderValue>,
) {
    if let Ok(v) = HeaderValue::try_from(client.to_canonical().to_string()) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    if let Some(host) = host {
        headers.insert("x-forwarded-host", host.clone());
    }
}

fn remove_prefixed(headers: &mut HeaderMap, prefix: &str) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with(prefix))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn names(h: &HeaderMap) -> Vec<&str> {
        let mut n: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        n.sort_unstable();
        n
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_lists_are_removed() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("connection", "x-other-hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("x-other-hop", "1"),
            ("proxy-authorization", "Basic abc"),
            ("proxy-connection", "keep-alive"),
            ("proxy-authenticate", "Basic"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("content-type", "application/json"),
            ("accept-encoding", "gzip"),
            ("content-length", "12"),
        ]);
        remove_hop_by_hop(&mut h);
        assert_eq!(
            names(&h),
            ["accept-encoding", "content-length", "content-type"]
        );
    }

    #[test]
    fn a_connection_header_naming_garbage_is_harmless() {
        let mut h = map(&[("connection", ", ,bad name,"), ("x-keep", "1")]);
        remove_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["x-keep"]);
    }

    #[test]
    fn client_identity_is_dropped() {
        let mut h = map(&[
            ("authorization", "Bearer perch-token"),
            ("cookie", "__Host-perch_session=abc"),
            ("x-webauth-user", "admin"),
            ("X-WEBAUTH-USER", "root"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "evil"),
            ("x-forwarded-user", "admin"),
            ("forwarded", "for=10.0.0.1"),
            ("x-real-ip", "10.0.0.1"),
            ("host", "perch.example"),
            ("accept", "application/json"),
            ("user-agent", "Grafana/11"),
        ]);
        remove_identity(&mut h);
        assert_eq!(names(&h), ["accept", "user-agent"]);
    }

    #[test]
    fn forwarded_headers_are_set_not_appended() {
        let mut h = map(&[("x-forwarded-for", "6.6.6.6")]);
        remove_identity(&mut h);
        let host = HeaderValue::from_static("perch.example:8443");
        set_forwarded(
            &mut h,
            "::ffff:192.0.2.7".parse().unwrap(),
            "https",
            Some(&host),
        );
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "perch.example:8443");
        let mut h = HeaderMap::new();
        set_forwarded(&mut h, "2001:db8::1".parse().unwrap(), "https", None);
        assert_eq!(h["x-forwarded-for"], "2001:db8::1");
        assert!(h.get("x-forwarded-host").is_none());
    }
}
