//! A tiny pool of idle TCP connections to one address.
//!
//! A connection goes back to the pool only after a complete exchange: a call cut by its timeout
//! drops its connection, so a late reply can never be read as the answer to the next call.

use std::sync::Mutex;

use tokio::io::BufStream;
use tokio::net::TcpStream;

/// A buffered connection.
pub(crate) type Conn = BufStream<TcpStream>;

/// Idle connections to `addr`.
#[derive(Debug)]
pub(crate) struct Pool {
    addr: String,
    idle: Mutex<Vec<Conn>>,
    max_idle: usize,
}

impl Pool {
    pub(crate) fn new(addr: String, max_idle: usize) -> Self {
        Self {
            addr,
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    /// An idle connection, or a new one (the caller bounds the whole call with a timeout).
    /// The `bool` says whether it is new (needs its handshake).
    pub(crate) async fn get(&self) -> std::io::Result<(Conn, bool)> {
        let idle = self.idle.lock().map(|mut v| v.pop()).unwrap_or(None);
        if let Some(c) = idle {
            return Ok((c, false));
        }
        let tcp = TcpStream::connect(&self.addr).await?;
        tcp.set_nodelay(true)?;
        Ok((BufStream::new(tcp), true))
    }

    /// Returns a connection after a complete exchange.
    pub(crate) fn put(&self, conn: Conn) {
        if let Ok(mut v) = self.idle.lock() {
            if v.len() < self.max_idle {
                v.push(conn);
            }
        }
    }

    /// Drops every idle connection (after an error, the others are likely dead too).
    pub(crate) fn clear(&self) {
        if let Ok(mut v) = self.idle.lock() {
            v.clear();
        }
    }
}
