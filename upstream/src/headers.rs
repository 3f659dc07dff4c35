//! Header rules at the edge: hop-by-hop headers (RFC 9110, section 7.6.1) are not passed
//! on in either direction; identity a client claims is dropped, because upstreams trust
//! Perch's word only; the `X-Forwarded-*` headers say who the client is, set by Perch as the
//! edge (never appended to a client's own).

use std::net::IpAddr;

use http::header::{
    AUTHORIZATION, CONNECTION, COOKIE, FORWARDED, HOST, HeaderMap, HeaderName, HeaderValue, TE,
    TRAILER, TRANSFER_ENCODING, UPGRADE,
};

/// `Keep-Alive`: hop-by-hop by name, with no constant in `http`.
const KEEP_ALIVE_NAME: HeaderName = HeaderName::from_static("keep-alive");
const X_WEBAUTH_USER: HeaderName = HeaderName::from_static("x-webauth-user");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Hop-by-hop by name (`Proxy-*` headers are too, by prefix).
const HOP_BY_HOP: [HeaderName; 6] = [
    CONNECTION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
    KEEP_ALIVE_NAME,
];

/// Identity a client may claim (`X-Forwarded-*` headers too, by prefix).
const IDENTITY: [HeaderName; 5] = [AUTHORIZATION, COOKIE, FORWARDED, X_WEBAUTH_USER, X_REAL_IP];

/// Removes `Connection` and every header it lists, `Keep-Alive`, `TE`, `Trailer`,
/// `Transfer-Encoding`, `Upgrade`, and every `Proxy-*` header.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // One look at the names before removing each by name: most messages carry none of
    // these but `Connection: keep-alive`.
    if !headers
        .keys()
        .any(|name| HOP_BY_HOP.contains(name) || name.as_str().starts_with("proxy-"))
    {
        return;
    }
    for name in listed_in_connection(headers) {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    remove_prefixed(headers, "proxy-");
}

/// The header names `Connection` lists beyond those removed anyway (`keep-alive`,
/// `upgrade`, `te`, ...) and its `close` option: most often none, and then nothing is
/// allocated.
fn listed_in_connection(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| {
            !t.is_empty()
                && !t.eq_ignore_ascii_case("close")
                && !HOP_BY_HOP
                    .iter()
                    .any(|known| t.eq_ignore_ascii_case(known.as_str()))
        })
        .filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok())
        .collect()
}

/// Removes what a client could use to claim an identity or a route at the upstream:
/// `Authorization`, `Cookie`, `X-WEBAUTH-USER`, `Forwarded`, `X-Real-IP`, every
/// `X-Forwarded-*`. `Host` goes too: the client sets the upstream's own.
pub fn remove_identity(headers: &mut HeaderMap) {
    headers.remove(HOST);
    // One look at the names before removing each by name: most requests carry none.
    if !headers
        .keys()
        .any(|name| IDENTITY.contains(name) || name.as_str().starts_with("x-forwarded-"))
    {
        return;
    }
    for name in IDENTITY {
        headers.remove(name);
    }
    remove_prefixed(headers, "x-forwarded-");
}

/// Removes every header whose name, with `_` read as `-`, is a hop-by-hop, identity or
/// forwarding header (`X_WEBAUTH_USER`, `X_Forwarded_For`, ...) or one `also` names (a
/// route's own identity headers): CGI, WSGI, PHP, and nginx with `underscores_in_headers`,
/// read such a header as the dashed name, so it would pass for Perch's word.
pub fn remove_underscored_lookalikes(headers: &mut HeaderMap, also: impl Fn(&str) -> bool) {
    if !headers.keys().any(|name| name.as_str().contains('_')) {
        return;
    }
    let lookalikes: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            if !name.contains('_') {
                return false;
            }
            let dashed = name.replace('_', "-");
            let is = |known: &HeaderName| known.as_str() == dashed;
            dashed == HOST.as_str()
                || IDENTITY.iter().any(is)
                || HOP_BY_HOP.iter().any(is)
                || also(&dashed)
                || dashed.starts_with("x-forwarded-")
                || dashed.starts_with("proxy-")
        })
        .cloned()
        .collect();
    for name in lookalikes {
        headers.remove(name);
    }
}

/// As [`remove_identity`], but the client's own credentials for the upstream stay: cookies
/// other than Perch's (`__Host-perch_*`), and an `Authorization` that is not a Perch bearer
/// token (`perch_…`).
pub fn remove_identity_keep_foreign(headers: &mut HeaderMap) {
    if !headers.contains_key(COOKIE) && !headers.contains_key(AUTHORIZATION) {
        remove_identity(headers);
        return;
    }
    let cookies: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && !pair.starts_with(PERCH_COOKIE_PREFIX))
        .map(str::to_owned)
        .collect();
    let authorization = headers
        .get(AUTHORIZATION)
        .filter(|v| !is_perch_bearer(v))
        .cloned();
    remove_identity(headers);
    if !cookies.is_empty()
        && let Ok(v) = HeaderValue::from_str(&cookies.join("; "))
    {
        headers.insert(COOKIE, v);
    }
    if let Some(v) = authorization {
        headers.insert(AUTHORIZATION, v);
    }
}

/// The names of Perch's own cookies start with this.
const PERCH_COOKIE_PREFIX: &str = "__Host-perch_";

fn is_perch_bearer(v: &HeaderValue) -> bool {
    let v = v.as_bytes();
    v.len() > 7
        && v[..7].eq_ignore_ascii_case(b"bearer ")
        && v[7..].trim_ascii_start().starts_with(b"perch_")
}

/// The protocol a client asks to switch to (`Upgrade`, with `upgrade` listed in
/// `Connection`), as for a WebSocket.
pub fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let listed = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if listed {
        headers.get(UPGRADE).cloned()
    } else {
        None
    }
}

/// Puts back `Connection: upgrade` and `Upgrade: protocol` after [`remove_hop_by_hop`].
pub fn set_upgrade(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, protocol);
}

/// Sets `X-Forwarded-For` to the client's address, `X-Forwarded-Proto` to `proto`, and
/// `X-Forwarded-Host` to `host` when there is one; and the same in one `Forwarded` header
/// (RFC 7239).
pub fn set_forwarded(
    headers: &mut HeaderMap,
    client: IpAddr,
    proto: &'static str,
    host: Option<&HeaderValue>,
) {
    let client = client.to_canonical();
    // Room for the four headers at once, rather than growing the map one by one.
    headers.reserve(4);
    // One buffer holds both values: the address, then `Forwarded` after it.
    let mut text = Vec::with_capacity(96);
    push_ip(&mut text, client);
    let address_end = text.len();
    match client {
        IpAddr::V4(_) => {
            text.extend_from_slice(b"for=");
            push_ip(&mut text, client);
        }
        IpAddr::V6(_) => {
            text.extend_from_slice(b"for=\"[");
            push_ip(&mut text, client);
            text.extend_from_slice(b"]\"");
        }
    }
    text.extend_from_slice(b";proto=");
    text.extend_from_slice(proto.as_bytes());
    if let Some(host) = host {
        // A quoted-string: a host with '"' or a backslash is left out rather than escaped.
        let h = host.as_bytes();
        if !h.iter().any(|b| matches!(b, b'"' | b'\\')) {
            text.extend_from_slice(b";host=\"");
            text.extend_from_slice(h);
            text.push(b'"');
        }
    }
    let text = bytes::Bytes::from(text);
    if let Ok(v) = HeaderValue::from_maybe_shared(text.slice(..address_end)) {
        headers.insert(X_FORWARDED_FOR, v);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
    if let Ok(v) = HeaderValue::from_maybe_shared(text.slice(address_end..)) {
        headers.insert(FORWARDED, v);
    }
}

/// Appends `ip` as text: dotted decimal for IPv4 (its octets through `itoa`, without the
/// formatting machinery: it is on every proxied request), RFC 5952 for IPv6.
pub fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            let mut digits = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(digits.format(octet).as_bytes());
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
}

fn remove_prefixed(headers: &mut HeaderMap, prefix: &str) {
    // Most requests carry none: look before allocating.
    if !headers.keys().any(|k| k.as_str().starts_with(prefix)) {
        return;
    }
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
    fn addresses_are_written_as_std_writes_them() {
        for ip in [
            "0.0.0.0",
            "1.2.3.4",
            "10.0.100.255",
            "192.168.9.99",
            "::1",
            "2001:db8::8:1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = b"x".to_vec();
            push_ip(&mut out, ip);
            assert_eq!(out, format!("x{ip}").as_bytes());
        }
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
        assert_eq!(
            h["forwarded"],
            "for=192.0.2.7;proto=https;host=\"perch.example:8443\""
        );
        let mut h = HeaderMap::new();
        set_forwarded(&mut h, "2001:db8::1".parse().unwrap(), "https", None);
        assert_eq!(h["x-forwarded-for"], "2001:db8::1");
        assert!(h.get("x-forwarded-host").is_none());
        assert_eq!(h["forwarded"], "for=\"[2001:db8::1]\";proto=https");
    }

    #[test]
    fn foreign_credentials_stay_and_perchs_go() {
        let mut h = map(&[
            ("authorization", "Basic dXNlcjpwdw=="),
            ("cookie", "grafana_session=g1; __Host-perch_session=abc"),
            ("cookie", "__Host-perch_csrf=c; theme=dark"),
            ("x-webauth-user", "admin"),
            ("forwarded", "for=10.0.0.1"),
        ]);
        remove_identity_keep_foreign(&mut h);
        assert_eq!(names(&h), ["authorization", "cookie"]);
        assert_eq!(h["cookie"], "grafana_session=g1; theme=dark");
        assert_eq!(h["authorization"], "Basic dXNlcjpwdw==");

        let mut h = map(&[
            ("authorization", "bearer  perch_0123"),
            ("cookie", "__Host-perch_session=abc"),
        ]);
        remove_identity_keep_foreign(&mut h);
        assert!(h.is_empty(), "{h:?}");
    }

    #[test]
    fn upgrades_are_recognised_only_when_connection_says_so() {
        let h = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ]);
        assert_eq!(upgrade_protocol(&h).unwrap(), "websocket");
        let h = map(&[("upgrade", "websocket")]);
        assert!(upgrade_protocol(&h).is_none());
        let mut h = map(&[("connection", "upgrade")]);
        assert!(upgrade_protocol(&h).is_none());
        set_upgrade(&mut h, HeaderValue::from_static("websocket"));
        assert_eq!(h["upgrade"], "websocket");
    }

    #[test]
    fn underscored_lookalikes_of_identity_headers_are_removed() {
        let mut h = HeaderMap::new();
        for name in [
            "x_webauth_user",
            "x_forwarded_for",
            "x-forwarded_host",
            "x_real_ip",
            "proxy_authorization",
            "x_grafana_role",
            "x_custom_thing",
            "accept",
        ] {
            h.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("v"),
            );
        }
        remove_underscored_lookalikes(&mut h, |dashed| dashed == "x-grafana-role");
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "x_custom_thing"]);
    }
}
