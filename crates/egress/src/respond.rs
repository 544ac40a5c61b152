//! Every request-time failure becomes an HTTP response here, and only here: a status and a
//! short text body saying what went wrong and whose side it was on.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use sekisho_proxy::{UpstreamError, UpstreamErrorKind};

use crate::body::Inner;
use crate::host::HostError;
use crate::policy::Denied;

/// Why the proxy answers itself instead of relaying the upstream's response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Reject {
    /// The Host does not follow the convention (client error).
    #[error("bad proxy host: {0}")]
    BadHost(#[from] HostError),
    /// The request already passed through an egress proxy.
    #[error("loop detected: the request already passed through an egress proxy")]
    Loop,
    /// The destination policy refused the destination (client error).
    #[error("forbidden: {0}")]
    Denied(#[from] Denied),
    /// The destination name did not resolve (upstream side).
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// The name.
        host: String,
        /// The resolver's error.
        reason: String,
    },
    /// The upstream did not send a response head within `--proxy-read-timeout`.
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
    /// Connecting to or talking with the upstream failed.
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    /// The destination's pool could not be built (e.g. an invalid TLS server name).
    #[error("cannot reach destination: {0}")]
    Pool(String),
}

impl Reject {
    /// The status to answer with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::BadHost(_) => StatusCode::BAD_REQUEST,
            Self::Loop => StatusCode::LOOP_DETECTED,
            Self::Denied(_) => StatusCode::FORBIDDEN,
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream(e) if is_body_timeout(e) => StatusCode::REQUEST_TIMEOUT,
            Self::Upstream(e) => match e.kind() {
                UpstreamErrorKind::ConnectTimeout => StatusCode::GATEWAY_TIMEOUT,
                UpstreamErrorKind::Overloaded | UpstreamErrorKind::NoEndpoints => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                // The client's body failed (cut off, malformed chunk).
                UpstreamErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
                _ => StatusCode::BAD_GATEWAY,
            },
            Self::Resolve { .. } | Self::Pool(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The response: status, and the reason as a one-line text body.
    pub(crate) fn into_response(self) -> Response<Inner> {
        let status = self.status();
        text(status, &format!("{self}\n"))
    }
}

/// Whether the request failed because the client's body missed `--read-timeout`.
fn is_body_timeout(e: &UpstreamError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<crate::body::BodyReadTimeout>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// A local response with a text body.
pub(crate) fn text(status: StatusCode, body: &str) -> Response<Inner> {
    let mut r = Response::new(
        Full::new(Bytes::from(body.to_owned()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A local response with a body of the given content type.
pub(crate) fn with_type(body: String, content_type: &'static str) -> Response<Inner> {
    let mut r = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(Reject::Loop.status(), StatusCode::LOOP_DETECTED);
        assert_eq!(
            Reject::from(HostError::Missing).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            Reject::Denied(Denied::Name("x".into())).status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            Reject::Timeout(Duration::from_secs(1)).status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        let refused = UpstreamError::ConnectFailed {
            addr: ([127, 0, 0, 1], 1).into(),
            source: std::io::ErrorKind::ConnectionRefused.into(),
        };
        assert_eq!(Reject::from(refused).status(), StatusCode::BAD_GATEWAY);
    }
}
