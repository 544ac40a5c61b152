//! Starting and stopping the egress proxy: the listener, the accept loop, connections,
//! graceful shutdown.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use sekisho_discovery::DnsCache;
use sekisho_telemetry::access_log::AccessLog;
use sekisho_telemetry::metrics::{MetricWriter, Registry};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{EgressConfig, FixedUpstream};
use crate::error::EgressError;
use crate::handler::handle;
use crate::policy::Policy;
use crate::pools::{FilteredDns, PoolSettings, Pools};
use crate::stats::HttpStats;

/// State every connection shares.
pub(crate) struct Shared {
    pub(crate) stats: HttpStats,
    pub(crate) access_log: AccessLog,
    pub(crate) registry: Arc<Registry>,
    pub(crate) pools: Arc<Pools>,
    pub(crate) fixed: Option<FixedUpstream>,
    pub(crate) dns: Arc<DnsCache>,
    pub(crate) policy: Arc<Policy>,
    pub(crate) write_timeout: Duration,
    pub(crate) proxy_read_timeout: Duration,
    /// The whole request (head and body) must arrive within this (chocon's ReadTimeout).
    pub(crate) read_timeout: Duration,
}

/// A running egress proxy.
pub struct Egress {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept: JoinSet<()>,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Egress {
    /// Binds the listener and starts serving (port 0 picks a free port; see
    /// [`Egress::local_addr`]). Must be called inside a Tokio runtime.
    pub async fn start(config: EgressConfig) -> Result<Egress, EgressError> {
        let dns = DnsCache::new(config.dns.clone())?;
        let policy = Arc::new(config.policy.clone());
        let registry = Arc::new(Registry::new());
        let resolver = Arc::new(FilteredDns {
            dns: dns.clone(),
            policy: policy.clone(),
        });
        let pools = Pools::new(
            PoolSettings::from_config(&config),
            resolver,
            registry.clone(),
            config.max_destinations,
        );
        if let Some(up) = &config.upstream {
            // Build the pool now: a bad CA file or server name fails at start, not per request.
            pools
                .get(up.scheme, &up.host, up.port)
                .map_err(EgressError::Upstream)?;
        }
        let weak: Weak<Pools> = Arc::downgrade(&pools);
        registry.register_collector(Arc::new(move |w: &mut MetricWriter| {
            if let Some(p) = weak.upgrade() {
                p.collect(w);
            }
        }));
        let shared = Arc::new(Shared {
            stats: HttpStats::new(),
            access_log: crate::access::open(&config.access_log)?,
            registry,
            pools,
            fixed: config.upstream.clone(),
            dns,
            policy,
            write_timeout: config.write_timeout,
            read_timeout: config.read_timeout,
            proxy_read_timeout: config.proxy_read_timeout,
        });
        let listener = bind(config.listen).map_err(|source| EgressError::Bind {
            addr: config.listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| EgressError::Bind {
            addr: config.listen,
            source,
        })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut accept = JoinSet::new();
        accept.spawn(accept_loop(
            listener,
            Arc::new(builder(config.read_timeout)),
            shared.clone(),
            shutdown_rx,
        ));
        tracing::info!(%addr, fixed_upstream = ?config.upstream, "egress proxy listening");
        Ok(Egress {
            shared,
            addr,
            shutdown,
            accept,
            shutdown_timeout: config.shutdown_timeout,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets requests in flight finish for up to `--shutdown-timeout`
    /// (HTTP/1.1 connections are closed after their response, HTTP/2 ones get GOAWAY),
    /// then closes what is left and flushes the access log.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        let all_done = async { while self.accept.join_next().await.is_some() {} };
        if tokio::time::timeout(self.shutdown_timeout, all_done)
            .await
            .is_err()
        {
            tracing::warn!(timeout = ?self.shutdown_timeout, "shutdown timeout passed; closing connections with requests in flight");
            self.accept.abort_all();
        }
        if let Err(e) = self.shared.access_log.flush() {
            tracing::warn!(error = %e, "flushing the access log");
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
    socket.listen(1024)
}

fn builder(read_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        // chocon's ReadTimeout, for the request head (slow clients hold no upstream slot).
        .header_read_timeout(read_timeout);
    b.http2()
        .timer(TokioTimer::new())
        .max_pending_accept_reset_streams(Some(20))
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    b
}

async fn accept_loop(
    listener: TcpListener,
    builder: Arc<auto::Builder<TokioExecutor>>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        let (stream, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        while conns.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        conns.spawn(serve(
            stream,
            remote,
            builder.clone(),
            shared.clone(),
            shutdown.clone(),
        ));
    }
    drop(listener);
    // `Egress::shutdown` bounds this wait (and aborts this task, dropping the connections).
    while conns.join_next().await.is_some() {}
}

async fn serve(
    stream: TcpStream,
    remote: SocketAddr,
    builder: Arc<auto::Builder<TokioExecutor>>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let service = service_fn(move |req| handle(shared.clone(), remote, req));
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(%remote, error = %e, "client connection ended with an error");
            }
            return;
        }
        _ = shutdown.changed() => {}
    }
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(%remote, error = %e, "client connection ended with an error while draining");
    }
}
