//! A minimal Redis client (RESP2): commands and `EVAL`, pooled connections, every call bounded.
//!
//! Written here rather than taken from the `redis` crate because the policies need exactly
//! three things from Redis (a Lua script, `SET NX PX`, and a hard per-call deadline that drops
//! the connection when it fires) and the same pool as the memcached client.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use super::pool::{Conn, Pool};
use crate::error::{BackendError, PolicyError};

/// Largest bulk reply accepted (the policies read only small values).
const MAX_BULK: usize = 1 << 20;
/// Largest array reply accepted.
const MAX_ARRAY: usize = 1024;

/// A RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Nil bulk string or nil array.
    Nil,
    /// `:` integer.
    Int(i64),
    /// `+` simple or `$` bulk string.
    Data(Vec<u8>),
    /// `*` array.
    Array(Vec<Value>),
}

/// A Redis server, reached over a small pool of connections.
#[derive(Debug)]
pub struct RedisClient {
    pool: Pool,
    password: Option<(Option<String>, String)>,
    db: Option<u32>,
    timeout: Duration,
}

impl RedisClient {
    /// A client for `redis://[[user]:password@]host:port[/db]`; every call is bounded by `timeout`.
    /// Connecting is lazy.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, PolicyError> {
        let rest = url.strip_prefix("redis://").ok_or_else(|| {
            PolicyError::invalid("redis", format!("{url}: expected redis://host:port"))
        })?;
        let (auth, hostpart) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let (hostport, db) = match hostpart.split_once('/') {
            Some((h, "")) => (h, None),
            Some((h, d)) => (
                h,
                Some(d.parse::<u32>().map_err(|_| {
                    PolicyError::invalid("redis", format!("{url}: database must be a number"))
                })?),
            ),
            None => (hostpart, None),
        };
        if !hostport.contains(':') {
            return Err(PolicyError::invalid(
                "redis",
                format!("{url}: missing port"),
            ));
        }
        let password = auth.map(|a| match a.split_once(':') {
            Some(("", p)) => (None, p.to_string()),
            Some((u, p)) => (Some(u.to_string()), p.to_string()),
            None => (None, a.to_string()),
        });
        Ok(Self {
            pool: Pool::new(hostport.to_string(), 64),
            password,
            db,
            timeout,
        })
    }

    /// Runs one command (`args[0]` is its name) within the timeout.
    pub async fn cmd(&self, args: &[&[u8]]) -> Result<Value, BackendError> {
        match tokio::time::timeout(self.timeout, self.exchange(args)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if !matches!(e, BackendError::Server(_)) {
                    self.pool.clear();
                }
                Err(e)
            }
            Err(_) => Err(BackendError::Timeout(self.timeout)),
        }
    }

    /// Runs a Lua script with `EVAL` (Redis caches the compiled script by its hash).
    pub async fn eval(
        &self,
        script: &str,
        keys: &[&[u8]],
        args: &[&[u8]],
    ) -> Result<Value, BackendError> {
        let nkeys = keys.len().to_string();
        let mut all: Vec<&[u8]> = Vec::with_capacity(3 + keys.len() + args.len());
        all.extend_from_slice(&[b"EVAL", script.as_bytes(), nkeys.as_bytes()]);
        all.extend_from_slice(keys);
        all.extend_from_slice(args);
        self.cmd(&all).await
    }

    async fn exchange(&self, args: &[&[u8]]) -> Result<Value, BackendError> {
        let (mut conn, fresh) = self.pool.get().await?;
        if fresh {
            self.handshake(&mut conn).await?;
        }
        write_command(&mut conn, args).await?;
        conn.flush().await?;
        let reply = read_value(&mut conn).await?;
        // An error reply still leaves the connection in sync.
        self.pool.put(conn);
        reply
    }

    async fn handshake(&self, conn: &mut Conn) -> Result<(), BackendError> {
        if let Some((user, pass)) = &self.password {
            match user {
                Some(u) => write_command(conn, &[b"AUTH", u.as_bytes(), pass.as_bytes()]).await?,
                None => write_command(conn, &[b"AUTH", pass.as_bytes()]).await?,
            }
            conn.flush().await?;
            read_value(conn).await??;
        }
        if let Some(db) = self.db {
            let db = db.to_string();
            write_command(conn, &[b"SELECT", db.as_bytes()]).await?;
            conn.flush().await?;
            read_value(conn).await??;
        }
        Ok(())
    }
}

async fn write_command(conn: &mut Conn, args: &[&[u8]]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        buf.extend_from_slice(a);
        buf.extend_from_slice(b"\r\n");
    }
    conn.write_all(&buf).await
}

/// Reads one reply. The outer error is transport (connection unusable); the inner one is a
/// Redis error reply (connection fine).
async fn read_value(conn: &mut Conn) -> Result<Result<Value, BackendError>, BackendError> {
    // Iterative over a stack of open arrays: replies nest at most a little.
    let mut stack: Vec<(usize, Vec<Value>)> = Vec::new();
    let mut error: Option<String> = None;
    loop {
        let line = read_line(conn).await?;
        let (kind, rest) = line.split_at(1);
        let value = match kind {
            "+" => Value::Data(rest.as_bytes().to_vec()),
            "-" => {
                error.get_or_insert_with(|| rest.to_string());
                Value::Nil
            }
            ":" => Value::Int(parse_int(rest)?),
            "$" => {
                let n = parse_int(rest)?;
                if n < 0 {
                    Value::Nil
                } else {
                    let n = usize::try_from(n).unwrap_or(usize::MAX);
                    if n > MAX_BULK {
                        return Err(BackendError::Protocol(format!("bulk of {n} bytes")));
                    }
                    let mut data = vec![0; n + 2];
                    conn.read_exact(&mut data).await?;
                    data.truncate(n);
                    Value::Data(data)
                }
            }
            "*" => {
                let n = parse_int(rest)?;
                if n < 0 {
                    Value::Nil
                } else {
                    let n = usize::try_from(n).unwrap_or(usize::MAX);
                    if n > MAX_ARRAY {
                        return Err(BackendError::Protocol(format!("array of {n} items")));
                    }
                    if n > 0 {
                        stack.push((n, Vec::with_capacity(n)));
                        continue;
                    }
                    Value::Array(Vec::new())
                }
            }
            _ => return Err(BackendError::Protocol(format!("unexpected reply {line:?}"))),
        };
        let mut value = value;
        loop {
            match stack.last_mut() {
                None => {
                    return Ok(match error {
                        Some(e) => Err(BackendError::Server(e)),
                        None => Ok(value),
                    })
                }
                Some((want, items)) => {
                    items.push(value);
                    if items.len() < *want {
                        break;
                    }
                    let (_, items) = stack.pop().unwrap_or_default();
                    value = Value::Array(items);
                }
            }
        }
    }
}

async fn read_line(conn: &mut Conn) -> Result<String, BackendError> {
    let mut line = String::new();
    let n = (&mut *conn).take(64 * 1024).read_line(&mut line).await?;
    if n == 0 {
        return Err(BackendError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    if !line.ends_with("\r\n") || line.len() < 3 {
        return Err(BackendError::Protocol(format!("bad line {line:?}")));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn parse_int(s: &str) -> Result<i64, BackendError> {
    s.parse()
        .map_err(|_| BackendError::Protocol(format!("bad integer {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let t = Duration::from_millis(5);
        let c = RedisClient::new("redis://127.0.0.1:6379", t).unwrap();
        assert_eq!(c.db, None);
        let c = RedisClient::new("redis://:pw@127.0.0.1:6379/2", t).unwrap();
        assert_eq!(c.db, Some(2));
        assert_eq!(c.password, Some((None, "pw".into())));
        assert!(RedisClient::new("http://x:1", t).is_err());
        assert!(RedisClient::new("redis://host", t).is_err());
    }
}
