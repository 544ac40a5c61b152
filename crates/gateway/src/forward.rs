//! Sending a request upstream with the route's resilience policy: per-try timeouts,
//! retries (another endpoint when possible, backoff with jitter, within the cluster's
//! retry budget, never after a response reached the client) and mirroring.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use sekisho_config::RetryOn;
use sekisho_proxy::{Cluster, UpstreamBody, UpstreamErrorKind, UpstreamResponse};
use tokio::sync::Semaphore;

use crate::respond::GatewayError;

/// A route's compiled retry policy.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    attempts: u32,
    on_connect_failure: bool,
    on_reset: bool,
    on_5xx: bool,
    on_gateway_error: bool,
    statuses: Vec<u16>,
    non_idempotent: bool,
    backoff_base: Duration,
    backoff_max: Duration,
}

impl RetryPolicy {
    /// Compiles `routes[i].retry`.
    pub fn new(r: &sekisho_config::Retry) -> Self {
        RetryPolicy {
            attempts: r.attempts,
            on_connect_failure: r.on.contains(&RetryOn::ConnectFailure),
            on_reset: r.on.contains(&RetryOn::Reset),
            on_5xx: r.on.contains(&RetryOn::Status5xx),
            on_gateway_error: r.on.contains(&RetryOn::GatewayError),
            statuses: r.statuses.clone(),
            non_idempotent: r.non_idempotent,
            backoff_base: r.backoff_base,
            backoff_max: r.backoff_max,
        }
    }

    /// Whether a response with this status is worth another try.
    fn retries_status(&self, status: StatusCode) -> bool {
        let code = status.as_u16();
        (self.on_5xx && status.is_server_error())
            || (self.on_gateway_error && matches!(code, 502..=504))
            || self.statuses.contains(&code)
    }

    /// Retries after the first try, at most.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether a request with this method may be sent again after the upstream may have
    /// seen it (idempotent methods, or any with `non_idempotent`).
    pub(crate) fn may_resend(&self, method: &Method) -> bool {
        idempotent(method) || self.non_idempotent
    }

    /// Whether an attempt's outcome (a response status, or the error) is worth another try.
    pub(crate) fn retries(
        &self,
        outcome: Result<StatusCode, &GatewayError>,
        may_resend: bool,
    ) -> bool {
        match outcome {
            Ok(status) => may_resend && self.retries_status(status),
            Err(GatewayError::Upstream(e)) => {
                let nothing_sent = e.is_retryable();
                let connect_class = matches!(
                    e.kind(),
                    UpstreamErrorKind::Connect
                        | UpstreamErrorKind::ConnectTimeout
                        | UpstreamErrorKind::Tls
                        | UpstreamErrorKind::Overloaded
                );
                (self.on_connect_failure && nothing_sent && connect_class)
                    || (self.on_reset && may_resend && e.kind() == UpstreamErrorKind::Reset)
                    || (self.on_reset && nothing_sent && e.kind() == UpstreamErrorKind::Reset)
            }
            // A per-try timeout: the upstream may have the request; like a reset.
            Err(GatewayError::UpstreamTimeout(_)) => {
                may_resend && (self.on_reset || self.on_5xx || self.on_gateway_error)
            }
            Err(_) => false,
        }
    }

    /// Backoff before retry number `n` (1-based): exponential with full jitter, so
    /// clients retrying together spread out instead of arriving in waves.
    pub(crate) fn backoff(&self, n: u32) -> Duration {
        let exp = self
            .backoff_base
            .saturating_mul(1u32 << n.saturating_sub(1).min(16));
        let cap = exp.min(self.backoff_max);
        cap.mul_f64(fastrand::f64())
    }
}

/// Methods that may be sent twice without changing the outcome (RFC 9110 §9.2.2).
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Bodies up to this size are kept in memory on retry and mirror routes so they can be
/// sent again; larger streamed bodies are sent once.
pub const REPLAY_LIMIT: u64 = 64 * 1024;

/// A request body: kept (replayable) or streamed (sent once).
pub enum RequestBody {
    /// The whole body, with trailers if the client sent any.
    Kept(Bytes, Option<HeaderMap>),
    /// The client's body as it arrives.
    Streamed(UpstreamBody),
}

impl RequestBody {
    fn to_upstream(&self) -> Option<UpstreamBody> {
        match self {
            RequestBody::Kept(bytes, trailers) => Some(kept_body(bytes.clone(), trailers.clone())),
            RequestBody::Streamed(_) => None,
        }
    }
}

/// A body of known bytes (and trailers), as the upstream client takes it.
pub fn kept_body(bytes: Bytes, trailers: Option<HeaderMap>) -> UpstreamBody {
    let full = Full::new(bytes).map_err(|never| match never {});
    match trailers {
        Some(t) => full
            .with_trailers(async move { Some(Ok(t)) })
            .boxed_unsync(),
        None => full.boxed_unsync(),
    }
}

/// A route's mirror: a shadow cluster and the share of requests copied to it.
pub struct MirrorTarget {
    /// The shadow cluster.
    pub cluster: Arc<Cluster>,
    /// Share of requests copied, 0.0 to 1.0.
    pub fraction: f64,
    /// Copies in flight at once; past it copies are dropped, never queued.
    pub slots: Arc<Semaphore>,
}

/// Copies in flight per mirrored route.
pub const MIRROR_SLOTS: usize = 64;

impl MirrorTarget {
    /// Sends a copy in the background when sampled and a slot is free; never waits.
    pub fn maybe_send(&self, parts: &http::request::Parts, body: &RequestBody, timeout: Duration) {
        if self.fraction < 1.0 && fastrand::f64() >= self.fraction {
            return;
        }
        let Some(body) = body.to_upstream() else {
            return;
        };
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            tracing::debug!("mirror busy: copy dropped");
            return;
        };
        let req = rebuild(parts, body);
        let cluster = self.cluster.clone();
        tokio::spawn(async move {
            // Read the answer to the end so the connection goes back to the pool.
            let _ = tokio::time::timeout(timeout, async move {
                if let Ok(resp) = cluster.send(req).await {
                    let _ = resp.response.into_body().collect().await;
                }
            })
            .await;
            drop(permit);
        });
    }
}

fn rebuild(parts: &http::request::Parts, body: UpstreamBody) -> Request<UpstreamBody> {
    let mut req = Request::new(body);
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = parts.uri.clone();
    *req.version_mut() = parts.version;
    *req.headers_mut() = parts.headers.clone();
    req
}

/// Sends the request to `cluster`, retrying per `policy` within `timeout` overall and
/// `per_try` per attempt.
pub async fn send(
    cluster: &Cluster,
    parts: http::request::Parts,
    body: RequestBody,
    policy: Option<&RetryPolicy>,
    timeout: Duration,
    per_try: Option<Duration>,
) -> Result<UpstreamResponse, GatewayError> {
    let deadline = Instant::now() + timeout;
    let replayable = matches!(body, RequestBody::Kept(..));
    let policy = policy.filter(|_| replayable);
    let Some(policy) = policy else {
        // No retries: one attempt, streamed or kept.
        let body = match body {
            RequestBody::Kept(b, t) => kept_body(b, t),
            RequestBody::Streamed(s) => s,
        };
        return attempt(
            cluster,
            Request::from_parts(parts, body),
            &[],
            deadline,
            per_try,
        )
        .await;
    };
    let may_resend = policy.may_resend(&parts.method);
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut retries = 0;
    loop {
        let upstream_body = body
            .to_upstream()
            .unwrap_or_else(|| kept_body(Bytes::new(), None));
        let result = attempt(
            cluster,
            rebuild(&parts, upstream_body),
            &tried,
            deadline,
            per_try,
        )
        .await;
        let retry = policy.retries(result.as_ref().map(|r| r.response.status()), may_resend);
        if !retry || retries >= policy.attempts || Instant::now() >= deadline {
            return result;
        }
        if !cluster.try_acquire_retry() {
            tracing::debug!(cluster = cluster.name(), "retry budget exhausted");
            return result;
        }
        if let Some(addr) = match &result {
            Ok(resp) => Some(resp.endpoint),
            Err(GatewayError::Upstream(e)) => e.endpoint(),
            Err(_) => None,
        } {
            tried.push(addr);
        }
        // Free the failed answer (and its connection) before waiting.
        drop(result);
        retries += 1;
        let pause = policy.backoff(retries);
        if Instant::now() + pause >= deadline {
            return Err(GatewayError::UpstreamTimeout(timeout));
        }
        tokio::time::sleep(pause).await;
    }
}

async fn attempt(
    cluster: &Cluster,
    req: Request<UpstreamBody>,
    exclude: &[SocketAddr],
    deadline: Instant,
    per_try: Option<Duration>,
) -> Result<UpstreamResponse, GatewayError> {
    let left = deadline.saturating_duration_since(Instant::now());
    let bound = per_try.map_or(left, |p| p.min(left));
    match tokio::time::timeout(bound, cluster.send_excluding(req, exclude)).await {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(e)) => Err(GatewayError::Upstream(e)),
        Err(_) => Err(GatewayError::UpstreamTimeout(bound)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(on: &[RetryOn]) -> RetryPolicy {
        RetryPolicy::new(&sekisho_config::Retry {
            attempts: 2,
            on: on.to_vec(),
            statuses: vec![409],
            non_idempotent: false,
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(40),
        })
    }

    #[test]
    fn status_classes() {
        let p = policy(&[RetryOn::GatewayError]);
        assert!(p.retries_status(StatusCode::BAD_GATEWAY));
        assert!(p.retries_status(StatusCode::CONFLICT), "listed status");
        assert!(!p.retries_status(StatusCode::INTERNAL_SERVER_ERROR));
        let p = policy(&[RetryOn::Status5xx]);
        assert!(p.retries_status(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!p.retries_status(StatusCode::NOT_FOUND));
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = policy(&[]);
        for n in 1..20 {
            assert!(p.backoff(n) <= Duration::from_millis(40));
        }
        let distinct: std::collections::HashSet<_> = (0..20).map(|_| p.backoff(3)).collect();
        assert!(distinct.len() > 1, "jitter");
    }

    #[test]
    fn idempotency() {
        assert!(
            idempotent(&Method::GET) && idempotent(&Method::PUT) && idempotent(&Method::DELETE)
        );
        assert!(!idempotent(&Method::POST) && !idempotent(&Method::PATCH));
    }
}
