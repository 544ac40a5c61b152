//! Client connection timeouts, nginx-style, in an I/O wrapper:
//!
//! - **idle**: no request in flight and no byte received for `idle_timeout` → close;
//! - **header read**: from the first byte of a request head, the head must be complete within
//!   `header_read_timeout` (slowloris) → close;
//! - **write stall**: a response write that makes no progress for `idle_timeout` (a client
//!   that stopped reading) → close.
//!
//! hyper's own `header_read_timeout` starts when a keep-alive connection begins waiting, so it
//! would also cut idle connections at the header deadline; this wrapper keeps the two apart.
//! The service marks requests in flight through [`Activity`].
//!
//! An HTTP/1 connection idle for [`PARK_AFTER`] is **parked**: its socket moves to a
//! [`ParkSlot`] and hyper reads EOF, so hyper's per-connection state (8 KiB read and 8 KiB
//! write buffers, the service future's slot: ~25 KiB) is freed while the client sits idle,
//! as nginx frees its buffers on keep-alive. The listener waits for the client's next bytes on
//! the bare socket and serves them with a new hyper connection.
//!
//! It also scans each request head's header names for `Content-Length` together with
//! `Transfer-Encoding`: hyper resolves that pair by dropping `Content-Length` (which the
//! service cannot see), but a gateway refuses it outright as a smuggling attempt.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Requests in flight on one connection, shared by the connection's I/O and its service.
#[derive(Debug, Default)]
pub struct Activity {
    in_flight: AtomicUsize,
    finished: AtomicUsize,
    ambiguous_framing: AtomicBool,
    upgraded: AtomicBool,
}

impl Activity {
    /// Whether the last request head carried both `Content-Length` and
    /// `Transfer-Encoding` (cleared by reading).
    pub fn take_ambiguous_framing(&self) -> bool {
        self.ambiguous_framing.swap(false, Ordering::Relaxed)
    }

    /// Marks the connection as handed to an upgrade (a tunnel): it is never parked.
    pub fn set_upgraded(&self) {
        self.upgraded.store(true, Ordering::Relaxed);
    }

    /// Marks a request in flight until the returned guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// A request in flight; dropping it ends the request (response sent or abandoned).
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Release);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Requests in flight: reads are body bytes or pipelined heads, no read deadline.
    Busy,
    /// Waiting for the next request.
    Idle,
    /// A request head is arriving.
    Head,
}

/// How long an HTTP/1 connection sits idle before it is parked. Long enough that a busy
/// keep-alive client never pays for a new hyper connection; parking costs one (a few µs).
pub const PARK_AFTER: Duration = Duration::from_millis(250);

/// Where a parked connection's socket goes.
pub struct ParkSlot<T>(Arc<Mutex<Option<T>>>);

impl<T> ParkSlot<T> {
    /// An empty slot.
    pub fn new() -> Self {
        ParkSlot(Arc::new(Mutex::new(None)))
    }

    /// The parked socket, if the connection was parked.
    pub fn take(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn put(&self, io: T) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(io);
    }
}

impl<T> Default for ParkSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for ParkSlot<T> {
    fn clone(&self) -> Self {
        ParkSlot(self.0.clone())
    }
}

/// The connection's I/O with the timeouts above.
pub struct TimedIo<T> {
    /// `None` once parked.
    inner: Option<T>,
    park: Option<ParkSlot<T>>,
    /// The read deadline is the park delay, not the idle timeout.
    park_armed: bool,
    idle_since: Instant,
    activity: Arc<Activity>,
    idle_timeout: Duration,
    header_timeout: Duration,
    phase: Phase,
    seen_finished: usize,
    read_deadline: Pin<Box<Sleep>>,
    write_stall: Option<Pin<Box<Sleep>>>,
    scan: HeadScan,
    /// Off on HTTP/2 connections: the scan is for HTTP/1 heads, and on HTTP/2 it would
    /// walk every byte of every DATA frame read between requests.
    scan_heads: bool,
}

/// Byte-at-a-time scan of a request head's header names, across reads.
#[derive(Debug, Default)]
struct HeadScan {
    /// Position in the current line.
    col: usize,
    /// The current line may still be `content-length:` / `transfer-encoding:`.
    maybe_cl: bool,
    maybe_te: bool,
    seen_cl: bool,
    seen_te: bool,
    /// The current line has only had `\r` so far (an empty line ends the head).
    blank: bool,
    done: bool,
}

const CL: &[u8] = b"content-length:";
const TE: &[u8] = b"transfer-encoding:";

impl HeadScan {
    fn start() -> Self {
        HeadScan {
            maybe_cl: true,
            maybe_te: true,
            blank: true,
            ..Default::default()
        }
    }

    /// Feeds bytes; returns true once the head ended having carried both headers.
    fn feed(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            if self.done {
                break;
            }
            if b == b'\n' {
                if self.blank && self.col <= 1 {
                    self.done = true;
                    return self.seen_cl && self.seen_te;
                }
                *self = HeadScan {
                    seen_cl: self.seen_cl,
                    seen_te: self.seen_te,
                    ..HeadScan::start()
                };
                continue;
            }
            if b != b'\r' {
                self.blank = false;
            }
            let lower = b.to_ascii_lowercase();
            self.maybe_cl &= CL.get(self.col) == Some(&lower);
            self.maybe_te &= TE.get(self.col) == Some(&lower);
            self.col += 1;
            if self.maybe_cl && self.col == CL.len() {
                self.seen_cl = true;
            }
            if self.maybe_te && self.col == TE.len() {
                self.seen_te = true;
            }
        }
        false
    }
}

impl<T> TimedIo<T> {
    /// Wraps a fresh connection: it starts idle (nothing received yet).
    pub fn new(
        inner: T,
        activity: Arc<Activity>,
        idle_timeout: Duration,
        header_timeout: Duration,
    ) -> Self {
        // A new connection must send its first head within the header timeout.
        let first = idle_timeout.min(header_timeout);
        TimedIo {
            inner: Some(inner),
            park: None,
            park_armed: false,
            idle_since: Instant::now(),
            activity,
            idle_timeout,
            header_timeout,
            phase: Phase::Idle,
            seen_finished: 0,
            read_deadline: Box::pin(tokio::time::sleep(first)),
            write_stall: None,
            scan: HeadScan::start(),
            scan_heads: true,
        }
    }

    /// The connection speaks HTTP/2 (preface seen or ALPN `h2`): no HTTP/1 head scan.
    pub fn http2(mut self) -> Self {
        self.scan_heads = false;
        self
    }

    /// Parks the connection into `slot` after [`PARK_AFTER`] idle (HTTP/1 only: hyper takes
    /// EOF while idle as a clean close, an HTTP/2 peer would not).
    pub fn parking(mut self, slot: ParkSlot<T>) -> Self {
        self.park = Some(slot);
        self
    }

    /// When an idle connection's deadline fires: parking first if enabled.
    fn idle_wait(&self) -> Duration {
        if self.park.is_some() && !self.activity.upgraded.load(Ordering::Relaxed) {
            PARK_AFTER.min(self.idle_timeout)
        } else {
            self.idle_timeout
        }
    }

    fn refresh_phase(&mut self) {
        let in_flight = self.activity.in_flight.load(Ordering::Acquire);
        let finished = self.activity.finished.load(Ordering::Relaxed);
        if in_flight > 0 {
            self.phase = Phase::Busy;
        } else if self.phase == Phase::Busy || finished != self.seen_finished {
            // A request just completed: the idle clock starts now.
            self.phase = Phase::Idle;
            self.idle_since = Instant::now();
            let wait = self.idle_wait();
            self.park_armed = wait < self.idle_timeout;
            self.read_deadline.as_mut().reset(self.idle_since + wait);
        }
        self.seen_finished = finished;
    }
}

impl<T> TimedIo<T> {
    /// Moves the socket to the park slot when the connection is idle (no request, nothing
    /// received, no write pending) and its idle timeout has not passed yet.
    fn park_now(&mut self) -> bool {
        let Some(slot) = &self.park else {
            return false;
        };
        if self.phase != Phase::Idle
            || self.write_stall.is_some()
            || self.activity.upgraded.load(Ordering::Relaxed)
            || self.idle_since.elapsed() >= self.idle_timeout
        {
            return false;
        }
        match self.inner.take() {
            Some(io) => {
                slot.put(io);
                true
            }
            None => false,
        }
    }
}

fn parked() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "connection parked")
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("client {what} timeout"))
}

impl<T: AsyncRead + Unpin> AsyncRead for TimedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.refresh_phase();
        let before = buf.filled().len();
        let Some(inner) = this.inner.as_mut() else {
            // Parked: hyper sees EOF.
            return Poll::Ready(Ok(()));
        };
        match Pin::new(inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.phase == Phase::Idle && buf.filled().len() > before {
                    this.phase = Phase::Head;
                    this.park_armed = false;
                    this.scan = HeadScan::start();
                    this.read_deadline
                        .as_mut()
                        .reset(Instant::now() + this.header_timeout);
                }
                if this.phase == Phase::Head && this.scan_heads {
                    let fresh = buf.filled().get(before..).unwrap_or_default();
                    if this.scan.feed(fresh) {
                        this.activity
                            .ambiguous_framing
                            .store(true, Ordering::Relaxed);
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if this.phase != Phase::Busy && this.read_deadline.as_mut().poll(cx).is_ready() {
                    if this.park_armed {
                        this.park_armed = false;
                        if this.park_now() {
                            return Poll::Ready(Ok(()));
                        }
                        // Not parked (a pending write, say): the rest of the idle timeout.
                        let at = this.idle_since + this.idle_timeout;
                        this.read_deadline.as_mut().reset(at);
                        if this.read_deadline.as_mut().poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                    }
                    let what = if this.phase == Phase::Idle {
                        "idle"
                    } else {
                        "header read"
                    };
                    return Poll::Ready(Err(timed_out(what)));
                }
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> TimedIo<T> {
    fn track_write<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match polled {
            Poll::Pending => {
                let idle = self.idle_timeout;
                let stall = self
                    .write_stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                if stall.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(timed_out("write")));
                }
                Poll::Pending
            }
            ready => {
                self.write_stall = None;
                ready
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TimedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(Err(parked()));
        };
        let polled = Pin::new(inner).poll_write(cx, buf);
        self.track_write(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(Err(parked()));
        };
        let polled = Pin::new(inner).poll_write_vectored(cx, bufs);
        self.track_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|i| i.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let polled = Pin::new(inner).poll_flush(cx);
        self.track_write(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Parked: the socket stays open for the client's next request.
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// A socket whose first bytes were already read (by the fast path): reads return those
/// first, then the socket's.
pub struct Replay<T> {
    read: Vec<u8>,
    pos: usize,
    inner: T,
}

impl<T> Replay<T> {
    /// `read` comes before anything read from `inner`.
    pub fn new(inner: T, read: Vec<u8>) -> Self {
        Replay {
            read,
            pos: 0,
            inner,
        }
    }

    /// The socket, and what is left of the replayed bytes (empty once hyper read them).
    pub fn into_parts(mut self) -> (T, Vec<u8>) {
        let rest = self.read.split_off(self.pos.min(self.read.len()));
        (self.inner, rest)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Replay<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(rest) = this.read.get(this.pos..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(rest.get(..n).unwrap_or_default());
            this.pos += n;
            if this.pos >= this.read.len() {
                // Replayed: free the buffer for the connection's lifetime.
                this.read = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Replay<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{Activity, HeadScan, TimedIo};

    /// Reads `bytes` through a `TimedIo` (HTTP/2 or not); whether it flagged CL + TE.
    async fn flagged(bytes: &[u8], http2: bool) -> bool {
        let (mut client, server) = tokio::io::duplex(1024);
        let activity = Arc::new(Activity::default());
        let io = TimedIo::new(
            server,
            activity.clone(),
            Duration::from_secs(5),
            Duration::from_secs(5),
        );
        let mut io = if http2 { io.http2() } else { io };
        client.write_all(bytes).await.unwrap();
        let mut buf = vec![0; bytes.len()];
        io.read_exact(&mut buf).await.unwrap();
        activity.take_ambiguous_framing()
    }

    #[tokio::test]
    async fn http2_connections_are_not_scanned_for_http1_heads() {
        // The same bytes inside an HTTP/2 DATA frame are payload, not a head: an HTTP/2
        // connection is never scanned (it would walk every byte read between requests).
        let both = b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(flagged(both, false).await);
        assert!(!flagged(both, true).await);
    }

    fn scan(head: &[u8], split: usize) -> bool {
        let mut s = HeadScan::start();
        let (a, b) = head.split_at(split.min(head.len()));
        s.feed(a) || s.feed(b)
    }

    #[test]
    fn flags_content_length_with_transfer_encoding_across_reads() {
        let both = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        for split in 0..both.len() {
            assert!(scan(both, split), "split at {split}");
        }
        let upper = b"POST / HTTP/1.1\r\nTRANSFER-ENCODING: chunked\r\ncontent-LENGTH: 4\r\n\r\n";
        assert!(scan(upper, 20));
    }

    #[test]
    fn ignores_single_framing_headers_and_lookalikes() {
        for head in [
            &b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd"[..],
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nX-Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
            // Header names in the body do not count: the head ended.
            b"POST / HTTP/1.1\r\nContent-Length: 40\r\n\r\nTransfer-Encoding: chunked\r\n",
        ] {
            assert!(!scan(head, 7), "{}", String::from_utf8_lossy(head));
        }
    }
}
