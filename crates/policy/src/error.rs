//! Errors of building a policy from its config, and of talking to a policy backend.

use std::path::PathBuf;

/// A policy could not be built from its config (a config or startup error, never per request).
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A key or secret file could not be read.
    #[error("reading {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An environment variable the config names is unset or not UTF-8.
    #[error("environment variable {0} is unset or not UTF-8")]
    MissingEnv(String),
    /// A key could not be parsed.
    #[error("key {what}: {source}")]
    BadKey {
        /// Which key (file path or kid).
        what: String,
        /// Why.
        source: jsonwebtoken::errors::Error,
    },
    /// A config value is invalid; the message names the field.
    #[error("{field}: {message}")]
    Invalid {
        /// The YAML field, e.g. `lock.key`.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The first JWKS fetch failed and no other key is configured.
    #[error("fetching JWKS {url}: {source}")]
    Jwks {
        /// The JWKS URL.
        url: String,
        /// Why.
        source: BackendError,
    },
}

impl PolicyError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// A call to a backend (Redis, memcached, JWKS or auth service) failed. Retrying may help,
/// except for [`BackendError::InvalidKey`], which is the request's fault, not the backend's.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The key cannot be stored (empty, or too long once encoded); the backend was not called.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The call did not finish within its bound.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// Connecting or talking failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The server answered something the client does not understand.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The server answered with an error.
    #[error("server error: {0}")]
    Server(String),
    /// The circuit breaker is open: the backend was not called.
    #[error("circuit open")]
    CircuitOpen,
    /// An HTTP exchange failed.
    #[error("http: {0}")]
    Http(String),
}
