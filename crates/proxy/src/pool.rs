//! The connection pool of one endpoint address, with a hard cap on connections.
//!
//! Every connection, from the moment we start dialing until its task ends, owns a
//! [`Slot`]; `total` counts slots, so busy + idle + connecting never exceeds
//! `max_connections` (hyper-util's pool only caps idle ones). A slot is released by
//! `Drop`, so a failed dial, a cancelled request or a connection task ending on
//! error all give it back exactly once. Requests past the cap wait in a bounded FIFO
//! queue; whatever frees up (an idle HTTP/1 connection, a new shared HTTP/2
//! connection, or a slot to dial with) goes straight to the oldest waiter.
//!
//! The mutex is only held for pushes, pops and short scans; never across an await.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::client::conn::{http1, http2};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::{UpstreamBody, UpstreamError};

/// A sender on an HTTP/1 connection (one request at a time).
pub(crate) type H1Sender = http1::SendRequest<UpstreamBody>;
/// A sender on an HTTP/2 connection (cheap to clone, shared by concurrent requests).
pub(crate) type H2Sender = http2::SendRequest<UpstreamBody>;

/// An HTTP/1 connection as the pool hands it out: its sender, and the place where the
/// sender waits while the connection finishes an exchange (see [`Pool::return_when_ready`]).
pub(crate) struct H1Conn {
    pub(crate) tx: H1Sender,
    home: Arc<H1Home>,
}

/// Shared between an HTTP/1 connection's task and whoever holds its sender.
///
/// After a request is sent, the sender is parked here until hyper says the exchange is
/// over. The connection's own task is what gets woken when that happens (it reads the end
/// of the response and then asks for the next request), so it returns the sender to the
/// pool from its poll ([`Pool::return_if_ready`]): no task per request, no extra wakeup.
#[derive(Default)]
pub(crate) struct H1Home {
    parked: Mutex<Option<H1Sender>>,
}

impl H1Conn {
    /// A new connection's sender, with the home its task shares.
    pub(crate) fn new(tx: H1Sender) -> (Self, Arc<H1Home>) {
        let home = Arc::new(H1Home::default());
        (
            Self {
                tx,
                home: home.clone(),
            },
            home,
        )
    }
}

/// `clusters[i].pool`, per endpoint address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolLimits {
    pub(crate) max_connections: usize,
    pub(crate) max_idle: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_pending: usize,
    pub(crate) pending_timeout: Duration,
}

/// A shared HTTP/2 connection.
#[derive(Clone)]
pub(crate) struct H2Conn {
    pub(crate) tx: H2Sender,
    pub(crate) shared: Arc<H2Shared>,
}

/// Counters shared between an HTTP/2 connection's task and its users.
#[derive(Debug)]
pub(crate) struct H2Shared {
    /// Streams checked out (requests whose guard is alive).
    pub(crate) streams: AtomicUsize,
    /// The peer's `SETTINGS_MAX_CONCURRENT_STREAMS`, kept current by the connection task.
    pub(crate) max_streams: AtomicUsize,
}

impl H2Shared {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            streams: AtomicUsize::new(0),
            // h2's default until the server's SETTINGS arrive.
            max_streams: AtomicUsize::new(100),
        })
    }

    fn has_capacity(&self) -> bool {
        self.streams.load(Ordering::Relaxed) < self.max_streams.load(Ordering::Relaxed)
    }
}

/// What a waiter receives.
pub(crate) enum Grant {
    /// An idle HTTP/1 connection, ready for a request.
    H1(H1Conn),
    /// A shared HTTP/2 connection.
    H2(H2Conn),
    /// An idle raw HTTP/1 connection (the gateway's fast path).
    Raw(RawConn),
    /// Permission to dial a new connection.
    Slot(Slot),
}

impl Grant {
    /// Whether a waiter of this kind can use the grant: a slot suits anyone, a connection
    /// only a request of its kind.
    fn suits(&self, raw: bool) -> bool {
        match self {
            Grant::Slot(_) => true,
            Grant::Raw(_) => raw,
            Grant::H1(_) | Grant::H2(_) => !raw,
        }
    }
}

/// A request waiting for a connection: hyper's kind or a raw one.
pub(crate) struct Waiter {
    tx: oneshot::Sender<Grant>,
    raw: bool,
}

impl Waiter {
    fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// A socket speaking HTTP/1.1 that the pool lends whole (no hyper connection on it): the
/// gateway's fast path writes the request and reads the response itself.
pub(crate) struct RawConn {
    pub(crate) io: tokio::net::TcpStream,
    /// Read buffer; empty between exchanges.
    pub(crate) buf: Vec<u8>,
    pub(crate) slot: Slot,
}

impl RawConn {
    /// False when the peer closed (or sent bytes nobody asked for) while the connection sat
    /// idle. Costs no system call unless the reactor saw the socket become readable.
    pub(crate) fn looks_open(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

/// The outcome of [`Pool::checkout_raw`].
pub(crate) enum RawCheckout {
    /// Reuse this idle connection (check it is still open first).
    Idle(RawConn),
    /// Dial a new connection with this slot.
    Connect(Slot),
    /// Wait (see [`Pool::wait`]).
    Wait(oneshot::Receiver<Grant>),
}

/// The outcome of [`Pool::checkout`].
pub(crate) enum Checkout {
    /// Reuse this idle HTTP/1 connection.
    H1(H1Conn),
    /// Share this HTTP/2 connection.
    H2(H2Conn),
    /// Dial a new connection with this slot.
    Connect(Slot),
    /// Wait (see [`Pool::wait`]).
    Wait(oneshot::Receiver<Grant>),
}

/// Counts for snapshots.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PoolStats {
    pub(crate) total: usize,
    pub(crate) connecting: usize,
    pub(crate) idle: usize,
    pub(crate) pending: usize,
}

/// The pool of one endpoint address.
pub(crate) struct Pool {
    addr: SocketAddr,
    limits: PoolLimits,
    inner: Mutex<Inner>,
    /// HTTP/1 connections between their response head and being ready again.
    returning: AtomicUsize,
}

struct Inner {
    /// Slots in use: connecting + live connections. Never above `max_connections`.
    total: usize,
    /// Slots still dialing.
    connecting: usize,
    /// Idle HTTP/1 connections; the back is the most recently used (warmest).
    idle: VecDeque<IdleH1>,
    /// Live HTTP/2 connections.
    h2: Vec<H2Entry>,
    /// Idle raw HTTP/1 connections (fast path); the back is the warmest.
    raw_idle: VecDeque<IdleRaw>,
    /// Requests waiting for a connection, oldest first.
    waiters: VecDeque<Waiter>,
    /// Drained: the endpoint is gone; hand nothing out any more.
    closed: bool,
    /// Connections here speak HTTP/2, so concurrent requests should wait for a
    /// connection being dialed instead of dialing their own.
    prefer_h2: bool,
}

struct IdleH1 {
    conn: H1Conn,
    since: Instant,
}

struct IdleRaw {
    conn: RawConn,
    since: Instant,
}

struct H2Entry {
    conn: H2Conn,
    last_used: Instant,
}

impl Pool {
    /// An empty pool. `h2` is the protocol's expectation (`h2`, `h2c`, and `auto`
    /// until a server picks HTTP/1.1).
    pub(crate) fn new(addr: SocketAddr, limits: PoolLimits, h2: bool) -> Arc<Self> {
        Arc::new(Self {
            addr,
            limits,
            inner: Mutex::new(Inner {
                total: 0,
                connecting: 0,
                idle: VecDeque::new(),
                raw_idle: VecDeque::new(),
                h2: Vec::new(),
                waiters: VecDeque::new(),
                closed: false,
                prefer_h2: h2,
            }),
            returning: AtomicUsize::new(0),
        })
    }

    /// A connection for one request: a reusable one, a slot to dial, or a place in the queue.
    pub(crate) fn checkout(self: &Arc<Self>) -> Result<Checkout, UpstreamError> {
        let now = Instant::now();
        let mut g = self.inner.lock();
        if g.closed {
            return Err(UpstreamError::PoolClosed { addr: self.addr });
        }
        if !g.h2.is_empty() {
            g.h2.retain(|e| !e.conn.tx.is_closed());
            if let Some(e) = least_loaded(&mut g.h2, true) {
                e.last_used = now;
                return Ok(Checkout::H2(e.conn.clone()));
            }
        }
        while let Some(idle) = g.idle.pop_back() {
            // Never hand out a connection hyper says is closed or busy, or one the
            // server has probably timed out already.
            if idle.conn.tx.is_ready() && now.duration_since(idle.since) < self.limits.idle_timeout
            {
                return Ok(Checkout::H1(idle.conn));
            }
        }
        if !(g.prefer_h2 && g.connecting > 0) {
            if g.total < self.limits.max_connections {
                g.total += 1;
                g.connecting += 1;
                return Ok(Checkout::Connect(Slot::connecting(self)));
            }
            if g.prefer_h2 {
                // At the cap with every HTTP/2 connection at its stream limit: h2 queues
                // the stream until the server frees one.
                if let Some(e) = least_loaded(&mut g.h2, false) {
                    e.last_used = now;
                    return Ok(Checkout::H2(e.conn.clone()));
                }
            }
        }
        let rx = self.enqueue(&mut g, false)?;
        // At the cap while raw connections sit idle (a cluster serving both paths): close
        // one; its slot comes to the oldest waiter.
        let spare = g.raw_idle.pop_front();
        drop(g);
        drop(spare);
        Ok(Checkout::Wait(rx))
    }

    /// Queues a waiter (bounded by `max_pending`).
    fn enqueue(&self, g: &mut Inner, raw: bool) -> Result<oneshot::Receiver<Grant>, UpstreamError> {
        if g.waiters.len() >= self.limits.max_pending {
            g.waiters.retain(|w| !w.is_closed());
            if g.waiters.len() >= self.limits.max_pending {
                return Err(UpstreamError::PoolOverflow {
                    addr: self.addr,
                    max_pending: self.limits.max_pending,
                });
            }
        }
        let (tx, rx) = oneshot::channel();
        g.waiters.push_back(Waiter { tx, raw });
        Ok(rx)
    }

    /// A raw connection for one fast-path exchange: the warmest idle one (unless `fresh`),
    /// a slot to dial, or a place in the queue. Hyper connections idle at the cap are
    /// closed to make room (their slot comes back when their task ends).
    pub(crate) fn checkout_raw(
        self: &Arc<Self>,
        fresh: bool,
    ) -> Result<RawCheckout, UpstreamError> {
        let now = Instant::now();
        let mut g = self.inner.lock();
        if g.closed {
            return Err(UpstreamError::PoolClosed { addr: self.addr });
        }
        if !fresh {
            while let Some(idle) = g.raw_idle.pop_back() {
                if now.duration_since(idle.since) < self.limits.idle_timeout {
                    return Ok(RawCheckout::Idle(idle.conn));
                }
            }
        }
        if g.total < self.limits.max_connections {
            g.total += 1;
            g.connecting += 1;
            return Ok(RawCheckout::Connect(Slot::connecting(self)));
        }
        let rx = self.enqueue(&mut g, true)?;
        let spare = g.idle.pop_front();
        drop(g);
        drop(spare);
        Ok(RawCheckout::Wait(rx))
    }

    /// A raw connection finished its exchange cleanly: give it to the oldest raw waiter, or
    /// keep it idle (up to `max_idle`), or close it (also when only hyper requests wait:
    /// its slot then goes to them).
    pub(crate) fn put_raw(&self, conn: RawConn) {
        let mut g = self.inner.lock();
        if g.closed {
            return;
        }
        let back = match offer(&mut g.waiters, Grant::Raw(conn)) {
            Ok(()) => return,
            Err(back) => back,
        };
        let keep = !g.waiters.iter().any(|w| !w.raw && !w.is_closed())
            && g.raw_idle.len() < self.limits.max_idle;
        match back {
            Grant::Raw(conn) if keep => g.raw_idle.push_back(IdleRaw {
                conn,
                since: Instant::now(),
            }),
            other => {
                // Closing gives the slot back, which takes the lock: release it first.
                drop(g);
                drop(other);
            }
        }
    }

    /// Waits for a grant, at most `pending_timeout`.
    pub(crate) async fn wait(
        &self,
        mut rx: oneshot::Receiver<Grant>,
    ) -> Result<Grant, UpstreamError> {
        match tokio::time::timeout(self.limits.pending_timeout, &mut rx).await {
            Ok(Ok(grant)) => Ok(grant),
            // The pool dropped our sender: it was drained.
            Ok(Err(_)) => Err(UpstreamError::PoolClosed { addr: self.addr }),
            Err(_) => {
                // A grant may have raced in just now; take it rather than waste it.
                rx.close();
                rx.try_recv().map_err(|_| UpstreamError::PendingTimeout {
                    addr: self.addr,
                    timeout: self.limits.pending_timeout,
                })
            }
        }
    }

    /// An HTTP/1 connection finished its exchange and is ready again: give it to the
    /// oldest waiter, or keep it idle (up to `max_idle`), or close it.
    pub(crate) fn put_idle(&self, conn: H1Conn) {
        let mut g = self.inner.lock();
        if g.closed || conn.tx.is_closed() {
            return;
        }
        let Err(back) = offer(&mut g.waiters, Grant::H1(conn)) else {
            return;
        };
        if let Grant::H1(conn) = back {
            // Only raw requests wait: closing this one hands its slot to them.
            if g.idle.len() < self.limits.max_idle
                && !g.waiters.iter().any(|w| w.raw && !w.is_closed())
            {
                g.idle.push_back(IdleH1 {
                    conn,
                    since: Instant::now(),
                });
            }
        }
    }

    /// Returns `conn` to the pool once hyper says its exchange is over (response body read,
    /// request body sent), or drops it if it closes (error, upgrade). The wait is bounded
    /// by the response: the caller's request timeout drops the body, which closes it.
    ///
    /// The sender is parked in the connection's home; the connection task hands it back
    /// from its next poll ([`Pool::return_if_ready`]). Checking readiness here under the
    /// same lock closes the race with an exchange that already ended (an empty body).
    pub(crate) fn return_when_ready(&self, conn: H1Conn) {
        let H1Conn { tx, home } = conn;
        let mut parked = home.parked.lock();
        if tx.is_ready() {
            drop(parked);
            self.put_idle(H1Conn { tx, home });
            return;
        }
        if tx.is_closed() {
            return;
        }
        self.returning.fetch_add(1, Ordering::Relaxed);
        *parked = Some(tx);
    }

    /// Called by an HTTP/1 connection's task after each poll: if its sender is parked and
    /// the exchange is over, the connection goes back to the pool.
    pub(crate) fn return_if_ready(&self, home: &Arc<H1Home>) {
        let mut parked = home.parked.lock();
        if !parked.as_ref().is_some_and(|tx| tx.is_ready()) {
            return;
        }
        let Some(tx) = parked.take() else { return };
        drop(parked);
        self.returning.fetch_sub(1, Ordering::Relaxed);
        self.put_idle(H1Conn {
            tx,
            home: home.clone(),
        });
    }

    /// An HTTP/1 connection's task ended: drop its parked sender, if any.
    pub(crate) fn forget_parked(&self, home: &H1Home) {
        if home.parked.lock().take().is_some() {
            self.returning.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// HTTP/1 connections about to become idle again.
    pub(crate) fn returning(&self) -> usize {
        self.returning.load(Ordering::Relaxed)
    }

    /// A dial with `slot` produced an HTTP/1 connection.
    pub(crate) fn established_h1(self: &Arc<Self>, slot: &mut Slot) {
        let mut g = self.inner.lock();
        slot.mark_live(&mut g);
        if g.prefer_h2 {
            // `auto` and the server chose HTTP/1.1: requests queued behind our dial
            // expecting to share it must dial their own, up to the cap.
            g.prefer_h2 = false;
            while g.total < self.limits.max_connections && !g.waiters.is_empty() {
                g.total += 1;
                g.connecting += 1;
                if let Err(back) = offer(&mut g.waiters, Grant::Slot(Slot::connecting(self))) {
                    g.connecting -= 1;
                    g.total -= 1;
                    disarm(back);
                }
            }
        }
    }

    /// A dial with `slot` produced an HTTP/2 connection: share it with every waiter
    /// and with later requests.
    pub(crate) fn established_h2(&self, slot: &mut Slot, conn: &H2Conn) {
        let mut g = self.inner.lock();
        slot.mark_live(&mut g);
        if g.closed {
            return;
        }
        g.prefer_h2 = true;
        let waiters = std::mem::take(&mut g.waiters);
        for w in waiters {
            if w.raw {
                g.waiters.push_back(w);
            } else {
                let _ = w.tx.send(Grant::H2(conn.clone()));
            }
        }
        g.h2.push(H2Entry {
            conn: conn.clone(),
            last_used: Instant::now(),
        });
    }

    /// An HTTP/2 connection's task ended: forget it.
    pub(crate) fn remove_h2(&self, shared: &Arc<H2Shared>) {
        self.inner
            .lock()
            .h2
            .retain(|e| !Arc::ptr_eq(&e.conn.shared, shared));
    }

    /// Closes connections idle for `idle_timeout` or found closed, and forgets
    /// abandoned waiters. Called periodically.
    pub(crate) fn sweep(&self, now: Instant) {
        let timeout = self.limits.idle_timeout;
        let (idle, h2, raw) = {
            let mut g = self.inner.lock();
            let idle = drain_where(&mut g.idle, |i| {
                !i.conn.tx.is_ready() || now.duration_since(i.since) >= timeout
            });
            let raw = drain_where(&mut g.raw_idle, |i| {
                now.duration_since(i.since) >= timeout || !i.conn.looks_open()
            });
            let mut h2 = Vec::new();
            let mut i = 0;
            while i < g.h2.len() {
                let e = &g.h2[i];
                let unused = e.conn.shared.streams.load(Ordering::Relaxed) == 0
                    && now.duration_since(e.last_used) >= timeout;
                if e.conn.tx.is_closed() || unused {
                    h2.push(g.h2.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            g.waiters.retain(|w| !w.is_closed());
            (idle, h2, raw)
        };
        // Dropping the senders outside the lock closes the connections.
        drop((idle, h2, raw));
    }

    /// The endpoint is gone: close idle connections, fail waiters, hand nothing out.
    /// Busy connections finish their request and are then closed.
    pub(crate) fn close(&self) {
        let (idle, h2, raw, waiters) = {
            let mut g = self.inner.lock();
            g.closed = true;
            (
                std::mem::take(&mut g.idle),
                std::mem::take(&mut g.h2),
                std::mem::take(&mut g.raw_idle),
                std::mem::take(&mut g.waiters),
            )
        };
        drop((idle, h2, raw, waiters));
    }

    /// Current counts.
    pub(crate) fn stats(&self) -> PoolStats {
        let g = self.inner.lock();
        let idle_h2 =
            g.h2.iter()
                .filter(|e| e.conn.shared.streams.load(Ordering::Relaxed) == 0)
                .count();
        PoolStats {
            total: g.total,
            connecting: g.connecting,
            idle: g.idle.len() + g.raw_idle.len() + idle_h2,
            pending: g.waiters.iter().filter(|w| !w.is_closed()).count(),
        }
    }

    /// A slot is given back (its dial failed or its connection ended): the oldest
    /// waiter dials with it instead, else the count drops.
    fn release(self: &Arc<Self>, connecting: bool) {
        let mut g = self.inner.lock();
        if connecting {
            g.connecting -= 1;
        }
        if !g.closed && !g.waiters.is_empty() {
            g.connecting += 1;
            match offer(&mut g.waiters, Grant::Slot(Slot::connecting(self))) {
                Ok(()) => return,
                Err(back) => {
                    g.connecting -= 1;
                    disarm(back);
                }
            }
        }
        g.total -= 1;
    }
}

/// The open HTTP/2 connection with the fewest streams; with `need_capacity`, only
/// one below its stream limit.
fn least_loaded(h2: &mut [H2Entry], need_capacity: bool) -> Option<&mut H2Entry> {
    h2.iter_mut()
        .filter(|e| !e.conn.tx.is_closed() && (!need_capacity || e.conn.shared.has_capacity()))
        .min_by_key(|e| e.conn.shared.streams.load(Ordering::Relaxed))
}

/// Gives `grant` to the oldest live waiter it suits; returns it if nobody takes it.
/// Waiters it does not suit keep their place.
fn offer(waiters: &mut VecDeque<Waiter>, mut grant: Grant) -> Result<(), Grant> {
    let mut i = 0;
    while i < waiters.len() {
        let suits = waiters.get(i).is_some_and(|w| grant.suits(w.raw));
        if !suits {
            i += 1;
            continue;
        }
        let Some(w) = waiters.remove(i) else { break };
        match w.tx.send(grant) {
            Ok(()) => return Ok(()),
            Err(back) => grant = back,
        }
    }
    Err(grant)
}

/// Drops a grant nobody took without running a slot's release (the caller, holding
/// the lock, accounts for it).
fn disarm(grant: Grant) {
    if let Grant::Slot(mut slot) = grant {
        slot.pool = None;
    }
}

fn drain_where<T>(q: &mut VecDeque<T>, mut remove: impl FnMut(&T) -> bool) -> Vec<T> {
    let mut removed = Vec::new();
    let mut kept = VecDeque::with_capacity(q.len());
    for item in q.drain(..) {
        if remove(&item) {
            removed.push(item);
        } else {
            kept.push_back(item);
        }
    }
    *q = kept;
    removed
}

/// One unit of `max_connections`, held by a dial and then by the connection's task;
/// given back on drop.
pub(crate) struct Slot {
    pool: Option<Arc<Pool>>,
    connecting: bool,
}

impl Slot {
    fn connecting(pool: &Arc<Pool>) -> Self {
        Self {
            pool: Some(pool.clone()),
            connecting: true,
        }
    }

    /// The dial succeeded; called with the pool lock held.
    fn mark_live(&mut self, g: &mut Inner) {
        if self.connecting {
            self.connecting = false;
            g.connecting -= 1;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.release(self.connecting);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: usize, max_pending: usize) -> PoolLimits {
        PoolLimits {
            max_connections,
            max_idle: 4,
            idle_timeout: Duration::from_secs(60),
            max_pending,
            pending_timeout: Duration::from_millis(200),
        }
    }

    fn addr() -> SocketAddr {
        ([127, 0, 0, 1], 9).into()
    }

    fn expect_slot(c: Result<Checkout, UpstreamError>) -> Slot {
        match c {
            Ok(Checkout::Connect(slot)) => slot,
            _ => panic!("expected a slot"),
        }
    }

    fn expect_wait(c: Result<Checkout, UpstreamError>) -> oneshot::Receiver<Grant> {
        match c {
            Ok(Checkout::Wait(rx)) => rx,
            _ => panic!("expected to wait"),
        }
    }

    #[tokio::test]
    async fn cap_queue_and_slot_handoff() {
        let pool = Pool::new(addr(), limits(2, 1), false);
        let a = expect_slot(pool.checkout());
        let _b = expect_slot(pool.checkout());
        assert_eq!(pool.stats().total, 2);
        let rx = expect_wait(pool.checkout());
        assert!(matches!(
            pool.checkout(),
            Err(UpstreamError::PoolOverflow { .. })
        ));
        // A failed dial hands its slot to the waiter; the total stays at the cap.
        drop(a);
        assert_eq!(pool.stats().total, 2);
        let grant = pool.wait(rx).await.expect("grant");
        assert!(matches!(grant, Grant::Slot(_)));
        drop(grant);
        let s = pool.stats();
        assert_eq!((s.total, s.connecting, s.pending), (1, 1, 0));
    }

    #[tokio::test]
    async fn pending_timeout_and_abandoned_waiters() {
        let pool = Pool::new(addr(), limits(1, 1), false);
        let slot = expect_slot(pool.checkout());
        let rx = expect_wait(pool.checkout());
        let err = pool.wait(rx).await.err().expect("times out");
        assert!(matches!(err, UpstreamError::PendingTimeout { .. }), "{err}");
        // The timed-out waiter no longer counts against max_pending.
        let rx = expect_wait(pool.checkout());
        drop(rx);
        drop(slot);
        let s = pool.stats();
        assert_eq!((s.total, s.connecting, s.pending), (0, 0, 0));
    }

    #[tokio::test]
    async fn h2_waits_for_the_connection_being_dialed() {
        let pool = Pool::new(addr(), limits(8, 16), true);
        let _slot = expect_slot(pool.checkout());
        let _rx = expect_wait(pool.checkout());
        assert_eq!(pool.stats().total, 1);
    }

    #[tokio::test]
    async fn close_fails_waiters() {
        let pool = Pool::new(addr(), limits(1, 4), false);
        let slot = expect_slot(pool.checkout());
        let rx = expect_wait(pool.checkout());
        pool.close();
        assert!(matches!(
            pool.wait(rx).await,
            Err(UpstreamError::PoolClosed { .. })
        ));
        assert!(matches!(
            pool.checkout(),
            Err(UpstreamError::PoolClosed { .. })
        ));
        drop(slot);
        assert_eq!(pool.stats().total, 0);
    }
}
