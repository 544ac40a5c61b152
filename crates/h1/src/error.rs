//! Why a head was refused.

/// A head that cannot be served as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// Not valid HTTP/1.1 (bad request line, bad header syntax, bad target bytes).
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// Framing or identity another implementation could read differently (smuggling).
    #[error("{0}")]
    Ambiguous(&'static str),
    /// HTTP/1.1 without `Host`.
    #[error("missing Host header")]
    MissingHost,
    /// More than [`crate::MAX_HEADERS`] header fields.
    #[error("too many header fields")]
    TooManyHeaders,
}

impl HeadError {
    /// From httparse's error, for a request (`TooManyHeaders` is the 431 case).
    pub(crate) fn from_httparse(e: httparse::Error) -> Self {
        match e {
            httparse::Error::TooManyHeaders => HeadError::TooManyHeaders,
            httparse::Error::HeaderName => HeadError::Malformed("invalid header name"),
            httparse::Error::HeaderValue => HeadError::Malformed("invalid header value"),
            httparse::Error::NewLine => HeadError::Malformed("invalid line ending"),
            httparse::Error::Status => HeadError::Malformed("invalid status"),
            httparse::Error::Token => HeadError::Malformed("invalid request line"),
            httparse::Error::Version => HeadError::Malformed("unsupported HTTP version"),
        }
    }
}
