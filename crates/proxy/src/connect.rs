//! Dialing: TCP (nodelay, keepalive), optional TLS with ALPN, then the HTTP handshake;
//! the connection's task is spawned holding its pool slot.

use std::future::poll_fn;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use sekisho_config::Protocol;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::pool::{H1Conn, H1Sender, H2Conn, H2Shared, Pool, Slot};
use crate::{UpstreamBody, UpstreamError};

/// TCP keepalive: notice dead peers (e.g. a vanished pod) on idle pooled connections.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Largest read buffer of an upstream HTTP/1 connection, which also bounds the response
/// head. hyper's default (~400 KiB) lets every connection streaming a large body grow its
/// buffer to that size and keep it: 20 concurrent 1 MiB downloads added 13 MiB of RSS. The
/// body is streamed on in chunks of at most this size anyway; nginx's equivalent
/// (`proxy_buffer_size`) is 4-8 KiB.
const UPSTREAM_READ_BUF_MAX: usize = 64 * 1024;

/// A freshly established connection, its task already running.
pub(crate) enum Established {
    /// HTTP/1.1.
    H1(H1Conn),
    /// HTTP/2 (h2 or h2c).
    H2(H2Conn),
}

/// Dials endpoints of one cluster.
pub(crate) struct Connector {
    pub(crate) protocol: Protocol,
    pub(crate) tls: Option<TlsConnector>,
    pub(crate) connect_timeout: Duration,
    /// Connect and TLS handshake times of this cluster.
    pub(crate) timings: crate::timings::Timings,
}

impl Connector {
    /// A connector; `tls` carries the ALPN list matching `protocol`.
    pub(crate) fn new(
        protocol: Protocol,
        tls: Option<Arc<ClientConfig>>,
        connect_timeout: Duration,
    ) -> Self {
        Self {
            protocol,
            tls: tls.map(TlsConnector::from),
            connect_timeout,
            timings: crate::timings::Timings::new(),
        }
    }

    /// Dials `addr`, bounded by `connect_timeout` as a whole (TCP + TLS + HTTP handshake),
    /// and spawns the connection's task, which owns `slot` until the connection ends.
    pub(crate) async fn connect(
        &self,
        addr: SocketAddr,
        server_name: Option<&ServerName<'static>>,
        pool: &Arc<Pool>,
        mut slot: Slot,
    ) -> Result<Established, UpstreamError> {
        let handshake =
            tokio::time::timeout(self.connect_timeout, self.handshake(addr, server_name))
                .await
                .map_err(|_| UpstreamError::ConnectTimeout {
                    addr,
                    timeout: self.connect_timeout,
                })??;
        match handshake {
            Handshake::H1(tx, conn) => {
                pool.established_h1(&mut slot);
                let (h1, home) = H1Conn::new(tx);
                let pool = pool.clone();
                tokio::spawn(async move {
                    // Upgrades (101) take the socket over; the connection then leaves
                    // the pool, and its slot with it.
                    let mut conn = std::pin::pin!(conn.with_upgrades());
                    let result = poll_fn(|cx| {
                        let r = conn.as_mut().poll(cx);
                        // This poll may have finished an exchange: hand the parked sender
                        // back to the pool now, without a task of its own.
                        pool.return_if_ready(&home);
                        r
                    })
                    .await;
                    if let Err(e) = result {
                        tracing::debug!(%addr, error = %e, "upstream HTTP/1 connection ended");
                    }
                    pool.forget_parked(&home);
                    drop(slot);
                });
                Ok(Established::H1(h1))
            }
            Handshake::H2(tx, conn) => {
                let shared = H2Shared::new();
                let h2 = H2Conn {
                    tx,
                    shared: shared.clone(),
                };
                pool.established_h2(&mut slot, &h2);
                let pool = pool.clone();
                tokio::spawn(async move {
                    let mut conn = std::pin::pin!(conn);
                    let result = poll_fn(|cx| {
                        let r = conn.as_mut().poll(cx);
                        // Track the server's stream limit, so the pool knows when to open
                        // another connection.
                        shared
                            .max_streams
                            .store(conn.current_max_send_streams(), Ordering::Relaxed);
                        r
                    })
                    .await;
                    if let Err(e) = result {
                        tracing::debug!(%addr, error = %e, "upstream HTTP/2 connection ended");
                    }
                    pool.remove_h2(&shared);
                    drop(slot);
                });
                Ok(Established::H2(h2))
            }
        }
    }

    /// TCP, TLS and the HTTP handshake, outside any pool (health checks dial this way);
    /// the caller drives the returned connection.
    pub(crate) async fn handshake(
        &self,
        addr: SocketAddr,
        server_name: Option<&ServerName<'static>>,
    ) -> Result<Handshake, UpstreamError> {
        let started = std::time::Instant::now();
        let tcp = tcp_connect(addr).await?;
        self.timings.connect(started.elapsed());
        let (io, h2) = match (&self.tls, server_name) {
            (Some(tls), Some(name)) => {
                let started = std::time::Instant::now();
                let stream = tls
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|source| UpstreamError::Tls { addr, source })?;
                self.timings.tls(started.elapsed());
                let alpn_h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                let h2 = match self.protocol {
                    Protocol::Auto => alpn_h2,
                    Protocol::Http1 => false,
                    // Configured for HTTP/2: speak it even if the server skipped ALPN.
                    Protocol::H2 | Protocol::H2c => true,
                };
                (Io::Tls(Box::new(stream)), h2)
            }
            _ => (
                Io::Plain(tcp),
                matches!(self.protocol, Protocol::H2c | Protocol::H2),
            ),
        };
        let io = TokioIo::new(io);
        let handshake_err = |source| UpstreamError::Handshake { addr, source };
        if h2 {
            let (tx, conn) = http2::Builder::new(TokioExecutor::new())
                .handshake(io)
                .await
                .map_err(handshake_err)?;
            Ok(Handshake::H2(tx, conn))
        } else {
            let (tx, conn) = http1::Builder::new()
                .max_buf_size(UPSTREAM_READ_BUF_MAX)
                .handshake(io)
                .await
                .map_err(handshake_err)?;
            Ok(Handshake::H1(tx, conn))
        }
    }
}

// Lives for one dial and is moved straight into the connection task; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Handshake {
    H1(H1Sender, http1::Connection<TokioIo<Io>, UpstreamBody>),
    H2(
        crate::pool::H2Sender,
        http2::Connection<TokioIo<Io>, UpstreamBody, TokioExecutor>,
    ),
}

pub(crate) async fn tcp_connect(addr: SocketAddr) -> Result<TcpStream, UpstreamError> {
    let failed = |source| UpstreamError::ConnectFailed { addr, source };
    let stream = TcpStream::connect(addr).await.map_err(failed)?;
    // Requests are small writes that must go out now, not after Nagle's delay.
    stream.set_nodelay(true).map_err(failed)?;
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL);
    if let Err(e) = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(%addr, error = %e, "cannot enable TCP keepalive");
    }
    Ok(stream)
}

/// A plaintext or TLS stream, without boxing a trait object.
pub(crate) enum Io {
    Plain(TcpStream),
    // Boxed: the TLS state is large and would bloat every plaintext connection.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
