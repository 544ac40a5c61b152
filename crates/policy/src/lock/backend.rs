//! Where locks live: this process, memcached (meta `ms ... ME` add, `mg`+`md C<cas>` release) or
//! Redis (`SET NX PX`, Lua compare-and-delete). Only the holder's token releases a lock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::BackendError;
use crate::net::memcached::MemcachedClient;
use crate::net::redis::{RedisClient, Value};

/// Deletes KEYS[1] only while it still holds ARGV[1] (our token).
const REDIS_RELEASE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// A lock store.
#[derive(Debug)]
pub(crate) enum Backend {
    Local(Mutex<HashMap<String, (String, Instant)>>),
    Memcached(MemcachedClient),
    Redis(RedisClient),
}

impl Backend {
    /// Takes `key` for `token` unless someone holds it. `true` when taken.
    pub(crate) async fn try_acquire(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        match self {
            Self::Local(map) => {
                let mut map = map
                    .lock()
                    .map_err(|_| BackendError::Protocol("local lock table poisoned".into()))?;
                let now = Instant::now();
                if map.len() > 10_000 {
                    map.retain(|_, (_, until)| *until > now);
                }
                match map.get(key) {
                    Some((_, until)) if *until > now => Ok(false),
                    _ => {
                        map.insert(key.to_string(), (token.to_string(), now + ttl));
                        Ok(true)
                    }
                }
            }
            Self::Memcached(c) => c.add(key, token.as_bytes(), ttl).await,
            Self::Redis(c) => {
                let ms = ttl.as_millis().max(1).to_string();
                match c
                    .cmd(&[
                        b"SET",
                        key.as_bytes(),
                        token.as_bytes(),
                        b"NX",
                        b"PX",
                        ms.as_bytes(),
                    ])
                    .await?
                {
                    Value::Data(d) if d == b"OK" => Ok(true),
                    Value::Nil => Ok(false),
                    other => Err(BackendError::Protocol(format!("SET NX answered {other:?}"))),
                }
            }
        }
    }

    /// Releases `key` if `token` still holds it. `true` when released.
    pub(crate) async fn release(&self, key: &str, token: &str) -> Result<bool, BackendError> {
        match self {
            Self::Local(map) => {
                let mut map = map
                    .lock()
                    .map_err(|_| BackendError::Protocol("local lock table poisoned".into()))?;
                match map.get(key) {
                    Some((t, _)) if t == token => {
                        map.remove(key);
                        Ok(true)
                    }
                    _ => Ok(false),
                }
            }
            Self::Memcached(c) => c.delete_if(key, token.as_bytes()).await,
            Self::Redis(c) => match c
                .eval(REDIS_RELEASE, &[key.as_bytes()], &[token.as_bytes()])
                .await?
            {
                Value::Int(n) => Ok(n == 1),
                other => Err(BackendError::Protocol(format!(
                    "release script answered {other:?}"
                ))),
            },
        }
    }
}
