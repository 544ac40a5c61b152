//! What a policy sees of a request, and what a rejection tells the pipeline to answer.

use std::net::IpAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};

/// A borrowed view of the request the policies need; the pipeline builds it without copying.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Request method.
    pub method: &'a Method,
    /// Request URI (normalized path and query).
    pub uri: &'a Uri,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// The client's address (after any trusted proxy handling).
    pub client_ip: IpAddr,
    /// Path template parameters the router captured, e.g. `("id", "42")`.
    pub path_params: &'a [(&'a str, &'a str)],
    /// The buffered body, when the pipeline buffered it.
    pub body: Option<&'a [u8]>,
}

impl<'a> RequestView<'a> {
    /// A view with no path parameters and no body.
    pub fn new(
        method: &'a Method,
        uri: &'a Uri,
        headers: &'a HeaderMap,
        client_ip: IpAddr,
    ) -> Self {
        Self {
            method,
            uri,
            headers,
            client_ip,
            path_params: &[],
            body: None,
        }
    }

    /// The first value of header `name` as UTF-8, if any.
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The value of cookie `name`, if the request carries it.
    pub fn cookie(&self, name: &str) -> Option<&'a str> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// The pipeline must not proxy: answer with this status, these headers and this body.
#[derive(Debug, Clone)]
pub struct Reject {
    /// Response status (401, 403, 429, 400, 503, or the external auth service's).
    pub status: StatusCode,
    /// A short label for metrics and logs, e.g. `expired`, `rate_limited`, `lock_busy`.
    pub reason: &'static str,
    /// Headers to send (`WWW-Authenticate`, `Retry-After`, `RateLimit-*`, ...).
    pub headers: HeaderMap,
    /// A body to send as is (the external auth service's); `None` means the pipeline renders
    /// its JSON error body, see [`Reject::json_body`].
    pub body: Option<Bytes>,
}

impl Reject {
    /// A rejection with no headers and the default JSON body.
    pub fn new(status: StatusCode, reason: &'static str) -> Self {
        Self {
            status,
            reason,
            headers: HeaderMap::new(),
            body: None,
        }
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The default JSON body: `{"error":"<reason>","status":<code>,"request_id":"<id>"}`.
    pub fn json_body(&self, request_id: &str) -> Bytes {
        let body = serde_json::json!({
            "error": self.reason,
            "status": self.status.as_u16(),
            "request_id": request_id,
        });
        Bytes::from(body.to_string())
    }
}

/// A header value from a string the policy computed; invalid bytes become `-`.
pub(crate) fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("-"))
}
