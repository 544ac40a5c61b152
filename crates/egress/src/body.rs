//! The response body the proxy sends: counts bytes, enforces the write timeout, and on
//! drop writes the access log line and the stats ([`Finish`]).
//!
//! A request whose handler is dropped before answering (the client went away) is logged
//! with 499 by the same guard.

use std::future::Future as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use sekisho_proxy::{BoxError, InFlightGuard};
use sekisho_telemetry::metrics::RequestMetrics;
use tokio::time::Sleep;

use crate::access::Line;
use crate::server::Shared;

/// Status logged when the client closed the connection before the response.
pub(crate) const CLIENT_CLOSED: u16 = 499;

/// The response body type.
pub(crate) type Inner = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// What the access log and stats need about one request; recorded once, on drop.
pub(crate) struct Finish {
    pub(crate) shared: Arc<Shared>,
    pub(crate) started: Instant,
    pub(crate) time: SystemTime,
    pub(crate) remote: SocketAddr,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) ua: String,
    pub(crate) host: String,
    pub(crate) id: String,
    pub(crate) status: u16,
    pub(crate) size: u64,
    pub(crate) metrics: Option<Arc<RequestMetrics>>,
}

impl Drop for Finish {
    fn drop(&mut self) {
        let ptime = self.started.elapsed();
        if self.status == CLIENT_CLOSED {
            tracing::info!(remote = %self.remote, host = %self.host, uri = %self.path, id = %self.id,
                "client closed the request before the response");
        }
        self.shared.stats.record(self.status, ptime);
        if let Some(m) = &self.metrics {
            m.record(self.status, ptime, 0, self.size);
        }
        if self.shared.access_log.is_enabled() {
            let line = Line {
                time: self.time,
                remote_addr: self.remote.ip(),
                method: &self.method,
                uri: &self.path,
                status: self.status,
                size: self.size,
                ua: &self.ua,
                ptime,
                host: &self.host,
                chocon_req: &self.id,
            };
            self.shared.access_log.log_with(|buf| line.write(buf));
        }
    }
}

/// The body: the upstream's (or a local one), tracked.
pub(crate) struct Tracked {
    inner: Inner,
    finish: Option<Finish>,
    deadline: Pin<Box<Sleep>>,
    // Counts the request in flight to its upstream until the body is done.
    _in_flight: Option<InFlightGuard>,
}

/// The write timeout passed while the body was being sent.
#[derive(Debug, thiserror::Error)]
#[error("write timeout: the response was not sent in time")]
pub(crate) struct WriteTimeout;

impl Tracked {
    pub(crate) fn new(
        inner: Inner,
        finish: Finish,
        deadline: tokio::time::Instant,
        in_flight: Option<InFlightGuard>,
    ) -> Self {
        Self {
            inner,
            finish: Some(finish),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            _in_flight: in_flight,
        }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(WriteTimeout))));
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let (Some(data), Some(f)) = (frame.data_ref(), this.finish.as_mut()) {
                f.size += data.len() as u64;
            }
        }
        if let Poll::Ready(None) = &polled {
            // Done: log now rather than when hyper gets around to dropping the body.
            this.finish = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The client did not send its whole request body within `--read-timeout`.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within the read timeout")]
pub(crate) struct BodyReadTimeout;

/// The client's request body, cut off when it is not complete by the deadline (a client
/// trickling its body must not hold an upstream connection forever).
pub(crate) struct ReadDeadline<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
}

impl<B> ReadDeadline<B> {
    pub(crate) fn new(inner: B, timeout: std::time::Duration) -> Self {
        ReadDeadline {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl<B> Body for ReadDeadline<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err(Box::new(BodyReadTimeout))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
