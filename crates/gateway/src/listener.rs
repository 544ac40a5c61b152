//! A client listener: its socket, its accept loop, and settings that a reload may swap
//! (TLS certificates, limits) without closing the socket.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use sekisho_config::{ConfigError, Listener};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::conn_io::{Activity, TimedIo};
use crate::pipeline::{handle, ConnInfo};
use crate::server::Shared;

/// What a listener's connections are served with; replaced whole on reload.
pub struct Settings {
    /// The listener's config.
    pub config: Listener,
    tls: Option<TlsAcceptor>,
    builder: Arc<auto::Builder<TokioExecutor>>,
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
            builder: Arc::new(http_builder(config)),
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

fn http_builder(l: &Listener) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    // hyper refuses buffers under 8 KiB; headers past the limit get 431.
    let max_head = usize::try_from(l.limits.max_header_bytes)
        .unwrap_or(usize::MAX)
        .max(8192);
    b.http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .max_buf_size(max_head)
        .max_headers(128);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(l.limits.max_concurrent_streams)
        .max_header_list_size(u32::try_from(l.limits.max_header_bytes).unwrap_or(u32::MAX))
        // Rapid-reset bound (CVE-2023-44487).
        .max_pending_accept_reset_streams(Some(20))
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    b
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
        let limits = &self.settings.config.limits;
        let (idle, header) = (limits.idle_timeout, limits.header_read_timeout);
        let activity = Arc::new(Activity::default());
        // The timeouts and the head scan sit above TLS: they need the plaintext.
        match self.settings.tls.clone() {
            None => {
                let io = TimedIo::new(stream, activity.clone(), idle, header);
                self.serve_io(io, remote, false, activity).await
            }
            Some(acceptor) => {
                // The handshake is bounded by the header timeout.
                match tokio::time::timeout(header, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let io = TimedIo::new(tls, activity.clone(), idle, header);
                        self.serve_io(io, remote, true, activity).await
                    }
                    Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                }
            }
        }
    }

    async fn serve_io<I>(mut self, io: I, remote: SocketAddr, tls: bool, activity: Arc<Activity>)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let info = Arc::new(ConnInfo {
            remote,
            tls,
            activity,
        });
        let shared = self.shared.clone();
        let service = service_fn(move |req| handle(shared.clone(), info.clone(), req));
        let builder = self.settings.builder.clone();
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(conn);
        if !*self.stop.borrow() {
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(%remote, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = self.stop.changed() => {}
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
        conn.as_mut().graceful_shutdown();
        if let Err(e) = conn.await {
            tracing::debug!(%remote, error = %e, "connection ended with an error while draining");
        }
    }
}
