//! HTTP headers to gRPC metadata and back, and `grpc-timeout`.

use std::time::Duration;

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, TE};
use http::{HeaderMap, Method};

/// The original HTTP path, sent to the upstream (as Envoy's `x-envoy-original-path`).
pub const ORIGINAL_PATH: HeaderName = HeaderName::from_static("x-sekisho-original-path");
/// The original HTTP method, sent to the upstream.
pub const ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-sekisho-original-method");

/// Which request headers are forwarded as gRPC metadata.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    /// Exact (lowercase) names.
    pub names: Vec<HeaderName>,
    /// Name prefixes, e.g. `x-user-`.
    pub prefixes: Vec<String>,
}

impl AllowList {
    /// True if `name` may be forwarded: allowed and not reserved by HTTP/2 or gRPC.
    pub fn allows(&self, name: &HeaderName) -> bool {
        !is_reserved(name)
            && (self.names.contains(name)
                || self
                    .prefixes
                    .iter()
                    .any(|p| name.as_str().starts_with(p.as_str())))
    }
}

/// Headers that are connection-specific or belong to the gRPC protocol itself.
pub fn is_reserved(name: &HeaderName) -> bool {
    let n = name.as_str();
    n.starts_with("grpc-")
        || matches!(
            n,
            "connection"
                | "keep-alive"
                | "proxy-connection"
                | "transfer-encoding"
                | "upgrade"
                | "te"
                | "trailer"
                | "host"
                | "content-type"
                | "content-length"
                | "content-encoding"
                | "accept-encoding"
        )
}

/// The headers of the gRPC request: `content-type: application/grpc`, `te: trailers`,
/// `grpc-timeout` when given, the original path and method, and the allowed metadata.
pub fn grpc_request_headers(
    incoming: &HeaderMap,
    allow: &AllowList,
    original_method: &Method,
    original_path_and_query: &str,
    timeout: Option<Duration>,
) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(8);
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert(TE, HeaderValue::from_static("trailers"));
    if let Some(t) = timeout {
        h.insert("grpc-timeout", grpc_timeout(t));
    }
    if let Ok(v) = HeaderValue::from_str(original_path_and_query) {
        h.insert(ORIGINAL_PATH, v);
    }
    if let Ok(v) = HeaderValue::from_str(original_method.as_str()) {
        h.insert(ORIGINAL_METHOD, v);
    }
    for (name, value) in incoming {
        if allow.allows(name) {
            h.append(name.clone(), value.clone());
        }
    }
    h
}

/// Copies gRPC response metadata (headers, then trailers) into HTTP response headers,
/// leaving out the protocol's own (`grpc-*`, `content-type`, hop-by-hop).
pub fn response_headers(headers: &HeaderMap, trailers: Option<&HeaderMap>, out: &mut HeaderMap) {
    for map in std::iter::once(headers).chain(trailers) {
        for (name, value) in map {
            if !is_reserved(name) {
                out.append(name.clone(), value.clone());
            }
        }
    }
}

/// `grpc-timeout` for a duration: at most 8 digits, in the finest unit that fits,
/// rounded up so the upstream never gets less time than the route allows.
pub fn grpc_timeout(d: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let nanos = d.as_nanos();
    let units: [(u128, &str); 6] = [
        (1, "n"),
        (1_000, "u"),
        (1_000_000, "m"),
        (1_000_000_000, "S"),
        (60_000_000_000, "M"),
        (3_600_000_000_000, "H"),
    ];
    for (per, unit) in units {
        let v = nanos.div_ceil(per);
        if v <= MAX {
            return HeaderValue::from_str(&format!("{v}{unit}"))
                .unwrap_or(HeaderValue::from_static("99999999H"));
        }
    }
    HeaderValue::from_static("99999999H")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_fit_eight_digits() {
        assert_eq!(grpc_timeout(Duration::from_millis(3000)), "3000000u");
        assert_eq!(grpc_timeout(Duration::from_nanos(5)), "5n");
        assert_eq!(grpc_timeout(Duration::from_secs(1000)), "1000000m");
        assert_eq!(grpc_timeout(Duration::from_secs(86_400 * 365)), "31536000S");
        assert_eq!(grpc_timeout(Duration::from_secs(86_400 * 3650)), "5256000M");
        assert_eq!(grpc_timeout(Duration::from_secs(u64::MAX)), "99999999H");
        assert_eq!(grpc_timeout(Duration::from_nanos(100_000_001)), "100001u");
    }

    #[test]
    fn only_allowed_unreserved_headers_become_metadata() {
        let mut incoming = HeaderMap::new();
        incoming.insert("x-user-id", "7".parse().unwrap());
        incoming.insert("authorization", "Bearer t".parse().unwrap());
        incoming.insert("grpc-timeout", "1S".parse().unwrap());
        incoming.insert("cookie", "c".parse().unwrap());
        let allow = AllowList {
            names: vec![
                HeaderName::from_static("authorization"),
                HeaderName::from_static("grpc-timeout"),
            ],
            prefixes: vec!["x-user-".into()],
        };
        let h = grpc_request_headers(&incoming, &allow, &Method::GET, "/v1/x?y=1", None);
        assert_eq!(h["x-user-id"], "7");
        assert_eq!(h["authorization"], "Bearer t");
        assert!(h.get("cookie").is_none());
        assert!(h.get("grpc-timeout").is_none());
        assert_eq!(h[ORIGINAL_PATH], "/v1/x?y=1");
        assert_eq!(h["content-type"], "application/grpc");

        let mut resp = HeaderMap::new();
        let mut trailers = HeaderMap::new();
        resp.insert("x-a", "1".parse().unwrap());
        resp.insert("content-type", "application/grpc".parse().unwrap());
        trailers.insert("grpc-status", "0".parse().unwrap());
        trailers.insert("x-b", "2".parse().unwrap());
        let mut out = HeaderMap::new();
        response_headers(&resp, Some(&trailers), &mut out);
        assert_eq!(out.len(), 2);
    }
}
