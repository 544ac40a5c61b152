//! Starting and stopping the gateway.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use sekisho_config::{Config, ConfigError, ConfigErrors, LogTarget};
use sekisho_discovery::{DnsCache, DnsConfig};
use sekisho_telemetry::access_log::{AccessLog, AccessLogOptions, AccessLogTarget};
use sekisho_telemetry::metrics::{Registry, RequestMetrics};
use tokio::sync::watch;

use crate::control::{watch_files, Control, ReloadStatus};
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
    /// How many HTTP/1.1 requests the fast path served, and handed to the general pipeline.
    pub fast_path: FastPathCounters,
}

/// `sekisho_http1_fast_path_*`: how much HTTP/1.1 traffic takes the fast path.
pub struct FastPathCounters {
    /// Requests answered by the fast path.
    pub served: Arc<sekisho_telemetry::metrics::Counter>,
    /// Requests handed to the general pipeline (with their connection).
    pub handed_over: Arc<sekisho_telemetry::metrics::Counter>,
}

impl FastPathCounters {
    fn new(registry: &Registry) -> Result<Self, StartError> {
        let counter = |name: &str, help: &str| {
            registry
                .counter(name, help, &[])
                .map_err(|e| StartError::Setup(format!("metrics: {e}")))
        };
        Ok(FastPathCounters {
            served: counter(
                "sekisho_http1_fast_path_requests_total",
                "HTTP/1.1 requests served by the fast path.",
            )?,
            handed_over: counter(
                "sekisho_http1_fast_path_handovers_total",
                "HTTP/1.1 requests the fast path handed to the general pipeline (upgrades, policies, streamed bodies, ...).",
            )?,
        })
    }
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

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> Self {
        StartError::Config(ConfigErrors(vec![e]))
    }
}

/// How the gateway learns about config changes besides [`Gateway::reload`].
#[derive(Debug, Clone, Default)]
pub struct ReloadSource {
    /// The config file: `POST /reload` and [`Gateway::reload_file`] read it again.
    pub path: Option<PathBuf>,
    /// Check the file (and the certificates it names) this often and reload on change.
    pub watch_interval: Option<Duration>,
}

/// Zero-downtime binary upgrades through a Unix socket (see `handover`).
#[derive(Debug, Clone)]
pub struct Upgrade {
    /// The upgrade socket: a later process takes this one's listeners through it.
    pub socket: PathBuf,
    /// Take the listeners of the process currently serving on `socket` instead of binding.
    pub take_over: bool,
}

/// A running gateway.
pub struct Gateway {
    control: Arc<Control>,
    admin: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    handed_over: Arc<tokio::sync::Notify>,
}

impl Gateway {
    /// Compiles the config, binds every listener and starts serving.
    /// Listeners may use port 0; [`Gateway::listener_addr`] gives the bound address.
    pub async fn start(config: Config) -> Result<Gateway, StartError> {
        Self::start_with(config, ReloadSource::default()).await
    }

    /// Like [`Gateway::start`], reloading from `source.path` on `POST /reload`, and when the
    /// file changes if `source.watch_interval` is set.
    pub async fn start_with(config: Config, source: ReloadSource) -> Result<Gateway, StartError> {
        Self::start_upgradable(config, source, None).await
    }

    /// Like [`Gateway::start_with`], taking part in binary upgrades through `upgrade`.
    pub async fn start_upgradable(
        config: Config,
        source: ReloadSource,
        upgrade: Option<Upgrade>,
    ) -> Result<Gateway, StartError> {
        let mut inherited = match &upgrade {
            Some(u) if u.take_over => crate::handover::take_over(&u.socket)
                .await
                .map_err(|e| StartError::Setup(e.to_string()))?,
            _ => crate::handover::Inherited::default(),
        };
        let dns = DnsCache::new(DnsConfig {
            resolvers: config.dns.resolvers.clone(),
            min_ttl: config.dns.min_ttl,
            max_ttl: config.dns.max_ttl,
            timeout: config.dns.timeout,
            max_stale: config.dns.max_stale,
        })
        .map_err(|e| StartError::Setup(format!("DNS resolver: {e}")))?;
        let registry = Arc::new(Registry::new());
        let access_log = open_access_log(&config.access_log.target, &registry)?;
        let config = Arc::new(config);
        let policies = crate::policies::prepare(&config, None)
            .await
            .map_err(ConfigErrors)?;
        let plan = compile(config.clone(), policies, &dns, &registry, None)?;
        let fast_path = FastPathCounters::new(&registry)?;
        let shared = Arc::new(Shared {
            fast_path,
            plan: ArcSwap::from_pointee(plan),
            unrouted_metrics: registry.request_metrics("", ""),
            registry,
            access_log,
            dns,
            draining: AtomicBool::new(false),
        });
        let control = Control::start(shared, &config, source.path.clone(), &mut inherited)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let admin = match &config.admin {
            Some(a) => {
                let bind_err = |source| StartError::Bind {
                    name: "admin".into(),
                    addr: a.listen,
                    source,
                };
                let socket =
                    crate::listener::bind_or_inherit(a.listen, &mut inherited).map_err(bind_err)?;
                let addr = socket.local_addr().map_err(bind_err)?;
                let fd = std::os::fd::AsFd::as_fd(&socket)
                    .try_clone_to_owned()
                    .map_err(bind_err)?;
                tokio::spawn(crate::admin::serve(socket, control.clone(), shutdown_rx));
                Some((addr, Arc::new(fd)))
            }
            None => None,
        };
        let handed_over = Arc::new(tokio::sync::Notify::new());
        if let Some(u) = &upgrade {
            if u.take_over {
                crate::handover::complete(&mut inherited)
                    .map_err(|e| StartError::Setup(e.to_string()))?;
            }
            crate::handover::serve(
                Arc::downgrade(&control),
                admin.clone(),
                u.socket.clone(),
                handed_over.clone(),
            )
            .map_err(|e| StartError::Setup(e.to_string()))?;
        }
        let admin = admin.map(|(addr, _)| addr);
        if let (Some(path), Some(every)) = (source.path, source.watch_interval) {
            watch_files(Arc::downgrade(&control), path, every);
        }
        Ok(Gateway {
            control,
            admin,
            shutdown,
            handed_over,
        })
    }

    /// Completes when a new process has taken over the listeners (binary upgrade): the
    /// caller should then [`Gateway::shutdown`] to drain.
    pub async fn handed_over(&self) {
        self.handed_over.notified().await;
    }

    /// The bound address of a listener, by name.
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.control.listener_addr(name)
    }

    /// The admin listener's bound address.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// Replaces the running config (plan and listeners). On error nothing changes; the
    /// error is also counted and shown on `/config`.
    pub async fn reload(&self, config: Config) -> Result<(), ConfigErrors> {
        self.control.apply(config).await
    }

    /// Reloads the config file given in [`ReloadSource::path`].
    pub async fn reload_file(&self) -> Result<(), ConfigErrors> {
        self.control.reload_file().await
    }

    /// Outcome of the reloads so far.
    pub fn reload_status(&self) -> ReloadStatus {
        self.control.status()
    }

    /// Drains and stops: `/readyz` turns 503 at once; after `delay` (time for load balancers
    /// to notice) the listeners stop accepting, HTTP/1.1 responses carry `Connection: close`
    /// and HTTP/2 connections get GOAWAY; requests in flight get up to `drain` to finish.
    pub async fn shutdown(self, drain: Duration, delay: Duration) {
        self.control.shared.draining.store(true, Ordering::Relaxed);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.control.stop_listeners();
        let mut tasks =
            std::mem::take(&mut *self.control.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let all_done = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(drain, all_done).await.is_err() {
            tracing::warn!(?drain, "drain timeout: closing the remaining connections");
            tasks.abort_all();
        }
        let _ = self.shutdown.send(true);
        if let Some(log) = &self.control.shared.access_log {
            if let Err(e) = log.flush() {
                tracing::warn!(error = %e, "flushing the access log");
            }
        }
    }
}

fn open_access_log(
    target: &LogTarget,
    registry: &Registry,
) -> Result<Option<AccessLog>, StartError> {
    let target = match target {
        LogTarget::Off => return Ok(None),
        LogTarget::Stdout => AccessLogTarget::Stdout,
        LogTarget::Stderr => AccessLogTarget::Stderr,
        LogTarget::File(p) => AccessLogTarget::File(p.clone()),
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
    AccessLog::open(&target, options)
        .map(Some)
        .map_err(|e| StartError::Setup(format!("access log: {e}")))
}
