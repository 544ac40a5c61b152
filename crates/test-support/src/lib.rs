//! Test support: start the gateway, upstreams and real servers on loopback ports, and talk to them.
//!
//! Used by the integration tests; everything here panics on setup failure (that is a test
//! failure, never a skip).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod client;
pub mod dnsmasq;
pub mod grpc_server;
pub mod memcached;
pub mod nginx;
pub mod raw_upstream;
pub mod redis;
pub mod tls;
pub mod upstream;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A free loopback TCP address (bound then released; fine for tests).
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// Polls `check` every 20 ms until it returns true or `within` passes; returns the last result.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes `contents` to a file in a new temp dir; keep the dir alive while the file is used.
pub fn write_temp(name: &str, contents: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, contents).expect("write temp file");
    (dir, path)
}
