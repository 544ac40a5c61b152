//! Per-key concurrency locks (the flash-sale purchase gate): at most one request per key is
//! proxied at a time, across every gateway instance sharing the backend.
//!
//! The pipeline calls [`LockPolicy::acquire`] after auth, rate limit and buffering (a key from
//! the body needs the body), and keeps the returned [`LockGuard`] alive until the response body
//! is finished. Dropping the guard (response complete, client abort, upstream failure: every
//! path drops it) spawns the release; the TTL is the safety net if the gateway dies.

mod backend;
pub mod key;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;

use crate::breaker::Breaker;
use crate::config::{FailMode, LockBackendConfig, LockConfig, LockWait, OnBusy};
use crate::error::{BackendError, PolicyError};
use crate::net::memcached::MemcachedClient;
use crate::net::redis::RedisClient;
use crate::request::{header_value, Reject, RequestView};
use backend::Backend;
use key::KeyTemplate;

/// Longest lock key, in bytes as stored: memcached's limit, counted after its escaping of
/// spaces and control characters (see [`key_len`]). Every backend applies the same bound, so
/// switching backends never changes which requests are accepted. A longer key is the
/// client's doing (it comes from the request) and is answered 400 `lock_key_too_long`; it
/// never reaches the backend and never counts as a backend failure.
pub const MAX_KEY_BYTES: usize = crate::net::memcached::MAX_KEY;

/// The length [`MAX_KEY_BYTES`] bounds: bytes, with each space, control or non-ASCII byte and
/// `%` counted as 3 (memcached's percent-encoding).
pub fn key_len(key: &str) -> usize {
    crate::net::memcached::encoded_len(key)
}

/// Counters of one lock policy, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockCounters {
    /// Locks taken.
    pub acquired: u64,
    /// Requests answered with `on_busy` after every attempt.
    pub busy: u64,
    /// Requests lacking the key field (400).
    pub bad_request: u64,
    /// Requests whose key is longer than [`MAX_KEY_BYTES`] (400).
    pub key_too_long: u64,
    /// Backend calls that failed or timed out (acquire and release).
    pub backend_errors: u64,
    /// Requests let through unlocked because the backend failed (`on_error: open`).
    pub failed_open: u64,
    /// Requests rejected because the backend failed (`on_error: closed`).
    pub failed_closed: u64,
    /// Locks released by their holder.
    pub released: u64,
    /// Releases that found the lock no longer ours (expired, maybe taken by another).
    pub release_lost: u64,
}

#[derive(Debug, Default)]
struct Counters {
    acquired: AtomicU64,
    busy: AtomicU64,
    bad_request: AtomicU64,
    key_too_long: AtomicU64,
    backend_errors: AtomicU64,
    failed_open: AtomicU64,
    failed_closed: AtomicU64,
    released: AtomicU64,
    release_lost: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A lock policy, built once from its config.
#[derive(Debug)]
pub struct LockPolicy {
    template: KeyTemplate,
    backend: Arc<Backend>,
    ttl: Duration,
    wait: LockWait,
    on_busy: OnBusy,
    on_error: FailMode,
    breaker: Breaker,
    counters: Arc<Counters>,
}

impl LockPolicy {
    /// Builds the policy (connecting is lazy).
    pub fn new(cfg: &LockConfig) -> Result<Self, PolicyError> {
        let template = KeyTemplate::parse(&cfg.key)?;
        if cfg.ttl < Duration::from_millis(1) {
            return Err(PolicyError::invalid("lock.ttl", "must be at least 1ms"));
        }
        StatusCode::from_u16(cfg.on_busy.status)
            .map_err(|_| PolicyError::invalid("lock.on_busy.status", "not an HTTP status"))?;
        let backend = match &cfg.backend {
            LockBackendConfig::Local => Backend::Local(Mutex::default()),
            LockBackendConfig::Memcached(addr) => {
                Backend::Memcached(MemcachedClient::new(addr, cfg.timeout)?)
            }
            LockBackendConfig::Redis(url) => Backend::Redis(RedisClient::new(url, cfg.timeout)?),
        };
        Ok(Self {
            template,
            backend: Arc::new(backend),
            ttl: cfg.ttl,
            wait: cfg.wait,
            on_busy: cfg.on_busy,
            on_error: cfg.on_error,
            breaker: Breaker::new(cfg.breaker),
            counters: Arc::default(),
        })
    }

    /// Whether the key needs the request body (buffer it, bounded, before [`LockPolicy::acquire`]).
    pub fn needs_body(&self) -> bool {
        self.template.needs_body()
    }

    /// The lock key of `req`, or a 400 when a field is missing.
    pub fn key(&self, req: &RequestView<'_>) -> Result<String, Reject> {
        self.template.render(req).map_err(|e| {
            bump(&self.counters.bad_request);
            tracing::debug!(error = %e, "lock key");
            Reject::new(StatusCode::BAD_REQUEST, "lock_key_missing")
        })
    }

    /// Takes the lock for `req`: `Ok(Some(guard))` held, `Ok(None)` proceed unlocked (backend
    /// failed, `on_error: open`), `Err` answer it (400 missing field, `on_busy`, or 503).
    pub async fn acquire(&self, req: &RequestView<'_>) -> Result<Option<LockGuard>, Reject> {
        let key = self.key(req)?;
        self.acquire_key(key).await
    }

    /// Like [`LockPolicy::acquire`] for an already rendered key.
    pub async fn acquire_key(&self, key: String) -> Result<Option<LockGuard>, Reject> {
        if key.is_empty() || key_len(&key) > MAX_KEY_BYTES {
            return Err(self.too_long(key_len(&key)));
        }
        let token = new_token();
        let mut attempt = 0;
        loop {
            if !self.breaker.allow() {
                return self.backend_failed(None);
            }
            match self.backend.try_acquire(&key, &token, self.ttl).await {
                Ok(true) => {
                    self.breaker.success();
                    bump(&self.counters.acquired);
                    return Ok(Some(LockGuard {
                        held: Some(Held {
                            backend: self.backend.clone(),
                            key,
                            token,
                            counters: self.counters.clone(),
                        }),
                    }));
                }
                Ok(false) => self.breaker.success(),
                // Not the backend's failure (and unreachable after the check above).
                Err(BackendError::InvalidKey(_)) => return Err(self.too_long(key_len(&key))),
                Err(e) => {
                    self.breaker.failure();
                    bump(&self.counters.backend_errors);
                    return self.backend_failed(Some(e));
                }
            }
            if attempt >= self.wait.attempts {
                bump(&self.counters.busy);
                let mut reject = Reject::new(
                    StatusCode::from_u16(self.on_busy.status)
                        .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                    "lock_busy",
                );
                if let Some(after) = self.on_busy.retry_after {
                    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
                    reject = reject
                        .with_header(http::header::RETRY_AFTER, header_value(&secs.to_string()));
                }
                return Err(reject);
            }
            attempt += 1;
            tokio::time::sleep(jitter(self.wait.backoff)).await;
        }
    }

    fn too_long(&self, len: usize) -> Reject {
        bump(&self.counters.key_too_long);
        tracing::debug!(len, max = MAX_KEY_BYTES, "lock key too long");
        Reject::new(StatusCode::BAD_REQUEST, "lock_key_too_long")
    }

    /// Whether the backend's circuit breaker is open (requests get `on_error` without a call).
    pub fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    fn backend_failed(&self, error: Option<BackendError>) -> Result<Option<LockGuard>, Reject> {
        match &error {
            Some(e) => tracing::warn!(error = %e, mode = ?self.on_error, "lock backend failed"),
            None => tracing::debug!(mode = ?self.on_error, "lock backend circuit open"),
        }
        match self.on_error {
            FailMode::Open => {
                bump(&self.counters.failed_open);
                Ok(None)
            }
            FailMode::Closed => {
                bump(&self.counters.failed_closed);
                Err(Reject::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "lock_unavailable",
                ))
            }
        }
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> LockCounters {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LockCounters {
            acquired: get(&c.acquired),
            busy: get(&c.busy),
            bad_request: get(&c.bad_request),
            key_too_long: get(&c.key_too_long),
            backend_errors: get(&c.backend_errors),
            failed_open: get(&c.failed_open),
            failed_closed: get(&c.failed_closed),
            released: get(&c.released),
            release_lost: get(&c.release_lost),
        }
    }
}

/// ±25% jitter so waiting requests from many gateways do not retry in lockstep.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.75 + fastrand::f64() * 0.5)
}

/// 128 random bits, hex: unique per acquisition across processes.
fn new_token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

#[derive(Debug)]
struct Held {
    backend: Arc<Backend>,
    key: String,
    token: String,
    counters: Arc<Counters>,
}

impl Held {
    async fn release(self) -> bool {
        match self.backend.release(&self.key, &self.token).await {
            Ok(true) => {
                bump(&self.counters.released);
                true
            }
            Ok(false) => {
                bump(&self.counters.release_lost);
                tracing::warn!(key = %self.key, "lock expired before release (ttl too short?)");
                false
            }
            Err(e) => {
                bump(&self.counters.backend_errors);
                tracing::warn!(key = %self.key, error = %e, "lock release failed; the ttl will free it");
                false
            }
        }
    }
}

/// A held lock. Keep it alive while the request is proxied and its response streamed; dropping
/// it releases the lock in the background.
#[derive(Debug)]
#[must_use = "dropping the guard releases the lock"]
pub struct LockGuard {
    held: Option<Held>,
}

impl LockGuard {
    /// The lock key.
    pub fn key(&self) -> &str {
        self.held.as_ref().map_or("", |h| h.key.as_str())
    }

    /// Releases now and waits for it; `true` when the lock was still ours and is now free.
    pub async fn release(mut self) -> bool {
        match self.held.take() {
            Some(h) => h.release().await,
            None => false,
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(held.release());
            }
            Err(_) => {
                tracing::warn!(key = %held.key, "lock dropped outside a runtime; the ttl will free it")
            }
        }
    }
}
