//! Errors, each saying whose fault it was: the descriptors (config), the client, or the upstream.

use http::StatusCode;

/// Everything that can go wrong while loading descriptors or transcoding a message.
#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    /// The descriptor set could not be decoded (a config error).
    #[error("invalid descriptor set: {0}")]
    Descriptors(String),
    /// A service named in the config is not in the descriptor set.
    #[error("service {0:?} is not in the descriptor set")]
    UnknownService(String),
    /// A `google.api.http` rule is malformed or refers to a field that does not exist.
    #[error("method {method}: bad http rule: {reason}")]
    Rule {
        /// The gRPC method (`pkg.Service.Method`).
        method: String,
        /// What is wrong with the rule.
        reason: String,
    },
    /// Two rules map the same HTTP method and path template.
    #[error("conflicting http rules: {first} and {second} both map {pattern}")]
    Conflict {
        /// The first method that mapped the pattern.
        first: String,
        /// The second method.
        second: String,
        /// The HTTP method and template.
        pattern: String,
    },
    /// The client's request could not be mapped: bad JSON, bad query value, wrong type (400).
    #[error("{field}: {reason}")]
    BadRequest {
        /// The field (path, `a.b`) or `body`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request's content type is neither JSON nor protobuf (415).
    #[error("unsupported content type {0:?}: expected application/json or application/x-protobuf")]
    UnsupportedMediaType(String),
    /// The upstream sent bytes that are not valid gRPC frames or messages (502).
    #[error("upstream response: {0}")]
    Upstream(String),
}

impl TranscodeError {
    /// The HTTP status the gateway answers with when this error ends a request.
    pub fn http_status(&self) -> StatusCode {
        match self {
            TranscodeError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            TranscodeError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            TranscodeError::Upstream(_) => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// True when the error is the client's: its request was malformed.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            TranscodeError::BadRequest { .. } | TranscodeError::UnsupportedMediaType(_)
        )
    }

    pub(crate) fn bad(field: impl Into<String>, reason: impl Into<String>) -> Self {
        TranscodeError::BadRequest {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn rule(method: impl Into<String>, reason: impl Into<String>) -> Self {
        TranscodeError::Rule {
            method: method.into(),
            reason: reason.into(),
        }
    }
}
