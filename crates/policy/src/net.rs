//! Small clients for the policy backends, each call bounded by a timeout.

pub mod http;
pub mod memcached;
mod pool;
pub mod redis;
