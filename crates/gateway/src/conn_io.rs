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

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Requests in flight on one connection, shared by the connection's I/O and its service.
#[derive(Debug, Default)]
pub struct Activity {
    in_flight: AtomicUsize,
    finished: AtomicUsize,
}

impl Activity {
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

/// The connection's I/O with the timeouts above.
pub struct TimedIo<T> {
    inner: T,
    activity: Arc<Activity>,
    idle_timeout: Duration,
    header_timeout: Duration,
    phase: Phase,
    seen_finished: usize,
    read_deadline: Pin<Box<Sleep>>,
    write_stall: Option<Pin<Box<Sleep>>>,
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
            inner,
            activity,
            idle_timeout,
            header_timeout,
            phase: Phase::Idle,
            seen_finished: 0,
            read_deadline: Box::pin(tokio::time::sleep(first)),
            write_stall: None,
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
            self.read_deadline
                .as_mut()
                .reset(Instant::now() + self.idle_timeout);
        }
        self.seen_finished = finished;
    }
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
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.phase == Phase::Idle && buf.filled().len() > before {
                    this.phase = Phase::Head;
                    this.read_deadline
                        .as_mut()
                        .reset(Instant::now() + this.header_timeout);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if this.phase != Phase::Busy && this.read_deadline.as_mut().poll(cx).is_ready() {
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
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.track_write(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.track_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.track_write(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
