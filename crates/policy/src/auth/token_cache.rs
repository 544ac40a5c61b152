//! A bounded cache of verified JWTs (like Envoy's `jwt_cache_config`): clients send the same
//! token on every request, and a signature check costs tens to hundreds of microseconds while
//! a lookup costs well under one.
//!
//! Only tokens that passed every check are cached, with their claims. A hit is still checked
//! against `exp` (plus leeway) at lookup time, so an entry never outlives its token; and no
//! entry lives longer than [`MAX_AGE`], so a key removed from the JWKS stops verifying
//! cached tokens within that time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// Longest time a verified token is trusted without checking its signature again.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(300);
/// Shards: concurrent lookups rarely share a lock.
const SHARDS: usize = 16;

struct Entry {
    claims: Arc<Map<String, Value>>,
    /// `exp` + leeway, in Unix seconds.
    valid_until: u64,
    cached_at: Instant,
}

/// Verified tokens, by their text.
pub(crate) struct TokenCache {
    shards: Vec<Mutex<HashMap<Box<str>, Entry>>>,
    per_shard: usize,
    leeway: u64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("per_shard", &self.per_shard)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn shard_of(token: &str) -> usize {
    // The signature (the token's tail) is already uniformly random.
    token.bytes().rev().take(8).fold(0usize, |h, b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    }) % SHARDS
}

impl TokenCache {
    /// A cache of at most `max_entries` tokens (0: `None`, no caching).
    pub(crate) fn new(max_entries: usize, leeway: Duration) -> Option<Self> {
        if max_entries == 0 {
            return None;
        }
        Some(Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: max_entries.div_ceil(SHARDS),
            leeway: leeway.as_secs(),
        })
    }

    /// The claims of `token` if it was verified recently and has not expired since.
    pub(crate) fn get(&self, token: &str) -> Option<Arc<Map<String, Value>>> {
        let shard = self.shards.get(shard_of(token))?;
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.get(token)?;
        if entry.valid_until < unix_now() || entry.cached_at.elapsed() > MAX_AGE {
            map.remove(token);
            return None;
        }
        Some(entry.claims.clone())
    }

    /// Remembers a token that passed every check. Tokens without a numeric `exp` are not
    /// cached (every verified token has one: `exp` is required).
    pub(crate) fn put(&self, token: &str, claims: Arc<Map<String, Value>>) {
        let Some(exp) = claims.get("exp").and_then(Value::as_u64) else {
            return;
        };
        let Some(shard) = self.shards.get(shard_of(token)) else {
            return;
        };
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.per_shard {
            let now = unix_now();
            map.retain(|_, e| e.valid_until >= now && e.cached_at.elapsed() <= MAX_AGE);
            if map.len() >= self.per_shard {
                // Full of live tokens (many clients): start the shard over rather than scan
                // for the oldest; the cost is one signature check per evicted client.
                map.clear();
            }
        }
        map.insert(
            token.into(),
            Entry {
                claims,
                valid_until: exp.saturating_add(self.leeway),
                cached_at: Instant::now(),
            },
        );
    }

    /// Entries held (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Arc<Map<String, Value>> {
        let mut m = Map::new();
        m.insert("exp".into(), Value::from(exp));
        Arc::new(m)
    }

    #[test]
    fn hits_until_expiry_and_stays_bounded() {
        let c = TokenCache::new(32, Duration::from_secs(5)).unwrap();
        let now = unix_now();
        c.put("a.b.live", claims(now + 60));
        assert!(c.get("a.b.live").is_some());
        assert!(c.get("a.b.other").is_none());
        // Expired beyond the leeway: never served, and dropped.
        c.put("a.b.dead", claims(now - 10));
        assert!(c.get("a.b.dead").is_none());
        // Within the leeway: still served (the verifier accepted it the same way).
        c.put("a.b.grace", claims(now - 2));
        assert!(c.get("a.b.grace").is_some());
        // No exp: not cached.
        c.put("a.b.noexp", Arc::new(Map::new()));
        assert!(c.get("a.b.noexp").is_none());
        for i in 0..10_000 {
            c.put(&format!("t.{i}.sig{i}"), claims(now + 60));
        }
        assert!(c.len() <= 32 + SHARDS, "bounded: {}", c.len());
        assert!(TokenCache::new(0, Duration::ZERO).is_none());
    }
}
