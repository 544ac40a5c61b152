//! Edge policies evaluated before proxying: authentication (JWT, external auth, API keys), rate limits and per-key concurrency locks.
//!
//! Each policy is built once from its config (at plan compile time) and then asked, per request,
//! for a decision. None of them touches the request or writes a response: they return what the
//! pipeline should do, so the one module that renders errors stays the only one.
//!
//! ```text
//! route matched
//!   ─► auth        Authenticator::check      → Allow{identity, headers} | Reject(401/403/ext)
//!   ─► rate limit  RateLimiter::check        → Allow{headers}           | Reject(429)
//!   ─► buffer      (pipeline, when LockPolicy::needs_body)
//!   ─► lock        LockPolicy::acquire       → Some(LockGuard) / None   | Reject(400/503)
//!   ─► upstream    (the guard rides with the response body; dropping it releases the lock)
//! ```
//!
//! The shared backends are spoken directly: [`net::redis`] (RESP2) and [`net::memcached`]
//! (the 1.6 meta protocol), each call bounded by a timeout, behind a [`breaker::Breaker`] so a
//! dead server costs nothing per request.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]
// `Reject` (status, headers, body) is the decision itself, returned once per request; boxing
// it would add an allocation to every rejection for no gain.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod breaker;
pub mod config;
pub mod error;
pub mod lock;
pub mod net;
pub mod ratelimit;
pub mod request;

pub use auth::{AuthAllow, AuthStats, Authenticator, Identity};
pub use error::PolicyError;
pub use lock::{LockGuard, LockPolicy};
pub use ratelimit::{RateLimitAllow, RateLimiter};
pub use request::{Reject, RequestView};
