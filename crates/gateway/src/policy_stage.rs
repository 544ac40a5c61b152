//! Running a route's policies on a request: auth and rate limit right after routing (before
//! any body is read), the lock once the body is buffered if its key needs it.

use std::net::IpAddr;

use http::{HeaderMap, Method, Uri};
use sekisho_policy::{AuthAllow, LockGuard, LockPolicy, RequestView};

use crate::access::LogGuard;
use crate::policies::RoutePolicies;
use crate::respond::GatewayError;

/// Largest body read to find a lock key when the route sets no `buffer_request`.
pub(crate) const LOCK_BODY_LIMIT: u64 = 1024 * 1024;

/// What auth and the rate limit let through with.
#[derive(Default)]
pub(crate) struct Admitted {
    /// Upstream header edits of the authentication (forwarded claims, stripped token).
    pub auth: Option<AuthAllow>,
    /// `RateLimit-*` headers for the response.
    pub rate_headers: Option<HeaderMap>,
}

/// The parts of a request a policy reads.
pub(crate) struct Seen<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub client_ip: IpAddr,
    pub params: &'a [(&'a str, &'a str)],
}

impl<'a> Seen<'a> {
    fn view(&self, body: Option<&'a [u8]>) -> RequestView<'a> {
        RequestView {
            method: self.method,
            uri: self.uri,
            headers: self.headers,
            client_ip: self.client_ip,
            path_params: self.params,
            body,
        }
    }
}

fn rejected(r: sekisho_policy::Reject) -> GatewayError {
    GatewayError::Policy(Box::new(r))
}

/// Auth, then the rate limit (which may be keyed by the identity auth found). The identity
/// goes into the log record at once, so a request the rate limit refuses still names it.
pub(crate) async fn admit(
    p: &RoutePolicies,
    req: &Seen<'_>,
    log: &mut LogGuard,
) -> Result<Admitted, GatewayError> {
    let view = req.view(None);
    let auth = match &p.auth {
        Some(a) => {
            let allow = a.check(&view).await.map_err(rejected)?;
            log.set_auth(&allow);
            Some(allow)
        }
        None => None,
    };
    let rate_headers = match &p.rate_limit {
        Some(r) => {
            let identity = auth.as_ref().and_then(|a| a.identity.as_ref());
            let allow = r.check(&view, identity).await.map_err(rejected)?;
            Some(allow.headers).filter(|h| !h.is_empty())
        }
        None => None,
    };
    Ok(Admitted { auth, rate_headers })
}

/// Takes the route's lock; `None` when the backend failed and the policy fails open.
pub(crate) async fn lock(
    l: &LockPolicy,
    req: &Seen<'_>,
    body: Option<&[u8]>,
) -> Result<Option<LockGuard>, GatewayError> {
    l.acquire(&req.view(body)).await.map_err(rejected)
}

/// Adds the rate limit's headers to a response.
pub(crate) fn add_headers(headers: &mut HeaderMap, extra: Option<&HeaderMap>) {
    if let Some(extra) = extra {
        for (name, value) in extra {
            headers.insert(name.clone(), value.clone());
        }
    }
}
