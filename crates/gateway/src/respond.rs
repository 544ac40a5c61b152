//! Turning errors into HTTP responses: the one place that decides statuses and error bodies.
//!
//! Every error response carries a small JSON body with the request id, so a user who reports
//! a failure can be matched with the access log line.

use http::{header, HeaderValue, Response, StatusCode};
use sekisho_proxy::{UpstreamError, UpstreamErrorKind};

use crate::body::ResponseBody;

mod grpc;

pub use grpc::GrpcClient;

/// Why the gateway answered a request itself instead of with the upstream's response.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The request path could not be normalized safely.
    #[error("bad request path: {0}")]
    BadPath(#[from] sekisho_router::PathError),
    /// `%2F`/`%5C` in a path on a route that does not allow them.
    #[error("encoded path separators are not allowed on this route")]
    EncodedSeparator,
    /// The request had no usable `Host` / `:authority`.
    #[error("missing or invalid host")]
    BadHost,
    /// The request head is not valid HTTP/1.1.
    #[error("{0}")]
    BadRequest(&'static str),
    /// The request head exceeds the listener's `max_header_bytes` or header count.
    #[error("request header fields too large")]
    HeadersTooLarge,
    /// Ambiguous framing or identity that another server could read differently
    /// (request smuggling): refused, never forwarded.
    #[error("{0}")]
    Ambiguous(&'static str),
    /// No route matched.
    #[error("no route for this request")]
    NoRoute,
    /// The request body exceeded the route's `buffer_request.max_bytes`.
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The route's limit.
        limit: u64,
    },
    /// Reading the request body failed (client went away or sent a malformed body).
    #[error("reading the request body failed: {0}")]
    ClientBody(String),
    /// The route's timeout passed before the upstream answered.
    #[error("upstream did not answer within {0:?}")]
    UpstreamTimeout(std::time::Duration),
    /// The upstream could not be reached or failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// A transcoded request or answer could not be converted (the error says which field).
    #[error(transparent)]
    Transcode(sekisho_transcode::TranscodeError),
    /// The upstream answered something the gateway cannot relay.
    #[error("{0}")]
    BadUpstreamAnswer(String),
    /// A route policy (auth, rate limit, lock) refused the request.
    #[error("{}", policy_message(.0))]
    Policy(Box<sekisho_policy::Reject>),
    /// A CORS preflight from an origin, or for a method or header, the route does not allow.
    #[error("{0}")]
    CorsRejected(String),
    /// A bug or an impossible state; logged with details.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The human half of a policy rejection (the machine half is its reason code).
fn policy_message(r: &sekisho_policy::Reject) -> &'static str {
    match r.reason {
        "lock_busy" => "another request holds this lock; retry later",
        "lock_key_missing" => "the request lacks a field the route's lock key needs",
        "lock_key_too_long" => "the lock key built from the request is too long",
        "lock_unavailable" => "the lock service is unavailable",
        "rate_limited" => "rate limit exceeded",
        "rate_limit_unavailable" => "the rate limit service is unavailable",
        "ext_auth_unavailable" => "the authorization service is unavailable",
        _ if r.status == StatusCode::FORBIDDEN => "the credential lacks a required claim",
        _ => "authentication required",
    }
}

impl GatewayError {
    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::BadPath(_)
            | GatewayError::EncodedSeparator
            | GatewayError::BadHost
            | GatewayError::BadRequest(_)
            | GatewayError::Ambiguous(_) => StatusCode::BAD_REQUEST,
            GatewayError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            // The only way a request cannot be sent as given is its body failing: the
            // client's (a malformed chunk, a connection cut mid-body).
            GatewayError::Upstream(e) if e.kind() == UpstreamErrorKind::InvalidRequest => {
                StatusCode::BAD_REQUEST
            }
            GatewayError::ClientBody(_) => StatusCode::BAD_REQUEST,
            GatewayError::NoRoute => StatusCode::NOT_FOUND,
            GatewayError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Upstream(e) => e.kind().status(),
            GatewayError::Transcode(e) => e.http_status(),
            GatewayError::BadUpstreamAnswer(_) => StatusCode::BAD_GATEWAY,
            GatewayError::Policy(r) => r.status,
            GatewayError::CorsRejected(_) => StatusCode::FORBIDDEN,
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short, stable, machine-readable code for the JSON body and logs.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::BadPath(_) => "bad_path",
            GatewayError::EncodedSeparator => "encoded_separator",
            GatewayError::BadHost => "bad_host",
            GatewayError::BadRequest(_) => "bad_request",
            GatewayError::HeadersTooLarge => "headers_too_large",
            GatewayError::Ambiguous(_) => "ambiguous_request",
            GatewayError::NoRoute => "no_route",
            GatewayError::PayloadTooLarge { .. } => "payload_too_large",
            GatewayError::ClientBody(_) => "bad_request_body",
            GatewayError::UpstreamTimeout(_) => "upstream_timeout",
            GatewayError::Upstream(e) => match e.kind() {
                UpstreamErrorKind::NoEndpoints => "no_endpoint",
                UpstreamErrorKind::Overloaded => "upstream_overloaded",
                UpstreamErrorKind::ConnectTimeout => "upstream_connect_timeout",
                UpstreamErrorKind::Connect => "upstream_connect_failed",
                UpstreamErrorKind::Tls => "upstream_tls_failed",
                UpstreamErrorKind::Reset => "upstream_reset",
                UpstreamErrorKind::Protocol => "upstream_protocol_error",
                UpstreamErrorKind::InvalidRequest => "bad_request_body",
            },
            GatewayError::Transcode(e) if e.is_client_error() => "transcode_bad_request",
            GatewayError::Transcode(_) => "transcode_bad_answer",
            GatewayError::BadUpstreamAnswer(_) => "upstream_bad_answer",
            GatewayError::Policy(r) => r.reason,
            GatewayError::CorsRejected(_) => "cors_rejected",
            GatewayError::Internal(_) => "internal",
        }
    }

    /// The response for this error, with a JSON body naming the request id; for a gRPC
    /// client, a trailers-only gRPC answer instead (the status is all it can read).
    pub fn to_response(
        &self,
        request_id: &str,
        grpc: Option<GrpcClient>,
    ) -> Response<ResponseBody> {
        let plain = || match grpc {
            Some(client) => {
                grpc::error_response(client, self.status(), &self.to_string(), request_id)
            }
            None => error_response(self.status(), self.code(), &self.to_string(), request_id),
        };
        let GatewayError::Policy(reject) = self else {
            return plain();
        };
        // A policy's own headers (WWW-Authenticate, Retry-After, RateLimit-*) always go
        // out; its body too when it has one (the external auth service's answer), except
        // to gRPC clients, which could not read it.
        let mut resp = match &reject.body {
            Some(body) if grpc.is_none() => {
                let mut r = Response::new(ResponseBody::full(body.clone()));
                *r.status_mut() = reject.status;
                if let Ok(v) = HeaderValue::from_str(request_id) {
                    r.headers_mut().insert("x-request-id", v);
                }
                r
            }
            _ => plain(),
        };
        for (name, value) in &reject.headers {
            resp.headers_mut().append(name.clone(), value.clone());
        }
        resp
    }
}

/// A JSON error response: `{"error": code, "message": ..., "status": n, "request_id": ...}`.
pub fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
) -> Response<ResponseBody> {
    let body = serde_json::json!({
        "error": code,
        "message": message,
        "status": status.as_u16(),
        "request_id": request_id,
    });
    let mut bytes = body.to_string().into_bytes();
    bytes.push(b'\n');
    let mut resp = Response::new(ResponseBody::full(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}
