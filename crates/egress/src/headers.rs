//! Header rules: hop-by-hop removal, and chocon's id and loop-detection headers.

use http::header::{HeaderMap, HeaderName, CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};

/// The request id, reused from the client or generated; sent upstream and back.
pub const ID_HEADER: HeaderName = HeaderName::from_static("x-chocon-id");
/// Set on requests the proxy forwards by the host convention; a request arriving with it
/// has already passed through an egress proxy (a loop), and gets 508.
pub const VERSION_HEADER: HeaderName = HeaderName::from_static("x-chocon-ver");

/// What the proxy sends as [`VERSION_HEADER`].
pub(crate) const VERSION: &str = concat!("sekisho-egress/", env!("CARGO_PKG_VERSION"));

const HOP_BY_HOP: [HeaderName; 4] = [
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("proxy-authenticate"),
    HeaderName::from_static("proxy-authorization"),
];

/// Removes headers that describe one connection (RFC 9110 7.6.1): `Connection` and the
/// headers it names, `Keep-Alive`, `Proxy-*`, `TE` (except `trailers`), `Trailer`,
/// `Transfer-Encoding` and `Upgrade`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP
        .iter()
        .chain(&[CONNECTION, TRAILER, TRANSFER_ENCODING, UPGRADE])
    {
        headers.remove(name);
    }
    // `TE: trailers` is end-to-end in practice (gRPC needs it over HTTP/2).
    let keep_te = headers
        .get(TE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    if !keep_te {
        headers.remove(TE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_hop_by_hop_and_connection_named() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-private"),
            ("keep-alive", "timeout=5"),
            ("x-private", "1"),
            ("proxy-authorization", "Basic x"),
            ("proxy-connection", "keep-alive"),
            ("te", "gzip"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-keep", "yes"),
            ("accept", "*/*"),
        ] {
            h.append(HeaderName::from_static(k), v.parse().expect("value"));
        }
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "x-keep"]);
    }

    #[test]
    fn te_trailers_is_kept() {
        let mut h = HeaderMap::new();
        h.insert(TE, "trailers".parse().expect("value"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h[TE], "trailers");
    }
}
