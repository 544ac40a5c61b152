//! JWT verification keys: PEM files, an HS256 secret, and a JWKS that is fetched at start,
//! refreshed in the background, refetched (rate-limited) for an unknown `kid`, and kept when a
//! refresh fails, so an identity-provider outage does not turn into a 401 storm.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::config::{JwksConfig, JwtKeysConfig};
use crate::error::{BackendError, PolicyError};
use crate::net::http;

/// Largest JWKS document accepted.
const MAX_JWKS: usize = 1 << 20;

#[derive(Debug)]
struct Key {
    kid: Option<String>,
    key: Arc<DecodingKey>,
}

fn fits(key: &DecodingKey, alg: Algorithm) -> bool {
    key.family().algorithms().contains(&alg)
}

/// JWKS fetch counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JwksCounters {
    /// Successful fetches.
    pub fetched: u64,
    /// Failed fetches (the previous keys stayed in use).
    pub failed: u64,
}

#[derive(Debug)]
struct Jwks {
    cfg: JwksConfig,
    keys: ArcSwap<Vec<Key>>,
    /// Serializes refetches (concurrent unknown-`kid` requests wait for one fetch) and
    /// remembers when the last one ran (rate limit).
    refetch: tokio::sync::Mutex<Option<Instant>>,
    fetched: AtomicU64,
    failed: AtomicU64,
}

impl Jwks {
    async fn fetch(&self) -> Result<(), BackendError> {
        let result = fetch_jwks(&self.cfg).await;
        match result {
            Ok(keys) => {
                self.keys.store(Arc::new(keys));
                self.fetched.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(url = %self.cfg.url, error = %e, "JWKS fetch failed; keeping the previous keys");
                Err(e)
            }
        }
    }
}

async fn fetch_jwks(cfg: &JwksConfig) -> Result<Vec<Key>, BackendError> {
    let (status, body) = http::get(&cfg.url, cfg.timeout, MAX_JWKS).await?;
    if !status.is_success() {
        return Err(BackendError::Http(format!("status {status}")));
    }
    #[derive(serde::Deserialize)]
    struct Doc {
        keys: Vec<serde_json::Value>,
    }
    let doc: Doc =
        serde_json::from_slice(&body).map_err(|e| BackendError::Protocol(format!("JWKS: {e}")))?;
    let mut keys = Vec::new();
    // One unusable key (an encryption key, an unknown type) must not hide the others.
    for value in doc.keys {
        let jwk: Jwk = match serde_json::from_value(value) {
            Ok(j) => j,
            Err(e) => {
                tracing::debug!(error = %e, "skipping unparseable JWK");
                continue;
            }
        };
        if matches!(
            jwk.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
        ) {
            continue;
        }
        match DecodingKey::from_jwk(&jwk) {
            Ok(key) => keys.push(Key {
                kid: jwk.common.key_id.clone(),
                key: Arc::new(key),
            }),
            Err(e) => {
                tracing::debug!(kid = ?jwk.common.key_id, error = %e, "skipping unusable JWK")
            }
        }
    }
    if keys.is_empty() {
        return Err(BackendError::Protocol("JWKS holds no usable key".into()));
    }
    Ok(keys)
}

/// All keys of one JWT policy.
#[derive(Debug)]
pub(crate) struct KeyStore {
    fixed: Vec<Key>,
    jwks: Option<Arc<Jwks>>,
    refresher: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for KeyStore {
    fn drop(&mut self) {
        if let Some(task) = self.refresher.take() {
            task.abort();
        }
    }
}

impl KeyStore {
    /// Loads files and the secret, fetches the JWKS once and starts its refresh task.
    /// A failed first fetch is logged, not fatal: the refresh keeps trying.
    pub(crate) async fn load(cfg: &JwtKeysConfig) -> Result<Self, PolicyError> {
        let mut fixed = Vec::new();
        for f in &cfg.files {
            let pem = std::fs::read(&f.path).map_err(|source| PolicyError::ReadFile {
                path: f.path.clone(),
                source,
            })?;
            let what = f.path.display().to_string();
            let key = DecodingKey::from_rsa_pem(&pem)
                .or_else(|_| DecodingKey::from_ec_pem(&pem))
                .or_else(|_| DecodingKey::from_ed_pem(&pem))
                .map_err(|source| PolicyError::BadKey { what, source })?;
            fixed.push(Key {
                kid: f.kid.clone(),
                key: Arc::new(key),
            });
        }
        if let Some(var) = &cfg.secret_env {
            let secret = std::env::var(var).map_err(|_| PolicyError::MissingEnv(var.clone()))?;
            if secret.len() < 32 {
                return Err(PolicyError::invalid(
                    "jwt.keys.secret_env",
                    format!(
                        "{var} holds {} bytes; HS256 needs at least 32",
                        secret.len()
                    ),
                ));
            }
            fixed.push(Key {
                kid: None,
                key: Arc::new(DecodingKey::from_secret(secret.as_bytes())),
            });
        }
        let (jwks, refresher) = match &cfg.jwks {
            None => (None, None),
            Some(jc) => {
                let jwks = Arc::new(Jwks {
                    cfg: jc.clone(),
                    keys: ArcSwap::from_pointee(Vec::new()),
                    refetch: tokio::sync::Mutex::new(None),
                    fetched: AtomicU64::new(0),
                    failed: AtomicU64::new(0),
                });
                let first_ok = jwks.fetch().await.is_ok();
                let task = tokio::spawn(refresh_loop(Arc::downgrade(&jwks), first_ok));
                (Some(jwks), Some(task))
            }
        };
        if fixed.is_empty() && jwks.is_none() {
            return Err(PolicyError::invalid(
                "jwt.keys",
                "no key: set jwks, files or secret_env",
            ));
        }
        Ok(Self {
            fixed,
            jwks,
            refresher,
        })
    }

    /// Keys that may have signed a token with this `kid` and `alg`.
    pub(crate) fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Vec<Arc<DecodingKey>> {
        let matches = |k: &Key| {
            fits(&k.key, alg)
                && match (kid, &k.kid) {
                    (Some(want), Some(have)) => want == have,
                    // A key without a kid matches any token; a token without a kid tries every key.
                    _ => true,
                }
        };
        let mut out: Vec<_> = self
            .fixed
            .iter()
            .filter(|k| matches(k))
            .map(|k| k.key.clone())
            .collect();
        if let Some(j) = &self.jwks {
            out.extend(
                j.keys
                    .load()
                    .iter()
                    .filter(|k| matches(k))
                    .map(|k| k.key.clone()),
            );
        }
        out
    }

    /// A token named a `kid` we do not know: refetch the JWKS unless that was done within
    /// `min_refetch`. Concurrent callers share one fetch. `true` when a fetch succeeded.
    pub(crate) async fn refetch_for(&self, kid: &str) -> bool {
        let Some(j) = &self.jwks else { return false };
        let mut last = j.refetch.lock().await;
        if j.keys.load().iter().any(|k| k.kid.as_deref() == Some(kid)) {
            return true; // another request's refetch brought it
        }
        if last.is_some_and(|t| t.elapsed() < j.cfg.min_refetch) {
            return false;
        }
        *last = Some(Instant::now());
        j.fetch().await.is_ok()
    }

    /// JWKS fetch counters (zero without a JWKS).
    pub(crate) fn counters(&self) -> JwksCounters {
        self.jwks
            .as_ref()
            .map(|j| JwksCounters {
                fetched: j.fetched.load(Ordering::Relaxed),
                failed: j.failed.load(Ordering::Relaxed),
            })
            .unwrap_or_default()
    }
}

async fn refresh_loop(jwks: Weak<Jwks>, mut last_ok: bool) {
    loop {
        let wait = {
            let Some(j) = jwks.upgrade() else { return };
            // After a failure retry sooner than the full period (still rate-limited).
            if last_ok {
                j.cfg.refresh
            } else {
                j.cfg.min_refetch.min(j.cfg.refresh)
            }
        };
        tokio::time::sleep(wait.max(Duration::from_millis(100))).await;
        let Some(j) = jwks.upgrade() else { return };
        last_ok = j.fetch().await.is_ok();
    }
}
