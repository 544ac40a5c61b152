//! Path normalization and route matching: host, radix tree of paths, method and header predicates.
//!
//! Pure and allocation-free on the hot path: [`normalize_path`] runs once per
//! request, then [`Router::find`] picks the route by the precedence described in
//! [`table`] (and in DESIGN.md, "Route precedence").
//!
//! ```
//! use http::{HeaderMap, Method};
//! use sekisho_router::{normalize_path, PathMatch, RouteSpec, RouterBuilder};
//!
//! let mut builder = RouterBuilder::new();
//! builder.add(RouteSpec::new(PathMatch::Template("/v1/items/{id}".into())), "items");
//! builder.add(RouteSpec::new(PathMatch::Prefix("/".into())), "monolith");
//! let router = builder.build().expect("no conflicts");
//!
//! let path = normalize_path("/v1/./items/%34%32").expect("valid path");
//! let m = router
//!     .find("api.example.com:443", &path.path, &Method::GET, &HeaderMap::new())
//!     .expect("a route");
//! assert_eq!(*m.value, "items");
//! assert_eq!(m.params.get("id"), Some("42"));
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod hash;
mod host;
pub mod normalize;
mod params;
mod predicate;
mod prefix;
mod spec;
pub mod table;
mod template;

pub use host::normalize_host;
pub use normalize::{normalize_path, NormalizedPath, PathError};
pub use params::Params;
pub use predicate::{HeaderLookup, HeaderPredicate};
pub use spec::{BuildError, HostMatch, PathMatch, RouteSpec};
pub use table::{MatchKind, RouteMatch, Router, RouterBuilder};
