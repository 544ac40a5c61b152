//! A client listener: its socket, its accept loop, and settings that a reload may swap
//! (TLS certificates, limits) without closing the socket.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use sekisho_config::{ConfigError, Listener};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::conn_io::{Activity, ParkSlot, Replay, TimedIo, PARK_AFTER};
use crate::pipeline::{handle, ConnInfo};
use crate::server::Shared;

/// What a listener's connections are served with; replaced whole on reload.
pub struct Settings {
    /// The listener's config.
    pub config: Listener,
    tls: Option<TlsAcceptor>,
    builders: Arc<Builders>,
}

/// The same HTTP settings three ways. A connection whose protocol is known before hyper
/// reads from it (peeked plaintext bytes, TLS ALPN) gets the single-protocol server: the
/// `auto` one reads a 24-byte sniff first, which makes hyper's HTTP/1 read buffer grow from
/// 8 to 16 KiB on every connection, and it carries HTTP/1 and HTTP/2 state in one future.
struct Builders {
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
    /// When the first bytes do not decide it yet.
    auto: auto::Builder<TokioExecutor>,
}

impl Settings {
    /// Builds the settings (reads the TLS files) for a listener's config.
    pub fn new(config: &Listener) -> Result<Settings, Vec<ConfigError>> {
        let tls = match &config.tls {
            Some(t) => Some(TlsAcceptor::from(crate::tls::server_config(t)?)),
            None => None,
        };
        Ok(Settings {
            config: config.clone(),
            tls,
            builders: Arc::new(Builders::new(config)),
        })
    }
}

/// A listener being served.
pub struct Running {
    /// The bound address (the real port when the config said 0).
    pub addr: SocketAddr,
    /// A duplicate of the listening socket, to hand to a new process on upgrade.
    pub fd: Arc<std::os::fd::OwnedFd>,
    settings: Arc<ArcSwap<Settings>>,
    stop: watch::Sender<bool>,
}

impl Running {
    /// Starts serving `socket` with `settings`; the accept loop runs in `tasks`.
    pub fn start(
        socket: TcpListener,
        settings: Settings,
        shared: Arc<Shared>,
        tasks: &mut JoinSet<()>,
    ) -> std::io::Result<Running> {
        let addr = socket.local_addr()?;
        let fd = Arc::new(std::os::fd::AsFd::as_fd(&socket).try_clone_to_owned()?);
        let settings = Arc::new(ArcSwap::from_pointee(settings));
        let (stop, stop_rx) = watch::channel(false);
        tasks.spawn(accept_loop(socket, settings.clone(), shared, stop_rx));
        Ok(Running {
            addr,
            fd,
            settings,
            stop,
        })
    }

    /// The config the listener runs with.
    pub fn config(&self) -> Listener {
        self.settings.load().config.clone()
    }

    /// New certificates and limits for connections accepted from now on.
    pub fn update(&self, settings: Settings) {
        self.settings.store(Arc::new(settings));
    }

    /// Stops accepting; open connections finish their requests and close.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A listening socket: the one inherited from the previous process for this address if
/// there is one (binary upgrade), else a new one.
pub fn bind_or_inherit(
    addr: SocketAddr,
    inherited: &mut crate::handover::Inherited,
) -> std::io::Result<TcpListener> {
    match inherited.take(addr) {
        Some(l) => TcpListener::from_std(l),
        None => bind(addr),
    }
}

/// Binds a listening socket (backlog 4096, `SO_REUSEADDR`).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

impl Builders {
    fn new(l: &Listener) -> Builders {
        let mut h1 = http1::Builder::new();
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        let mut auto = auto::Builder::new(TokioExecutor::new());
        // hyper refuses buffers under 8 KiB; headers past the limit get 431.
        let max_head = usize::try_from(l.limits.max_header_bytes)
            .unwrap_or(usize::MAX)
            .max(8192);
        let max_header_list = u32::try_from(l.limits.max_header_bytes).unwrap_or(u32::MAX);
        macro_rules! h1_settings {
            ($b:expr) => {
                $b.timer(TokioTimer::new())
                    .keep_alive(true)
                    .max_buf_size(max_head)
                    .max_headers(128)
            };
        }
        macro_rules! h2_settings {
            ($b:expr) => {
                $b.timer(TokioTimer::new())
                    .max_concurrent_streams(l.limits.max_concurrent_streams)
                    .max_header_list_size(max_header_list)
                    // Rapid-reset bound (CVE-2023-44487).
                    .max_pending_accept_reset_streams(Some(20))
                    .keep_alive_interval(Some(Duration::from_secs(30)))
                    .keep_alive_timeout(Duration::from_secs(10))
            };
        }
        h1_settings!(h1);
        h1_settings!(auto.http1());
        h2_settings!(h2);
        h2_settings!(auto.http2());
        Builders { h1, h2, auto }
    }
}

/// The HTTP/2 connection preface (RFC 9113 §3.4): prior-knowledge h2c starts with it.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Which server a connection gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    H1,
    H2,
    /// Not decided by the bytes seen so far (a partial preface): hyper-util's `auto` reads on.
    Sniff,
}

/// A connection's I/O with its timeouts; HTTP/2 ones skip the HTTP/1 head scan.
fn timed_io<T>(
    io: T,
    proto: Proto,
    activity: &Arc<Activity>,
    idle: Duration,
    header: Duration,
) -> TimedIo<T> {
    let io = TimedIo::new(io, activity.clone(), idle, header);
    match proto {
        Proto::H2 => io.http2(),
        Proto::H1 | Proto::Sniff => io,
    }
}

/// Decides the protocol from the first bytes a client sent.
fn proto_of(first: &[u8]) -> Proto {
    let n = first.len().min(H2_PREFACE.len());
    if first.get(..n) != H2_PREFACE.get(..n) {
        Proto::H1
    } else if n == H2_PREFACE.len() {
        Proto::H2
    } else {
        Proto::Sniff
    }
}

/// How long a draining connection may carry one more request before it is closed.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Open connections of one listener, to enforce `max_connections` (which a reload may change).
#[derive(Default)]
struct Slots {
    open: AtomicUsize,
    freed: Notify,
}

struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Release);
        self.0.freed.notify_one();
    }
}

impl Slots {
    /// Waits until fewer than `max` connections are open, then takes a slot.
    async fn take(self: &Arc<Self>, max: usize) -> Slot {
        loop {
            let freed = self.freed.notified();
            if self.open.load(Ordering::Acquire) < max {
                self.open.fetch_add(1, Ordering::AcqRel);
                return Slot(self.clone());
            }
            freed.await;
        }
    }
}

async fn accept_loop(
    socket: TcpListener,
    settings: Arc<ArcSwap<Settings>>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Slots::default());
    let mut conns = JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        // Past max_connections, stop accepting: new clients wait in the kernel's queue.
        let max = settings.load().config.limits.max_connections;
        let slot = tokio::select! {
            s = slots.take(max) => s,
            _ = stop.changed() => break,
        };
        let (stream, remote) = tokio::select! {
            r = socket.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        while conns.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            settings: settings.load_full(),
            shared: shared.clone(),
            stop: stop.clone(),
        };
        conns.spawn(async move {
            conn.serve(stream, remote).await;
            drop(slot);
        });
    }
    drop(socket);
    // Let connections finish their requests; the gateway's drain timeout bounds the wait.
    while conns.join_next().await.is_some() {}
}

struct Conn {
    settings: Arc<Settings>,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
}

impl Conn {
    async fn serve(self, stream: TcpStream, remote: SocketAddr) {
        match self.settings.tls.clone() {
            None => self.serve_plain(stream, remote).await,
            // Boxed: plaintext connections' tasks do not carry the TLS state's size.
            Some(acceptor) => Box::pin(self.serve_tls(acceptor, stream, remote)).await,
        }
    }

    async fn serve_plain(self, mut stream: TcpStream, remote: SocketAddr) {
        let limits = &self.settings.config.limits;
        let (idle, header) = (limits.idle_timeout, limits.header_read_timeout);
        // A new connection must send its first bytes within the first-read deadline.
        let mut wait = idle.min(header);
        // Bytes the fast path read before handing the connection to hyper.
        let mut read = Vec::new();
        loop {
            let proto = if read.is_empty() {
                let Some(proto) = self.first_bytes(&stream, wait, remote).await else {
                    return;
                };
                proto
            } else {
                Proto::H1
            };
            if proto == Proto::H1 && read.is_empty() && self.settings.config.http1_fast_path {
                // Boxed: a parked connection's task keeps only this loop's small state.
                let fast = crate::fast::serve(
                    stream,
                    remote,
                    self.shared.clone(),
                    self.fast_limits(),
                    self.stop.clone(),
                );
                match Box::pin(fast).await {
                    crate::fast::Exit::Closed => return,
                    crate::fast::Exit::Parked(io) => {
                        // Idle: wait for the next request on the bare socket (the fast path's
                        // task state is freed) for the rest of the idle timeout.
                        stream = io;
                        wait = idle.saturating_sub(PARK_AFTER);
                        if wait.is_zero() {
                            return;
                        }
                        continue;
                    }
                    crate::fast::Exit::Fallback { io, read: r } => {
                        stream = io;
                        read = r;
                    }
                }
            }
            let activity = Arc::new(Activity::default());
            // The timeouts and the head scan sit above TLS: they need the plaintext.
            let replay = Replay::new(stream, std::mem::take(&mut read));
            let io = timed_io(replay, proto, &activity, idle, header);
            let slot = ParkSlot::new();
            let io = match proto {
                Proto::H1 => io.parking(slot.clone()),
                Proto::H2 | Proto::Sniff => io,
            };
            // Boxed: a parked connection's task keeps only this loop's small state, not
            // hyper's (2.8 KiB per connection otherwise).
            Box::pin(self.serve_io(io, remote, false, proto, activity)).await;
            // Parked (idle HTTP/1): hyper's state is gone; wait for the next request on the
            // bare socket for the rest of the idle timeout.
            match slot.take() {
                Some(parked) => (stream, read) = parked.into_parts(),
                None => return,
            }
            wait = idle.saturating_sub(PARK_AFTER);
        }
    }

    /// The listener's limits as the fast path applies them.
    fn fast_limits(&self) -> crate::fast::Limits {
        let l = &self.settings.config.limits;
        crate::fast::Limits {
            idle: l.idle_timeout,
            header: l.header_read_timeout,
            max_head: usize::try_from(l.max_header_bytes).unwrap_or(usize::MAX),
        }
    }

    /// Waits up to `wait` for a client's first bytes and picks the server from them; `None`
    /// when the connection should close.
    async fn first_bytes(
        &self,
        stream: &TcpStream,
        wait: Duration,
        remote: SocketAddr,
    ) -> Option<Proto> {
        let mut first = [0u8; H2_PREFACE.len()];
        let mut stop = self.stop.clone();
        let peeked = tokio::select! {
            r = tokio::time::timeout(wait, stream.peek(&mut first)) => r,
            // Draining: like an idle keep-alive connection, it gets the grace period.
            _ = async {
                let _ = stop.changed().await;
                tokio::time::sleep(DRAIN_GRACE).await;
            } => return None,
        };
        match peeked {
            Ok(Ok(0)) => None,
            Ok(Ok(n)) => Some(proto_of(first.get(..n).unwrap_or_default())),
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "connection failed while idle");
                None
            }
            Err(_) => {
                tracing::debug!(%remote, "no request before the idle or header read timeout");
                None
            }
        }
    }

    async fn serve_tls(self, acceptor: TlsAcceptor, stream: TcpStream, remote: SocketAddr) {
        let limits = &self.settings.config.limits;
        let (idle, header) = (limits.idle_timeout, limits.header_read_timeout);
        // The handshake is bounded by the header timeout.
        match tokio::time::timeout(header, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => {
                let proto = match tls.get_ref().1.alpn_protocol() {
                    Some(b"h2") => Proto::H2,
                    Some(b"http/1.1") => Proto::H1,
                    // No ALPN: the client may still speak h2 with prior knowledge.
                    _ => Proto::Sniff,
                };
                let activity = Arc::new(Activity::default());
                let io = timed_io(tls, proto, &activity, idle, header);
                self.serve_io(io, remote, true, proto, activity).await
            }
            Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
        }
    }

    async fn serve_io<I>(
        &self,
        io: I,
        remote: SocketAddr,
        tls: bool,
        proto: Proto,
        activity: Arc<Activity>,
    ) where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let info = Arc::new(ConnInfo {
            remote,
            tls,
            activity,
        });
        let shared = self.shared.clone();
        let service = service_fn(move |req| handle(shared.clone(), info.clone(), req));
        let io = TokioIo::new(io);
        let builders = self.settings.builders.clone();
        let stop = self.stop.clone();
        match proto {
            Proto::H1 => {
                let conn = builders.h1.serve_connection(io, service).with_upgrades();
                drive(
                    conn,
                    stop,
                    remote,
                    http1::UpgradeableConnection::graceful_shutdown,
                )
                .await
            }
            // Boxed, the other two: the common HTTP/1 connection's task stays small.
            Proto::H2 => {
                let conn = builders.h2.serve_connection(io, service);
                Box::pin(drive(
                    conn,
                    stop,
                    remote,
                    http2::Connection::graceful_shutdown,
                ))
                .await
            }
            Proto::Sniff => {
                let conn = builders.auto.serve_connection_with_upgrades(io, service);
                Box::pin(drive(
                    conn,
                    stop,
                    remote,
                    auto::UpgradeableConnection::graceful_shutdown,
                ))
                .await
            }
        }
    }
}

/// Serves a connection until it ends, draining it when the listener stops.
async fn drive<C, E>(
    conn: C,
    mut stop: watch::Receiver<bool>,
    remote: SocketAddr,
    graceful_shutdown: fn(std::pin::Pin<&mut C>),
) where
    C: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    tokio::pin!(conn);
    if !*stop.borrow() {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(%remote, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.changed() => {}
        }
    }
    // Draining. Closing an idle HTTP/1.1 keep-alive connection races with a client
    // sending its next request on it (which then fails), so connections first get a grace
    // period in which responses carry `Connection: close` (see the pipeline) and busy
    // clients move on by themselves; then the rest get a graceful close (GOAWAY on
    // HTTP/2), finishing what is in flight.
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(%remote, error = %e, "connection ended with an error while draining");
            }
            return;
        }
        _ = tokio::time::sleep(DRAIN_GRACE) => {}
    }
    graceful_shutdown(conn.as_mut());
    if let Err(e) = conn.await {
        tracing::debug!(%remote, error = %e, "connection ended with an error while draining");
    }
}

#[cfg(test)]
mod tests {
    use super::{proto_of, Proto, H2_PREFACE};

    #[test]
    fn first_bytes_pick_the_protocol() {
        assert_eq!(proto_of(b"GET / HTTP/1.1\r\n"), Proto::H1);
        assert_eq!(proto_of(b"G"), Proto::H1);
        assert_eq!(proto_of(b"PRI * HTTP/1.1\r\n"), Proto::H1);
        assert_eq!(proto_of(H2_PREFACE), Proto::H2);
        assert_eq!(proto_of(b"PRI * HTTP/2.0\r\n"), Proto::Sniff);
        assert_eq!(proto_of(b"P"), Proto::Sniff);
    }
}
