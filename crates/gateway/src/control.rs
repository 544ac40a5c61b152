//! Changing a running gateway: applying a new config (plan swap, listeners added, removed
//! or updated), reloading from the config file on demand or when it (or a certificate)
//! changes, and the reload status shown on `/config` and in metrics.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use sekisho_config::{Config, ConfigError, ConfigErrors};
use sekisho_telemetry::metrics::Counter;
use tokio::task::JoinSet;

use crate::listener::{self, Running, Settings};
use crate::plan::compile;
use crate::policies::Policies;
use crate::server::Shared;

/// The outcome of the latest reloads, for `/config`.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    /// Successful reloads since start.
    pub reloads: u64,
    /// Rejected reloads since start.
    pub failures: u64,
    /// The errors of the last rejected reload, if the last attempt failed.
    pub last_error: Option<String>,
    /// When the running config was applied.
    pub applied_at: Option<SystemTime>,
}

/// Owns the running listeners and applies config changes.
pub struct Control {
    /// Plan, telemetry and DNS shared with every connection.
    pub shared: Arc<Shared>,
    listeners: Mutex<HashMap<String, Running>>,
    /// Accept loops (each waits for its connections when stopped).
    pub tasks: Mutex<JoinSet<()>>,
    config_path: Option<PathBuf>,
    status: Mutex<ReloadStatus>,
    reloads_ok: Arc<Counter>,
    reloads_failed: Arc<Counter>,
    /// One reload at a time: SIGHUP, the file watcher and `POST /reload` may race.
    applying: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave them inconsistent (plain maps and
    // counters), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Control {
    /// Binds the config's listeners and starts serving them.
    pub fn start(
        shared: Arc<Shared>,
        config: &Config,
        config_path: Option<PathBuf>,
        inherited: &mut crate::handover::Inherited,
    ) -> Result<Arc<Control>, crate::StartError> {
        let registry = shared.registry.clone();
        let counter = |result: &str| {
            registry
                .counter(
                    "sekisho_config_reloads_total",
                    "Config reloads, by result (a rejected reload keeps the running config).",
                    &[("result", result)],
                )
                .unwrap_or_default()
        };
        let control = Arc::new(Control {
            shared,
            listeners: Mutex::new(HashMap::new()),
            tasks: Mutex::new(JoinSet::new()),
            config_path,
            status: Mutex::new(ReloadStatus {
                applied_at: Some(SystemTime::now()),
                ..Default::default()
            }),
            reloads_ok: counter("success"),
            reloads_failed: counter("failure"),
            applying: tokio::sync::Mutex::new(()),
        });
        let mut errors = Vec::new();
        for l in &config.listeners {
            let settings = match Settings::new(l) {
                Ok(s) => s,
                Err(mut e) => {
                    errors.append(&mut e);
                    continue;
                }
            };
            let bind_err = |source| crate::StartError::Bind {
                name: l.name.clone(),
                addr: l.listen,
                source,
            };
            let socket = listener::bind_or_inherit(l.listen, inherited).map_err(bind_err)?;
            let running = Running::start(
                socket,
                settings,
                control.shared.clone(),
                &mut lock(&control.tasks),
            )
            .map_err(bind_err)?;
            lock(&control.listeners).insert(l.name.clone(), running);
        }
        if !errors.is_empty() {
            return Err(crate::StartError::Config(ConfigErrors(errors)));
        }
        Ok(control)
    }

    /// The bound address of a listener.
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        lock(&self.listeners).get(name).map(|l| l.addr)
    }

    /// The listening sockets, for a binary upgrade.
    pub fn listener_fds(&self) -> Vec<(SocketAddr, Arc<std::os::fd::OwnedFd>)> {
        lock(&self.listeners)
            .values()
            .map(|r| (r.addr, r.fd.clone()))
            .collect()
    }

    /// The reload status.
    pub fn status(&self) -> ReloadStatus {
        lock(&self.status).clone()
    }

    /// Applies a new config: compiles the plan (clusters whose definition did not change keep
    /// their pools, health and DNS state), prepares every listener change (binding new
    /// addresses, reading certificates), and only when all of that worked swaps the plan and
    /// changes the listeners. On any error nothing changes.
    pub async fn apply(&self, config: Config) -> Result<(), ConfigErrors> {
        let _one = self.applying.lock().await;
        // Policies first, outside the plan compile: building one may fetch a JWKS.
        let current = self.shared.plan.load_full();
        let result = match crate::policies::prepare(&config, Some(&current.policies)).await {
            Ok(policies) => self.apply_locked(config, policies),
            Err(errors) => Err(ConfigErrors(errors)),
        };
        self.record(&result);
        result
    }

    fn apply_locked(&self, config: Config, policies: Policies) -> Result<(), ConfigErrors> {
        let current = self.shared.plan.load_full();
        let mut errors = Vec::new();
        // Prepare listeners first: a port that cannot be bound rejects the whole reload.
        let mut prepared: Vec<(String, Settings, Option<tokio::net::TcpListener>)> = Vec::new();
        {
            let running = lock(&self.listeners);
            for l in &config.listeners {
                let settings = match Settings::new(l) {
                    Ok(s) => s,
                    Err(mut e) => {
                        errors.append(&mut e);
                        continue;
                    }
                };
                // Same name and address: keep the socket, swap certificates and limits.
                let same_socket = running
                    .get(&l.name)
                    .is_some_and(|r| r.config().listen == l.listen);
                if same_socket {
                    prepared.push((l.name.clone(), settings, None));
                    continue;
                }
                // A new address: if another running listener holds it, it is being moved.
                match listener::bind(l.listen) {
                    Ok(socket) => prepared.push((l.name.clone(), settings, Some(socket))),
                    Err(e) => errors.push(ConfigError::at(
                        &l.at,
                        format!("cannot bind {}: {e}", l.listen),
                    )),
                }
            }
        }
        let plan = match compile(
            Arc::new(config),
            policies,
            &self.shared.dns,
            &self.shared.registry,
            Some(&current),
        ) {
            Ok(plan) => Some(plan),
            Err(mut e) => {
                errors.append(&mut e.0);
                None
            }
        };
        let plan = match plan {
            Some(p) if errors.is_empty() => p,
            _ => return Err(ConfigErrors(errors)),
        };
        // Commit: new plan first, so new listeners route with it.
        let names: Vec<String> = prepared.iter().map(|(n, _, _)| n.clone()).collect();
        self.shared.plan.store(Arc::new(plan));
        let mut running = lock(&self.listeners);
        let mut tasks = lock(&self.tasks);
        for (name, settings, socket) in prepared {
            match socket {
                None => {
                    if let Some(r) = running.get(&name) {
                        r.update(settings);
                    }
                }
                Some(socket) => {
                    match Running::start(socket, settings, self.shared.clone(), &mut tasks) {
                        // Replacing the entry drops (stops) the old listener, if any.
                        Ok(r) => {
                            running.insert(name, r);
                        }
                        Err(e) => {
                            tracing::error!(listener = %name, error = %e, "starting listener")
                        }
                    }
                }
            }
        }
        running.retain(|name, _| names.contains(name));
        Ok(())
    }

    fn record(&self, result: &Result<(), ConfigErrors>) {
        let mut status = lock(&self.status);
        match result {
            Ok(()) => {
                self.reloads_ok.inc();
                status.reloads += 1;
                status.last_error = None;
                status.applied_at = Some(SystemTime::now());
            }
            Err(errors) => {
                self.reloads_failed.inc();
                status.failures += 1;
                status.last_error = Some(errors.to_string());
                for e in &errors.0 {
                    tracing::error!("config rejected, the running config stays: {e}");
                }
            }
        }
    }

    /// Reloads from the config file the gateway was started with.
    pub async fn reload_file(&self) -> Result<(), ConfigErrors> {
        let Some(path) = &self.config_path else {
            return Err(ConfigErrors(vec![ConfigError::unplaced(
                "the gateway was not started from a config file",
            )]));
        };
        match sekisho_config::load_file(path) {
            Ok(config) => self.apply(config).await,
            Err(errors) => {
                let _one = self.applying.lock().await;
                let result = Err(errors);
                self.record(&result);
                result
            }
        }
    }

    /// Stops every listener (open connections drain).
    pub fn stop_listeners(&self) {
        for r in lock(&self.listeners).values() {
            r.stop();
        }
    }
}

/// Reloads when the config file or a file it names (certificates, keys, CAs, descriptor
/// sets) changes,
/// checking every `interval`. Stops when the gateway is dropped.
pub fn watch_files(control: Weak<Control>, path: PathBuf, interval: Duration) {
    // Taken now, not in the task: a change made right after start must not be missed.
    let mut last = fingerprint(&path, control.upgrade().as_deref());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let Some(c) = control.upgrade() else { return };
            let now = fingerprint(&path, Some(&c));
            if now != last {
                match c.reload_file().await {
                    Ok(()) => {
                        tracing::info!(config = %path.display(), "config reloaded (file changed)")
                    }
                    Err(_) => tracing::warn!(config = %path.display(), "changed config rejected"),
                }
                // Remember what was read (a bad file is not retried every tick); a successful
                // reload may name other files: watch those from now on.
                last = fingerprint(&path, Some(&c));
            }
        }
    });
}

type Fingerprint = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

fn fingerprint(config: &Path, control: Option<&Control>) -> Fingerprint {
    let mut files = vec![config.to_path_buf()];
    if let Some(c) = control {
        let plan = c.shared.plan.load();
        for l in &plan.config.listeners {
            for ck in l.tls.iter().flat_map(|t| &t.certs) {
                files.push(ck.cert.clone());
                files.push(ck.key.clone());
            }
        }
        for r in &plan.config.routes {
            if let Some(t) = &r.transcode {
                files.push(t.descriptors.clone());
            }
        }
        for cl in &plan.config.clusters {
            if let Some(t) = &cl.tls {
                files.extend(t.ca.iter().cloned());
                if let Some((cert, key)) = &t.client_cert {
                    files.push(cert.clone());
                    files.push(key.clone());
                }
            }
        }
    }
    files
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(&f)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            (f, meta)
        })
        .collect()
}
