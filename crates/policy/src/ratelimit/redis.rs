//! GCRA in Redis: one Lua script reads the server clock and updates the key atomically, so every
//! gateway instance counts against the same bucket and clock skew between them does not matter.

use std::time::Duration;

use super::gcra::{Rate, Step};
use crate::error::BackendError;
use crate::net::redis::{RedisClient, Value};

/// KEYS[1] bucket; ARGV[1] interval µs; ARGV[2] capacity µs.
/// Returns {allowed, remaining_us_or_retry_us, reset_us}.
const SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new = tat + interval
local diff = new - now
if diff > cap then
  return {0, diff - cap, tat - now}
end
redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.ceil(diff / 1000) + 1000)
return {1, cap - diff, diff}
"#;

#[derive(Debug)]
pub(super) struct RedisGcra {
    client: RedisClient,
    prefix: String,
    interval_us: String,
    capacity_us: String,
    interval: u64,
}

impl RedisGcra {
    pub(super) fn new(client: RedisClient, name: &str, rate: Rate) -> Self {
        let interval = (rate.interval / 1000).max(1);
        let capacity = (rate.capacity / 1000).max(interval);
        Self {
            client,
            prefix: format!("sekisho:rl:{name}:"),
            interval_us: interval.to_string(),
            capacity_us: capacity.to_string(),
            interval,
        }
    }

    pub(super) async fn check(&self, key: &str) -> Result<Step, BackendError> {
        let full = format!("{}{key}", self.prefix);
        let reply = self
            .client
            .eval(
                SCRIPT,
                &[full.as_bytes()],
                &[self.interval_us.as_bytes(), self.capacity_us.as_bytes()],
            )
            .await?;
        let Value::Array(items) = &reply else {
            return Err(BackendError::Protocol(format!("script returned {reply:?}")));
        };
        let int = |i: usize| match items.get(i) {
            Some(Value::Int(n)) => Ok(u64::try_from(*n).unwrap_or(0)),
            other => Err(BackendError::Protocol(format!(
                "script item {i}: {other:?}"
            ))),
        };
        let (allowed, second, reset) = (int(0)? == 1, int(1)?, int(2)?);
        Ok(if allowed {
            Step {
                allowed,
                remaining: second / self.interval,
                reset: Duration::from_micros(reset),
                retry_after: Duration::ZERO,
            }
        } else {
            Step {
                allowed,
                remaining: 0,
                reset: Duration::from_micros(reset),
                retry_after: Duration::from_micros(second),
            }
        })
    }
}
