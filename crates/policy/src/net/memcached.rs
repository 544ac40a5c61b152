//! A minimal memcached client for the 1.6 meta protocol: add with TTL, and delete only when the
//! value is still ours (read the CAS with `mg`, then `md` with `C<cas>`).
//!
//! No maintained Rust crate speaks the meta commands, and the lock needs just these two.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use super::pool::{Conn, Pool};
use crate::error::{BackendError, PolicyError};

/// memcached's key length limit.
pub const MAX_KEY: usize = 250;

/// A memcached server, reached over a small pool of connections.
#[derive(Debug)]
pub struct MemcachedClient {
    pool: Pool,
    timeout: Duration,
}

impl MemcachedClient {
    /// A client for `host:port`; every call is bounded by `timeout`. Connecting is lazy.
    pub fn new(addr: &str, timeout: Duration) -> Result<Self, PolicyError> {
        if !addr.contains(':') {
            return Err(PolicyError::invalid(
                "memcached",
                format!("{addr}: expected host:port"),
            ));
        }
        Ok(Self {
            pool: Pool::new(addr.to_string(), 64),
            timeout,
        })
    }

    /// `ms <key> <len> T<ttl> ME`: stores `value` only if `key` is absent. `true` when stored.
    pub async fn add(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, BackendError> {
        let key = encode_key(key)?;
        // memcached TTLs are whole seconds; round up so the safety net is never shorter.
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let head = format!("ms {key} {} T{} ME\r\n", value.len(), secs.max(1));
        self.call(async |conn: &mut Conn| {
            conn.write_all(head.as_bytes()).await?;
            conn.write_all(value).await?;
            conn.write_all(b"\r\n").await?;
            conn.flush().await?;
            match read_line(conn).await?.as_str() {
                "HD" => Ok(true),
                "NS" => Ok(false),
                other => Err(unexpected(other)),
            }
        })
        .await
    }

    /// The value of `key` and its CAS, if present (`mg <key> v c`).
    pub async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u64)>, BackendError> {
        let key = encode_key(key)?;
        self.call(async |conn: &mut Conn| get_on(conn, &key).await)
            .await
    }

    /// Deletes `key` only if its value is `value`: `mg` for the CAS, then `md C<cas>`, so a
    /// holder whose key expired and was taken by another cannot delete the new holder's key.
    /// `true` when deleted.
    pub async fn delete_if(&self, key: &str, value: &[u8]) -> Result<bool, BackendError> {
        let key = encode_key(key)?;
        self.call(async |conn: &mut Conn| {
            let Some((current, cas)) = get_on(conn, &key).await? else {
                return Ok(false);
            };
            if current != value {
                return Ok(false);
            }
            conn.write_all(format!("md {key} C{cas}\r\n").as_bytes())
                .await?;
            conn.flush().await?;
            match read_line(conn).await?.as_str() {
                "HD" => Ok(true),
                // Changed (EX) or gone (NF) since we read it: not ours any more.
                "EX" | "NF" => Ok(false),
                other => Err(unexpected(other)),
            }
        })
        .await
    }

    /// Runs one exchange on a pooled connection within the timeout; a connection is reused
    /// only after a complete exchange.
    async fn call<T>(
        &self,
        f: impl AsyncFnOnce(&mut Conn) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        let exchange = async {
            let (mut conn, _) = self.pool.get().await?;
            let out = f(&mut conn).await?;
            self.pool.put(conn);
            Ok(out)
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.pool.clear();
                Err(e)
            }
            Err(_) => Err(BackendError::Timeout(self.timeout)),
        }
    }
}

async fn get_on(conn: &mut Conn, key: &str) -> Result<Option<(Vec<u8>, u64)>, BackendError> {
    conn.write_all(format!("mg {key} v c\r\n").as_bytes())
        .await?;
    conn.flush().await?;
    let line = read_line(conn).await?;
    if line == "EN" {
        return Ok(None);
    }
    let mut parts = line.split(' ');
    if parts.next() != Some("VA") {
        return Err(unexpected(&line));
    }
    let len: usize = parts
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| unexpected(&line))?;
    if len > 64 * 1024 {
        return Err(BackendError::Protocol(format!("value of {len} bytes")));
    }
    let cas = parts
        .find_map(|f| f.strip_prefix('c'))
        .and_then(|c| c.parse::<u64>().ok())
        .ok_or_else(|| unexpected(&line))?;
    let mut data = vec![0; len + 2];
    conn.read_exact(&mut data).await?;
    data.truncate(len);
    Ok(Some((data, cas)))
}

/// The length of `key` once encoded by [`encode_key`].
pub fn encoded_len(key: &str) -> usize {
    key.bytes()
        .map(|b| {
            if b.is_ascii_graphic() && b != b'%' {
                1
            } else {
                3
            }
        })
        .sum()
}

/// Keys may not hold spaces or control characters: percent-encode those (and `%` itself).
fn encode_key(key: &str) -> Result<String, BackendError> {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() || out.len() > MAX_KEY {
        return Err(BackendError::InvalidKey(format!(
            "key of {} bytes (memcached allows 1..={MAX_KEY})",
            out.len()
        )));
    }
    Ok(out)
}

async fn read_line(conn: &mut Conn) -> Result<String, BackendError> {
    let mut line = String::new();
    let n = (&mut *conn).take(4096).read_line(&mut line).await?;
    if n == 0 {
        return Err(BackendError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    if !line.ends_with("\r\n") {
        return Err(BackendError::Protocol(format!("bad line {line:?}")));
    }
    line.truncate(line.len() - 2);
    if line.starts_with("SERVER_ERROR") || line.starts_with("CLIENT_ERROR") || line == "ERROR" {
        return Err(BackendError::Server(line));
    }
    Ok(line)
}

fn unexpected(line: &str) -> BackendError {
    BackendError::Protocol(format!("unexpected reply {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_and_bounded() {
        assert_eq!(encode_key("buy/42").unwrap(), "buy/42");
        assert_eq!(encode_key("a b%\n").unwrap(), "a%20b%25%0A");
        assert_eq!(encoded_len("a b%\n"), "a%20b%25%0A".len());
        assert!(encode_key("").is_err());
        assert!(encode_key(&"x".repeat(250)).is_ok());
        assert!(matches!(
            encode_key(&"x".repeat(251)),
            Err(BackendError::InvalidKey(_))
        ));
    }
}
