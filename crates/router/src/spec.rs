//! What a route matches, as the config compiles it, and why a set of routes
//! may be refused.

use crate::predicate::HeaderPredicate;

/// Which hosts a route serves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HostMatch {
    /// Any host: the last tier, tried when no host-specific route matched.
    #[default]
    Any,
    /// One host name, compared case-insensitively, without port or trailing dot.
    Exact(String),
    /// Every host under a suffix, given with its leading dot (`.example.com`;
    /// `*.example.com` is accepted too). Matches `a.example.com` and
    /// `a.b.example.com` but not `example.com`.
    Wildcard(String),
}

/// Which paths a route serves. Paths are compared after normalization, so each
/// must itself be in normalized form (see [`crate::normalize_path`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// Exactly this path.
    Exact(String),
    /// Every path starting with this string, byte for byte (as in Envoy):
    /// `/v1/items` matches `/v1/items`, `/v1/items/x` *and* `/v1/itemsX`; end it
    /// with `/` (`/v1/items/`) to match only below it. `/` matches everything.
    Prefix(String),
    /// A template of whole segments: literals, `{name}` (one non-empty segment),
    /// and a final catch-all `{name...}` or `{*name}` (the rest of the path after
    /// the preceding `/`, possibly empty), e.g. `/v1/items/{id}`.
    Template(String),
}

/// Everything a route requires of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// The hosts it serves.
    pub host: HostMatch,
    /// The paths it serves.
    pub path: PathMatch,
    /// The methods it serves; empty means any.
    pub methods: Vec<http::Method>,
    /// Headers the request must carry; all must hold.
    pub headers: Vec<HeaderPredicate>,
}

impl RouteSpec {
    /// A route for `path` on any host, any method, with no header predicate.
    pub fn new(path: PathMatch) -> Self {
        Self {
            host: HostMatch::Any,
            path,
            methods: Vec::new(),
            headers: Vec::new(),
        }
    }
}

/// Why [`crate::RouterBuilder::build`] refused the routes. Indices are the ones
/// [`crate::RouterBuilder::add`] returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// Two routes have the same host and path (templates compared with their
    /// parameter names erased), as many predicates, and a request could satisfy
    /// both: neither is more specific.
    #[error(
        "routes {first} and {second} conflict: same host and path, and a request can match both"
    )]
    Conflict {
        /// The route added first.
        first: usize,
        /// The route added later.
        second: usize,
    },
    /// A path template that does not parse.
    #[error("route {index}: bad path template: {reason}")]
    BadTemplate {
        /// The route's index.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// An exact or prefix path that is not absolute or not normalized (it could
    /// never match a normalized request path).
    #[error("route {index}: bad path: {reason}")]
    BadPath {
        /// The route's index.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A host that is empty or malformed.
    #[error("route {index}: bad host: {reason}")]
    BadHost {
        /// The route's index.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}
