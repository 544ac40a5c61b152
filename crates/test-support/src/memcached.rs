//! A real `memcached` on a loopback port (TCP only).
//!
//! ```no_run
//! use sekisho_test_support::memcached::Memcached;
//!
//! let mut mc = Memcached::start();
//! let addr = mc.addr(); // 127.0.0.1:PORT
//! mc.stop();
//! ```

use std::net::SocketAddr;

use crate::redis::process::{ServerProcess, Spec};

/// A running memcached; dropping it kills the process (only the one it started).
#[derive(Debug)]
pub struct Memcached {
    inner: ServerProcess,
}

impl Memcached {
    /// Starts memcached on a free loopback port and waits until it answers `mn` (meta no-op).
    ///
    /// # Panics
    /// When memcached is missing or does not come up (the message says `scripts/test.sh`
    /// installs it).
    pub fn start() -> Self {
        let inner = ServerProcess::start(&Spec {
            binary: "memcached",
            package: "memcached",
            args: &|port| {
                let mut args = vec![
                    "-l".into(),
                    "127.0.0.1".into(),
                    "-p".into(),
                    port.to_string(),
                    "-U".into(),
                    "0".into(),
                ];
                // memcached refuses to run as root without being told which user to be.
                if crate::redis::process::is_root() {
                    args.extend(["-u".into(), "root".into()]);
                }
                args
            },
            probe: b"mn\r\n",
            expect: b"MN",
        });
        Self { inner }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr()
    }

    /// Kills it; later connections are refused.
    pub fn stop(&mut self) {
        self.inner.stop();
    }

    /// Freezes it (SIGSTOP): connections are accepted by the kernel but never answered.
    pub fn pause(&self) {
        self.inner.signal("-STOP");
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&self) {
        self.inner.signal("-CONT");
    }
}
