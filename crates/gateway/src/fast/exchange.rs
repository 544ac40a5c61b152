//! One request's exchange: the gateway's own answer, or the upstream's (lease a
//! connection, send the head and body, read the response head under the route timeout,
//! relay the body by its framing), then the access log record.

use std::io::{self, IoSlice};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sekisho_h1::write::{chunk_size_line, LAST_CHUNK};
use sekisho_h1::{parse_response, ChunkedScanner, EMPTY_HEADER, MAX_HEADERS};
use sekisho_proxy::{Cluster, Lease, UpstreamError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout_at;

use super::prepare::{Forward, Reply};
use super::respond::{client_head, encode_reply, record, Outcome, Relay};
use super::{Client, READ_CHUNK};
use crate::plan::{Action, RouteEntry, Target};
use crate::respond::GatewayError;
use crate::server::Shared;

/// Largest upstream response head (hyper's client path allows the same).
const UPSTREAM_HEAD_MAX: usize = 64 * 1024;
/// Read size while relaying a body: large bodies move in few system calls, and the buffer
/// stays bounded (memory flat in body size).
const RELAY_CHUNK: usize = 64 * 1024;

/// Why an exchange ended without the upstream's answer.
enum Failed {
    /// Answer the client with this error.
    Answer(GatewayError),
    /// The client went away: nothing to answer (logged as 499).
    ClientGone,
}

/// The response head as far as the relay needs it.
struct Head {
    relay: Relay,
    /// Length of the upstream's head in the lease's buffer (the body follows).
    len: usize,
    status: u16,
    upstream_keep_alive: bool,
    close: bool,
    upstream_time: Duration,
}

/// How reading the response head failed.
enum HeadFail {
    /// Closed or reset; `answered`: some response bytes came first.
    Closed {
        answered: bool,
        error: io::Error,
    },
    Malformed(String),
    Timeout,
    ClientGone,
}

/// nginx's status for "the client closed the connection before the answer".
const CLIENT_CLOSED: u16 = 499;

impl<'a> Outcome<'a> {
    /// The client left before the answer (499), on `route` to `target`.
    fn client_gone(
        route: &'a RouteEntry,
        target: &'a Target,
        upstream_time: Option<Duration>,
    ) -> Self {
        Outcome {
            status: CLIENT_CLOSED,
            response_bytes: 0,
            route: Some(route),
            cluster: &target.name,
            metrics: Some(&target.metrics),
            upstream_addr: None,
            upstream_time,
        }
    }
}

impl Client {
    /// Writes the gateway's own answer; false when the connection must close.
    pub(super) async fn reply(&mut self, shared: &Shared, reply: Reply, started: Instant) -> bool {
        let mut close = reply.close;
        match reply.consumed {
            // The request's body is not all here: answer now and close rather than wait
            // for bytes nobody will use.
            Some(n) if n <= self.rbuf.len() => {
                self.rbuf.drain(..n);
            }
            _ => close = true,
        }
        self.wbuf.clear();
        encode_reply(&mut self.wbuf, &reply.response, close, reply.head_request);
        let written = write_all(&mut self.io, &self.wbuf, &[], self.limits.idle).await;
        let body_len = match reply.response.body() {
            crate::body::ResponseBody::Full(Some(b)) if !reply.head_request => b.len() as u64,
            _ => 0,
        };
        let outcome = Outcome {
            status: reply.response.status().as_u16(),
            response_bytes: if written.is_ok() { body_len } else { 0 },
            route: reply.route.as_deref(),
            cluster: "",
            metrics: None,
            upstream_addr: None,
            upstream_time: None,
        };
        record(shared, self.remote, &self.meta, started, &outcome);
        written.is_ok() && !close
    }

    /// Proxies one request; false when the connection must close.
    pub(super) async fn proxy(&mut self, shared: &Shared, fwd: Forward, started: Instant) -> bool {
        let route = fwd.route.clone();
        let Some(target) = target_of(&route, fwd.target) else {
            let reply = Reply {
                response: GatewayError::Internal("fast path without a target".into())
                    .to_response(self.meta.request_id(), None),
                route: Some(route.clone()),
                consumed: None,
                close: true,
                head_request: fwd.head_request,
            };
            return self.reply(shared, reply, started).await;
        };
        let whole = fwd.head_len + fwd.body_len;
        if !self.fill(whole).await {
            // The body did not arrive (client gone or stalled): nothing went upstream.
            let outcome = Outcome::client_gone(&route, target, None);
            record(shared, self.remote, &self.meta, started, &outcome);
            return false;
        }
        let sent_at = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + route.timeout);
        let exchange = self
            .send(&target.cluster, &fwd, &route, shared, deadline, sent_at)
            .await;
        let (mut lease, head) = match exchange {
            Ok(pair) => pair,
            Err(Failed::Answer(err)) => {
                if err.status().is_server_error() {
                    tracing::debug!(error = %err, "request failed");
                }
                return self
                    .answer_error(shared, &fwd, target, err, started, sent_at)
                    .await;
            }
            Err(Failed::ClientGone) => {
                let outcome = Outcome::client_gone(&route, target, Some(sent_at.elapsed()));
                record(shared, self.remote, &self.meta, started, &outcome);
                return false;
            }
        };
        let addr = lease.endpoint();
        let relayed = self.relay(&mut lease, &head).await;
        let (bytes, clean) = match relayed {
            Ok((bytes, clean)) => (bytes, clean),
            Err(bytes) => (bytes, false),
        };
        lease.finish(relayed.is_ok() && clean && head.upstream_keep_alive);
        let outcome = Outcome {
            status: head.status,
            response_bytes: bytes,
            route: Some(&route),
            cluster: &target.name,
            metrics: Some(&target.metrics),
            upstream_addr: Some(addr),
            upstream_time: Some(head.upstream_time),
        };
        record(shared, self.remote, &self.meta, started, &outcome);
        if relayed.is_err() {
            return false;
        }
        self.rbuf.drain(..whole.min(self.rbuf.len()));
        !head.close
    }

    /// Answers an upstream failure (502, 503, 504) with the request's body consumed, so the
    /// connection can carry on.
    async fn answer_error(
        &mut self,
        shared: &Shared,
        fwd: &Forward,
        target: &Target,
        err: GatewayError,
        started: Instant,
        sent_at: Instant,
    ) -> bool {
        let close = !fwd.keep_alive || shared.draining.load(Ordering::Relaxed);
        self.rbuf
            .drain(..(fwd.head_len + fwd.body_len).min(self.rbuf.len()));
        let response = err.to_response(self.meta.request_id(), None);
        self.wbuf.clear();
        encode_reply(&mut self.wbuf, &response, close, fwd.head_request);
        let written = write_all(&mut self.io, &self.wbuf, &[], self.limits.idle).await;
        let body_len = match response.body() {
            crate::body::ResponseBody::Full(Some(b)) if !fwd.head_request => b.len() as u64,
            _ => 0,
        };
        let outcome = Outcome {
            status: response.status().as_u16(),
            response_bytes: if written.is_ok() { body_len } else { 0 },
            route: Some(&fwd.route),
            cluster: &target.name,
            metrics: Some(&target.metrics),
            upstream_addr: None,
            upstream_time: Some(sent_at.elapsed()),
        };
        record(shared, self.remote, &self.meta, started, &outcome);
        written.is_ok() && !close
    }

    /// Sends the request with the route's retry policy (the body is in memory, so any
    /// attempt can be sent again): another endpoint when possible, backoff with jitter,
    /// within the cluster's retry budget and the route's deadline, like `forward::send`.
    async fn send(
        &mut self,
        cluster: &Arc<Cluster>,
        fwd: &Forward,
        route: &RouteEntry,
        shared: &Shared,
        deadline: tokio::time::Instant,
        sent_at: Instant,
    ) -> Result<(Lease, Head), Failed> {
        let bound = |tokio_deadline: tokio::time::Instant| {
            let left = tokio_deadline.saturating_duration_since(tokio::time::Instant::now());
            match route.per_try_timeout {
                Some(p) if p < left => (tokio::time::Instant::now() + p, p),
                _ => (tokio_deadline, route.timeout),
            }
        };
        let Some(policy) = &route.retry else {
            let (at, limit) = bound(deadline);
            return self
                .attempt(cluster, fwd, route, shared, (at, limit), sent_at, &[])
                .await;
        };
        let may_resend = policy.may_resend(&fwd.method);
        let mut tried = Vec::new();
        let mut retries = 0;
        loop {
            let (at, limit) = bound(deadline);
            let result = self
                .attempt(cluster, fwd, route, shared, (at, limit), sent_at, &tried)
                .await;
            let outcome = match &result {
                Ok((_, head)) => Ok(http::StatusCode::from_u16(head.status)
                    .unwrap_or(http::StatusCode::BAD_GATEWAY)),
                Err(Failed::Answer(e)) => Err(e),
                Err(Failed::ClientGone) => return result,
            };
            if !policy.retries(outcome, may_resend)
                || retries >= policy.attempts()
                || tokio::time::Instant::now() >= deadline
            {
                return result;
            }
            if !cluster.try_acquire_retry() {
                tracing::debug!(cluster = cluster.name(), "retry budget exhausted");
                return result;
            }
            match &result {
                Ok((lease, _)) => tried.push(lease.endpoint()),
                Err(Failed::Answer(GatewayError::Upstream(e))) => tried.extend(e.endpoint()),
                Err(_) => {}
            }
            // The refused answer's connection (its body unread) is closed before waiting.
            drop(result);
            retries += 1;
            let pause = policy.backoff(retries);
            if tokio::time::Instant::now() + pause >= deadline {
                return Err(Failed::Answer(GatewayError::UpstreamTimeout(route.timeout)));
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// One attempt: sends the request (head in `wbuf`, body in `rbuf`) to an address not in
    /// `exclude` (when there is another) and reads the response head, within `(deadline,
    /// the bound it stands for)`. A reused connection the upstream closed before answering
    /// anything is replaced once by a new one: always when the write itself failed, for
    /// idempotent requests when the close came after it.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &mut self,
        cluster: &Arc<Cluster>,
        fwd: &Forward,
        route: &RouteEntry,
        shared: &Shared,
        (deadline, limit): (tokio::time::Instant, Duration),
        sent_at: Instant,
        exclude: &[std::net::SocketAddr],
    ) -> Result<(Lease, Head), Failed> {
        let timed_out = || Failed::Answer(GatewayError::UpstreamTimeout(limit));
        let reset = |addr, error: io::Error| {
            Failed::Answer(GatewayError::Upstream(UpstreamError::Reset {
                addr,
                request_sent: true,
                source: Box::new(error),
            }))
        };
        let mut fresh = false;
        loop {
            let mut lease = match timeout_at(deadline, cluster.lease(exclude, fresh)).await {
                Ok(Ok(lease)) => lease,
                Ok(Err(e)) => return Err(Failed::Answer(GatewayError::Upstream(e))),
                Err(_) => return Err(timed_out()),
            };
            let addr = lease.endpoint();
            let body = self
                .rbuf
                .get(fwd.head_len..fwd.head_len + fwd.body_len)
                .unwrap_or_default();
            let (up, _) = lease.io();
            match timeout_at(deadline, write_vectored_all(up, &self.wbuf, body)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) if lease.reused() && !fresh => {
                    fresh = true;
                    continue;
                }
                Ok(Err(error)) => {
                    lease.failed();
                    return Err(reset(addr, error));
                }
                Err(_) => {
                    lease.failed();
                    return Err(timed_out());
                }
            }
            let close = !fwd.keep_alive || shared.draining.load(Ordering::Relaxed);
            match self
                .response_head(&mut lease, fwd, route, close, deadline, sent_at)
                .await
            {
                Ok(head) => {
                    // Every attempt's status feeds outlier detection, retried ones too.
                    lease.responded(head.status);
                    return Ok((lease, head));
                }
                Err(HeadFail::Closed {
                    answered: false, ..
                }) if lease.reused() && !fresh && fwd.idempotent => {
                    fresh = true;
                }
                Err(HeadFail::Closed { error, .. }) => {
                    lease.failed();
                    return Err(reset(addr, error));
                }
                Err(HeadFail::Malformed(m)) => {
                    lease.failed();
                    return Err(Failed::Answer(GatewayError::Upstream(
                        UpstreamError::Protocol {
                            addr,
                            source: m.into(),
                        },
                    )));
                }
                Err(HeadFail::Timeout) => {
                    lease.failed();
                    return Err(timed_out());
                }
                Err(HeadFail::ClientGone) => return Err(Failed::ClientGone),
            }
        }
    }

    /// Reads the upstream's response head (skipping interim 1xx answers) and writes the
    /// client's head into `wbuf`, while watching for the client closing.
    async fn response_head(
        &mut self,
        lease: &mut Lease,
        fwd: &Forward,
        route: &RouteEntry,
        close: bool,
        deadline: tokio::time::Instant,
        sent_at: Instant,
    ) -> Result<Head, HeadFail> {
        let (up, ubuf) = lease.io();
        ubuf.clear();
        let watch_cap = self.limits.max_head + super::BODY_MAX as usize;
        loop {
            if !ubuf.is_empty() {
                let mut headers = [EMPTY_HEADER; MAX_HEADERS];
                match parse_response(ubuf, &mut headers, fwd.head_request) {
                    Ok(Some(resp)) if resp.is_interim() => {
                        let n = resp.len;
                        ubuf.drain(..n);
                        continue;
                    }
                    Ok(Some(resp)) if resp.code == 101 => {
                        return Err(HeadFail::Malformed(
                            "101 Switching Protocols to a request without Upgrade".into(),
                        ))
                    }
                    Ok(Some(resp)) => {
                        let relay = client_head(
                            &mut self.cbuf,
                            &resp,
                            route,
                            self.meta.request_id().as_bytes(),
                            close,
                        );
                        return Ok(Head {
                            relay,
                            len: resp.len,
                            status: resp.code,
                            upstream_keep_alive: resp.keep_alive(),
                            close,
                            upstream_time: sent_at.elapsed(),
                        });
                    }
                    Ok(None) if ubuf.len() >= UPSTREAM_HEAD_MAX => {
                        return Err(HeadFail::Malformed("response head too large".into()))
                    }
                    Ok(None) => {}
                    Err(e) => return Err(HeadFail::Malformed(e.to_string())),
                }
            }
            let answered = !ubuf.is_empty();
            ubuf.reserve(READ_CHUNK);
            tokio::select! {
                read = timeout_at(deadline, up.read_buf(ubuf)) => match read {
                    Ok(Ok(0)) => {
                        let error = io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "connection closed before the response head",
                        );
                        return Err(HeadFail::Closed { answered, error });
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return Err(HeadFail::Closed { answered, error }),
                    Err(_) => return Err(HeadFail::Timeout),
                },
                () = client_gone(&self.io, &mut self.rbuf, watch_cap) => {
                    return Err(HeadFail::ClientGone);
                }
            }
        }
    }

    /// Writes the client head (in `cbuf`) and relays the body after the upstream's head.
    /// `Ok((body bytes, clean))`: the response was complete, and `clean` when the upstream
    /// sent nothing past it; `Err(bytes)`: a side failed mid-body (the client connection
    /// must close).
    async fn relay(&mut self, lease: &mut Lease, head: &Head) -> Result<(u64, bool), u64> {
        let idle = self.limits.idle;
        let (up, ubuf) = lease.io();
        let body_start = head.len.min(ubuf.len());
        let first = ubuf.get(body_start..).unwrap_or_default();
        match head.relay {
            Relay::None => {
                let clean = first.is_empty();
                write_all(&mut self.io, &self.cbuf, &[], idle)
                    .await
                    .map_err(|_| 0u64)?;
                ubuf.clear();
                Ok((0, clean))
            }
            Relay::Length(n) => {
                let take = first.len().min(usize::try_from(n).unwrap_or(usize::MAX));
                let mut extra = first.len() > take;
                write_all(
                    &mut self.io,
                    &self.cbuf,
                    first.get(..take).unwrap_or_default(),
                    idle,
                )
                .await
                .map_err(|_| 0u64)?;
                let mut sent = take as u64;
                while sent < n {
                    ubuf.clear();
                    let got = read_some(up, ubuf, idle).await.map_err(|_| sent)?;
                    let want = usize::try_from(n - sent).unwrap_or(usize::MAX);
                    let take = got.min(want);
                    extra |= got > take;
                    write_all(
                        &mut self.io,
                        ubuf.get(..take).unwrap_or_default(),
                        &[],
                        idle,
                    )
                    .await
                    .map_err(|_| sent)?;
                    sent += take as u64;
                }
                ubuf.clear();
                Ok((sent, !extra))
            }
            Relay::Chunked => {
                let mut scanner = ChunkedScanner::new();
                let scan = scanner.scan(first).map_err(|_| 0u64)?;
                let mut extra = scan.done && scan.consumed < first.len();
                write_all(
                    &mut self.io,
                    &self.cbuf,
                    first.get(..scan.consumed).unwrap_or_default(),
                    idle,
                )
                .await
                .map_err(|_| 0u64)?;
                while !scanner.is_done() {
                    ubuf.clear();
                    read_some(up, ubuf, idle)
                        .await
                        .map_err(|_| scanner.data_len())?;
                    let scan = scanner.scan(ubuf).map_err(|_| scanner.data_len())?;
                    extra |= scan.done && scan.consumed < ubuf.len();
                    write_all(
                        &mut self.io,
                        ubuf.get(..scan.consumed).unwrap_or_default(),
                        &[],
                        idle,
                    )
                    .await
                    .map_err(|_| scanner.data_len())?;
                }
                ubuf.clear();
                Ok((scanner.data_len(), !extra))
            }
            Relay::Rechunk => {
                let mut sent = first.len() as u64;
                let (line, n) = chunk_size_line(first.len());
                let mut out = std::mem::take(&mut self.cbuf);
                if !first.is_empty() {
                    out.extend_from_slice(line.get(..n).unwrap_or_default());
                    out.extend_from_slice(first);
                    out.extend_from_slice(b"\r\n");
                }
                let written = write_all(&mut self.io, &out, &[], idle).await;
                self.cbuf = out;
                written.map_err(|_| 0u64)?;
                loop {
                    ubuf.clear();
                    match read_some(up, ubuf, idle).await {
                        Ok(got) => {
                            let (line, n) = chunk_size_line(got);
                            let parts = [
                                IoSlice::new(line.get(..n).unwrap_or_default()),
                                IoSlice::new(ubuf),
                                IoSlice::new(b"\r\n"),
                            ];
                            write_slices(&mut self.io, &parts, Some(idle))
                                .await
                                .map_err(|_| sent)?;
                            sent += got as u64;
                        }
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                        Err(_) => return Err(sent),
                    }
                }
                write_all(&mut self.io, LAST_CHUNK, &[], idle)
                    .await
                    .map_err(|_| sent)?;
                // The upstream closed: never reusable.
                Ok((sent, false))
            }
        }
    }
}

fn target_of(route: &RouteEntry, index: usize) -> Option<&Target> {
    match &route.action {
        Action::Upstream(t) => Some(t),
        Action::Split(s) => s.targets.get(index),
        Action::Direct { .. } | Action::Redirect { .. } => None,
    }
}

/// Completes when the client closes (or errs); bytes it sends meanwhile (pipelined
/// requests) are kept in `rbuf`, up to `cap`.
async fn client_gone(io: &TcpStream, rbuf: &mut Vec<u8>, cap: usize) {
    loop {
        if rbuf.len() >= cap {
            std::future::pending::<()>().await;
        }
        if io.readable().await.is_err() {
            return;
        }
        rbuf.reserve(READ_CHUNK);
        match io.try_read_buf(rbuf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// Reads at least one byte into `buf` (empty on entry), bounded by `idle`; EOF is an
/// `UnexpectedEof` error.
async fn read_some(up: &mut TcpStream, buf: &mut Vec<u8>, idle: Duration) -> io::Result<usize> {
    if buf.capacity() < RELAY_CHUNK {
        buf.reserve(RELAY_CHUNK);
    }
    match tokio::time::timeout(idle, up.read_buf(buf)).await {
        Ok(Ok(0)) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "upstream closed mid-body",
        )),
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "upstream read stalled",
        )),
    }
}

/// Writes `a` then `b` (one `writev` when the socket takes them), each write bounded by
/// `stall`.
async fn write_all(io: &mut TcpStream, a: &[u8], b: &[u8], stall: Duration) -> io::Result<()> {
    write_slices(io, &[IoSlice::new(a), IoSlice::new(b)], Some(stall)).await
}

/// Writes every slice, in as few system calls as the socket allows; each call bounded by
/// `stall` (a peer that stopped reading), if given.
async fn write_slices(
    io: &mut TcpStream,
    parts: &[IoSlice<'_>],
    stall: Option<Duration>,
) -> io::Result<()> {
    let mut index = 0;
    let mut offset = 0;
    loop {
        while parts.get(index).is_some_and(|p| offset >= p.len()) {
            index += 1;
            offset = 0;
        }
        let Some(current) = parts.get(index) else {
            return Ok(());
        };
        let mut slices: [IoSlice<'_>; 4] = [IoSlice::new(&[]); 4];
        let mut count = 0;
        if let Some(s) = slices.get_mut(0) {
            *s = IoSlice::new(current.get(offset..).unwrap_or_default());
            count = 1;
        }
        for (slot, part) in slices.iter_mut().skip(1).zip(parts.iter().skip(index + 1)) {
            *slot = IoSlice::new(part);
            count += 1;
        }
        let write = io.write_vectored(slices.get(..count).unwrap_or_default());
        let result = match stall {
            Some(stall) => match tokio::time::timeout(stall, write).await {
                Ok(r) => r,
                Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "write stalled")),
            },
            None => write.await,
        };
        let written = match result {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) => return Err(e),
        };
        let mut left = written;
        while left > 0 {
            let Some(part) = parts.get(index) else { break };
            let rest = part.len() - offset;
            if left >= rest {
                left -= rest;
                index += 1;
                offset = 0;
            } else {
                offset += left;
                left = 0;
            }
        }
    }
}

/// Writes the upstream request: head and body, bounded by the caller's deadline.
async fn write_vectored_all(io: &mut TcpStream, head: &[u8], body: &[u8]) -> io::Result<()> {
    // The route's deadline bounds the whole write; no separate stall bound here.
    write_slices(io, &[IoSlice::new(head), IoSlice::new(body)], None).await
}
