//! The egress proxy: chocon-compatible connection aggregation to remote destinations over pooled keep-alive connections.
//!
//! Services send plain HTTP to `sekisho egress` on loopback; it keeps warm TCP + TLS
//! (and HTTP/2 where the origin offers it) connections to every destination, so a call
//! to a datacenter far away pays one round trip instead of three or four handshakes.
//!
//! - **Host convention** (chocon's): `Host: example.com.ccnproxy-https` goes to
//!   `https://example.com` ([`parse_host`]); `.ccnproxy` is plain http.
//! - **Fixed upstream** (`--upstream https://host:port`): every request goes there with
//!   its Host kept; the name is re-resolved every few seconds, the least busy address wins.
//! - **Safety**: loopback by default; allow/deny lists with cloud metadata denied
//!   ([`Policy`]); loops refused with 508.
//! - **Observability**: chocon's JSON access log, `/.api/http-stats`, `/.api/metrics`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sekisho_egress::EgressError> {
//! let egress = sekisho_egress::Egress::start(sekisho_egress::EgressConfig::default()).await?;
//! println!("listening on {}", egress.local_addr());
//! egress.shutdown().await;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod access;
mod body;
mod config;
mod error;
mod handler;
mod headers;
mod host;
mod policy;
mod pools;
mod respond;
mod server;
mod stats;

use std::path::{Path, PathBuf};

pub use config::{AccessLogSetting, EgressArgs, EgressConfig, FixedUpstream};
pub use error::EgressError;
pub use headers::{ID_HEADER, VERSION_HEADER};
pub use host::{parse_host, Destination, HostError, Scheme};
pub use policy::{Cidr, Denied, InvalidRule, Policy, Rule, DEFAULT_DENY};
pub use server::Egress;

/// Runs `sekisho egress` until SIGTERM or SIGINT, then shuts down gracefully.
/// Writes `--pid-file` at start and removes it at exit.
pub async fn run(args: EgressArgs) -> Result<(), EgressError> {
    let config = args.to_config()?;
    let pid_file = config.pid_file.clone();
    let egress = Egress::start(config).await?;
    let _pid = match &pid_file {
        Some(path) => Some(PidFile::write(path)?),
        None => None,
    };
    wait_for_signal().await?;
    tracing::info!("shutting down");
    egress.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() -> Result<(), EgressError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(EgressError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(EgressError::Signal)?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> Result<(), EgressError> {
    tokio::signal::ctrl_c().await.map_err(EgressError::Signal)
}

/// The pid file; removed when dropped.
struct PidFile(PathBuf);

impl PidFile {
    fn write(path: &Path) -> Result<Self, EgressError> {
        std::fs::write(path, format!("{}\n", std::process::id())).map_err(|source| {
            EgressError::PidFile {
                path: path.to_owned(),
                source,
            }
        })?;
        Ok(Self(path.to_owned()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
