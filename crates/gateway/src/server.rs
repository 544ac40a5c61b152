//! Starting and stopping the gateway: listeners, the accept loops, connection serving.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use sekisho_config::{Config, ConfigError, ConfigErrors, Listener, LogTarget};
use sekisho_discovery::{DnsCache, DnsConfig};
use sekisho_telemetry::access_log::{AccessLog, AccessLogOptions, AccessLogTarget};
use sekisho_telemetry::metrics::{Registry, RequestMetrics};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::conn_io::{Activity, TimedIo};
use crate::pipeline::{handle, ConnInfo};
use crate::plan::{compile, Plan};

/// State shared by every connection: the current plan and the telemetry sinks.
pub struct Shared {
    /// The plan requests are served with; swapped whole on reload.
    pub plan: ArcSwap<Plan>,
    /// Metrics.
    pub registry: Arc<Registry>,
    /// The access log, unless `access_log.path: off`.
    pub access_log: Option<AccessLog>,
    /// Metrics for requests that matched no route.
    pub unrouted_metrics: Arc<RequestMetrics>,
    /// The DNS cache every cluster resolves through.
    pub dns: Arc<DnsCache>,
    /// Set when the gateway starts draining: `/readyz` turns 503.
    pub draining: AtomicBool,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config is invalid (every error, with YAML path and line).
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// A listener could not bind.
    #[error("listener {name:?} cannot bind {addr}: {source}")]
    Bind {
        /// Listener name.
        name: String,
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The access log file could not be opened, or the DNS resolver set up.
    #[error("{0}")]
    Setup(String),
}

/// A running gateway.
pub struct Gateway {
    shared: Arc<Shared>,
    listeners: HashMap<String, SocketAddr>,
    admin: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Gateway {
    /// Compiles the config, binds every listener and starts serving.
    /// Listeners may use port 0; [`Gateway::listener_addr`] gives the bound address.
    pub async fn start(config: Config) -> Result<Gateway, StartError> {
        let dns = DnsCache::new(DnsConfig {
            resolvers: config.dns.resolvers.clone(),
            min_ttl: config.dns.min_ttl,
            max_ttl: config.dns.max_ttl,
            timeout: config.dns.timeout,
            max_stale: config.dns.max_stale,
        })
        .map_err(|e| StartError::Setup(format!("DNS resolver: {e}")))?;
        let registry = Arc::new(Registry::new());
        let access_log = match &config.access_log.target {
            LogTarget::Off => None,
            target => {
                let target = match target {
                    LogTarget::Stdout => AccessLogTarget::Stdout,
                    LogTarget::Stderr => AccessLogTarget::Stderr,
                    LogTarget::File(p) => AccessLogTarget::File(p.clone()),
                    LogTarget::Off => AccessLogTarget::Off,
                };
                let dropped = registry
                    .counter(
                        "sekisho_access_log_dropped_total",
                        "Access log lines dropped because the writer fell behind.",
                        &[],
                    )
                    .ok();
                let options = AccessLogOptions {
                    dropped,
                    ..Default::default()
                };
                Some(
                    AccessLog::open(&target, options)
                        .map_err(|e| StartError::Setup(format!("access log: {e}")))?,
                )
            }
        };
        let config = Arc::new(config);
        let plan = compile(config.clone(), &dns, &registry, None)?;
        let shared = Arc::new(Shared {
            plan: ArcSwap::from_pointee(plan),
            unrouted_metrics: registry.request_metrics("", ""),
            registry,
            access_log,
            dns,
            draining: AtomicBool::new(false),
        });

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut listeners = HashMap::new();
        let mut tls_errors = Vec::new();
        for l in &config.listeners {
            let tls = match &l.tls {
                Some(t) => match crate::tls::server_config(t) {
                    Ok(c) => Some(TlsAcceptor::from(c)),
                    Err(mut e) => {
                        tls_errors.append(&mut e);
                        continue;
                    }
                },
                None => None,
            };
            let socket = bind(l.listen).map_err(|source| StartError::Bind {
                name: l.name.clone(),
                addr: l.listen,
                source,
            })?;
            let addr = socket.local_addr().map_err(|source| StartError::Bind {
                name: l.name.clone(),
                addr: l.listen,
                source,
            })?;
            listeners.insert(l.name.clone(), addr);
            tasks.spawn(accept_loop(
                socket,
                l.clone(),
                tls,
                shared.clone(),
                shutdown_rx.clone(),
            ));
        }
        if !tls_errors.is_empty() {
            return Err(StartError::Config(ConfigErrors(tls_errors)));
        }
        let admin = match &config.admin {
            Some(a) => {
                let socket = bind(a.listen).map_err(|source| StartError::Bind {
                    name: "admin".into(),
                    addr: a.listen,
                    source,
                })?;
                let addr = socket.local_addr().map_err(|source| StartError::Bind {
                    name: "admin".into(),
                    addr: a.listen,
                    source,
                })?;
                tasks.spawn(crate::admin::serve(
                    socket,
                    shared.clone(),
                    shutdown_rx.clone(),
                ));
                Some(addr)
            }
            None => None,
        };
        Ok(Gateway {
            shared,
            listeners,
            admin,
            shutdown,
            tasks,
        })
    }

    /// The bound address of a listener, by name.
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners.get(name).copied()
    }

    /// The admin listener's bound address.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// Replaces the running config. On error nothing changes.
    pub fn reload(&self, config: Config) -> Result<(), ConfigErrors> {
        let current = self.shared.plan.load_full();
        let plan = compile(
            Arc::new(config),
            &self.shared.dns,
            &self.shared.registry,
            Some(&current),
        )?;
        self.shared.plan.store(Arc::new(plan));
        Ok(())
    }

    /// Stops accepting, lets requests in flight finish for up to `drain`, then returns.
    pub async fn shutdown(mut self, drain: Duration) {
        self.shared
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.shutdown.send(true);
        let all_done = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(drain, all_done).await.is_err() {
            self.tasks.abort_all();
        }
        if let Some(log) = &self.shared.access_log {
            if let Err(e) = log.flush() {
                tracing::warn!(error = %e, "flushing the access log");
            }
        }
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
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

async fn accept_loop(
    socket: TcpListener,
    listener: Listener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let builder = Arc::new(http_builder(&listener));
    let limit = Arc::new(Semaphore::new(listener.limits.max_connections));
    let mut conns = JoinSet::new();
    loop {
        // Past max_connections, stop accepting: new clients wait in the kernel's queue.
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        let (stream, remote) = tokio::select! {
            r = socket.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(listener = %listener.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        while conns.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let conn = ConnState {
            builder: builder.clone(),
            shared: shared.clone(),
            tls: tls.clone(),
            limits: (
                listener.limits.idle_timeout,
                listener.limits.header_read_timeout,
            ),
            shutdown: shutdown.clone(),
        };
        conns.spawn(async move {
            conn.serve(stream, remote).await;
            drop(permit);
        });
    }
    drop(socket);
    // Let connections finish their requests; `Gateway::shutdown` bounds the wait.
    while conns.join_next().await.is_some() {}
}

struct ConnState {
    builder: Arc<auto::Builder<TokioExecutor>>,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
    limits: (Duration, Duration),
    shutdown: watch::Receiver<bool>,
}

impl ConnState {
    async fn serve(self, stream: TcpStream, remote: SocketAddr) {
        let (idle, header) = self.limits;
        let activity = Arc::new(Activity::default());
        let io = TimedIo::new(stream, activity.clone(), idle, header);
        match &self.tls {
            None => self.serve_io(io, remote, false, activity).await,
            Some(acceptor) => {
                // The handshake is bounded by the header timeout too.
                match tokio::time::timeout(header, acceptor.accept(io)).await {
                    Ok(Ok(tls)) => self.serve_io(tls, remote, true, activity).await,
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
        let conn = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(conn);
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(%remote, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = self.shutdown.changed() => {}
        }
        // Draining: Connection: close on HTTP/1.1, GOAWAY on HTTP/2; finish what is in flight.
        conn.as_mut().graceful_shutdown();
        if let Err(e) = conn.await {
            tracing::debug!(%remote, error = %e, "connection ended with an error while draining");
        }
    }
}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> Self {
        StartError::Config(ConfigErrors(vec![e]))
    }
}
