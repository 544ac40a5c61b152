//! The HTTP/1.1 fast path: plain proxied requests served from the client connection's own
//! task, with no hyper on either side.
//!
//! ```text
//! read head ─► parse (sekisho-h1, strict) ─► request id ─► normalize ─► route
//!   ├─ not plain, or the route needs the general pipeline ─► hand the connection to hyper
//!   ├─ a direct answer, redirect or error ─► write it
//!   └─ proxy: body (≤ 64 KiB, read whole) ─► lease an upstream connection ─► head + body
//!        ─► response head (route timeout) ─► edit the head ─► relay the body by its framing
//!        ─► connection back to the pool ─► access log line + metrics
//! ```
//!
//! Why: through hyper, a request is parsed into a `HeaderMap`, handed to the upstream
//! connection's task over a channel, encoded again, and its response comes back over
//! another channel and is encoded a third time: 13.5 µs of user CPU per request against
//! nginx's 4.7 on the benchmark machine. Here the head is parsed once, copied into the
//! upstream's head with the gateway's edits, and both sockets are driven by one task.
//!
//! The fast path serves exactly what the general pipeline (`pipeline`) would, for the
//! requests it takes: the same routing, normalization, request id, `X-Forwarded-*`,
//! `traceparent`, hop-by-hop removal, header edits, statuses, error bodies, access log and
//! metrics. It takes HTTP/1.1 requests in origin form without `Upgrade` or `Expect`, with no
//! body or a `Content-Length` one of at most [`BODY_MAX`], on routes marked `fast` (see
//! `plan::fast_eligible`). Anything else goes to hyper with the bytes read so far: the
//! connection stays with hyper until it idles and is parked, then comes back here.

mod exchange;
mod prepare;
mod respond;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::conn_io::PARK_AFTER;
use crate::server::Shared;

pub(crate) use prepare::Step;

/// Request bodies up to this size are read whole before the upstream is picked (like
/// nginx's `client_body_buffer_size`); larger or chunked ones take the general pipeline.
pub(crate) const BODY_MAX: u64 = 64 * 1024;

/// How much the client read buffer grows per read.
const READ_CHUNK: usize = 4096;

/// Buffer capacity kept across requests; larger buffers are freed after the request.
const KEEP_CAPACITY: usize = 16 * 1024;

/// How long a draining connection may carry one more request before it is closed.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Bytes read and dropped after a final response before closing (lingering close), so a
/// client's unread request bytes do not make the kernel reset the connection and discard
/// the response it has not read yet.
const LINGER_BYTES: usize = 64 * 1024;
const LINGER_TIME: Duration = Duration::from_secs(2);

/// A listener's limits, as the fast path applies them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Keep-alive idle bound; also bounds a stalled body read or write.
    pub idle: Duration,
    /// From a head's first byte to its end.
    pub header: Duration,
    /// Largest request head.
    pub max_head: usize,
}

/// How the fast path let go of a connection.
pub(crate) enum Exit {
    /// Closed (by either side, a timeout, or the end of a drain).
    Closed,
    /// Idle for [`PARK_AFTER`]: the caller waits on the bare socket for the rest of the idle
    /// timeout (this task's state, buffers and all, is freed meanwhile) and starts over.
    Parked(TcpStream),
    /// The next request needs the general pipeline: the connection goes to hyper, which
    /// must see `read` first.
    Fallback {
        /// The client's socket.
        io: TcpStream,
        /// Bytes read from it and not consumed (the request that fell back, and any after).
        read: Vec<u8>,
    },
}

/// What one client connection keeps between requests.
pub(crate) struct Client {
    io: TcpStream,
    remote: SocketAddr,
    /// Client bytes read and not yet consumed.
    rbuf: Vec<u8>,
    /// The upstream request's head (kept for retries).
    wbuf: Vec<u8>,
    /// The client response's head.
    cbuf: Vec<u8>,
    /// The current request's strings for the access log.
    meta: prepare::Meta,
    limits: Limits,
}

/// Serves requests on `io` until it closes, or until one needs the general pipeline.
/// `first`: how long to wait for the first byte.
pub(crate) async fn serve(
    io: TcpStream,
    remote: SocketAddr,
    shared: Arc<Shared>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> Exit {
    let mut c = Client {
        io,
        remote,
        rbuf: Vec::new(),
        wbuf: Vec::new(),
        cbuf: Vec::new(),
        meta: prepare::Meta::default(),
        limits,
    };
    loop {
        let started = match c.next_head(&mut stop).await {
            Next::Head(t) => t,
            Next::Close => return Exit::Closed,
            Next::Park => return Exit::Parked(c.io),
        };
        let plan = shared.plan.load_full();
        let step = loop {
            let step = prepare::prepare(&mut c, &plan, &shared);
            match step {
                Step::Incomplete => {
                    if !c.read_more_head(started).await {
                        return Exit::Closed;
                    }
                }
                other => break other,
            }
        };
        let keep_going = match step {
            Step::Incomplete => true,
            Step::Fallback => {
                shared.fast_path.handed_over.inc();
                return Exit::Fallback {
                    io: c.io,
                    read: std::mem::take(&mut c.rbuf),
                };
            }
            Step::Reply(reply) => {
                shared.fast_path.served.inc();
                c.reply(&shared, reply, started).await
            }
            Step::Proxy(fwd) => {
                shared.fast_path.served.inc();
                c.proxy(&shared, fwd, started).await
            }
        };
        if !keep_going {
            c.linger_close().await;
            return Exit::Closed;
        }
        c.trim_buffers();
    }
}

/// What the wait for a request ended with.
enum Next {
    /// A request's first bytes are in the buffer; when they arrived.
    Head(Instant),
    /// Close the connection (the client closed, the idle timeout, a drain).
    Close,
    /// Idle for [`PARK_AFTER`]: hand the socket back to the listener.
    Park,
}

impl Client {
    /// Waits for the next request's first bytes (or uses pipelined ones). `read_buf` clears
    /// the socket's readiness on a short read, so the next wait costs no `EAGAIN` system call.
    async fn next_head(&mut self, stop: &mut watch::Receiver<bool>) -> Next {
        if !self.rbuf.is_empty() {
            return Next::Head(Instant::now());
        }
        let idle_since = Instant::now();
        let mut draining = *stop.borrow();
        loop {
            let left = if draining {
                DRAIN_GRACE.saturating_sub(idle_since.elapsed())
            } else {
                PARK_AFTER.min(self.limits.idle)
            };
            if left.is_zero() {
                return Next::Close;
            }
            self.rbuf.reserve(READ_CHUNK);
            tokio::select! {
                ready = tokio::time::timeout(left, self.io.read_buf(&mut self.rbuf)) => {
                    return match ready {
                        Ok(Ok(0)) | Ok(Err(_)) => Next::Close,
                        Ok(Ok(_)) => Next::Head(Instant::now()),
                        // Idle past the park delay: the listener waits on the bare socket,
                        // so an idle keep-alive connection costs little more than its socket
                        // (like nginx, which frees its buffers on keep-alive).
                        Err(_) if !draining && left < self.limits.idle => Next::Park,
                        Err(_) => Next::Close,
                    };
                }
                changed = stop.changed(), if !draining => {
                    // Draining: a busy client moves on by itself within the grace period
                    // (responses now say `Connection: close`); an idle one is closed after.
                    draining = true;
                    if changed.is_err() {
                        return Next::Close;
                    }
                }
            }
        }
    }

    /// Reads more of a head that started at `started`; false when the connection should
    /// close (client gone or the header timeout passed). A head past the size limit is
    /// answered by `prepare` (it sees the buffer's length).
    async fn read_more_head(&mut self, started: Instant) -> bool {
        let left = self.limits.header.saturating_sub(started.elapsed());
        self.rbuf.reserve(READ_CHUNK);
        match tokio::time::timeout(left, self.io.read_buf(&mut self.rbuf)).await {
            Ok(Ok(n)) => n > 0,
            Ok(Err(_)) | Err(_) => false,
        }
    }

    /// Reads until `rbuf` holds `n` bytes (a request body), each read bounded by the idle
    /// timeout (like nginx's `client_body_timeout`). False when the client went away or
    /// stalled.
    async fn fill(&mut self, n: usize) -> bool {
        while self.rbuf.len() < n {
            self.rbuf.reserve(n - self.rbuf.len());
            match tokio::time::timeout(self.limits.idle, self.io.read_buf(&mut self.rbuf)).await {
                Ok(Ok(k)) if k > 0 => {}
                _ => return false,
            }
        }
        true
    }

    /// Drops big buffers a large request grew, keeping small ones for the next request.
    fn trim_buffers(&mut self) {
        if self.rbuf.capacity() > KEEP_CAPACITY && self.rbuf.len() <= READ_CHUNK {
            self.rbuf.shrink_to(READ_CHUNK);
        }
        if self.wbuf.capacity() > KEEP_CAPACITY {
            self.wbuf = Vec::new();
        }
        if self.cbuf.capacity() > KEEP_CAPACITY {
            self.cbuf = Vec::new();
        }
    }

    /// Closes after a final response: sends FIN, then reads and drops what the client still
    /// sends for a moment, so its unread data cannot turn the close into a reset.
    async fn linger_close(&mut self) {
        use tokio::io::AsyncWriteExt;
        if self.io.shutdown().await.is_err() {
            return;
        }
        let deadline = tokio::time::Instant::now() + LINGER_TIME;
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < LINGER_BYTES {
            match tokio::time::timeout_at(deadline, self.io.read(&mut sink)).await {
                Ok(Ok(n)) if n > 0 => drained += n,
                _ => return,
            }
        }
    }
}
