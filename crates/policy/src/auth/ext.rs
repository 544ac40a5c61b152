//! External authorization: ask an HTTP service about each request (method, path, chosen
//! headers); 2xx allows and chosen answer headers go upstream; anything else goes back to the
//! client as is. Decisions are cached briefly; a timeout fails closed by default.
//!
//! A cached decision is keyed by everything the service saw: the method, the path and query,
//! and every forwarded header (name and all values). `cache.key` can only add headers, so a
//! decision made for one caller is never handed to another whose credentials differ (an
//! anonymous caller, a cookie instead of `Authorization`). Keys are SHA-256 digests, so the
//! cache holds no credential.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, Request, StatusCode, Uri};
use http_body_util::Full;
use sha2::{Digest, Sha256};

use super::{AuthAllow, AuthMethod, Identity};
use crate::config::{ExtAuthCacheConfig, ExtAuthConfig, FailMode};
use crate::error::PolicyError;
use crate::net::http::PooledClient;
use crate::request::{Reject, RequestView};

/// Largest answer body read from the service.
const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub(crate) enum Decision {
    Allow(AuthAllow),
    Deny(Reject),
}

/// A cache key: the SHA-256 of what the decision depends on.
type CacheKey = [u8; 32];

/// The cache config, its key headers (the forwarded ones, then `cache.key`'s extra ones), and
/// key → (expiry, decision).
type Cache = (
    ExtAuthCacheConfig,
    Vec<HeaderName>,
    Mutex<HashMap<CacheKey, (Instant, Decision)>>,
);

#[derive(Debug)]
pub(crate) struct ExtAuth {
    base: Uri,
    timeout: Duration,
    forward: Vec<HeaderName>,
    upstream: Vec<HeaderName>,
    on_error: FailMode,
    error_status: StatusCode,
    client: PooledClient,
    cache: Option<Cache>,
}

fn names(field: &'static str, list: &[String]) -> Result<Vec<HeaderName>, PolicyError> {
    list.iter()
        .map(|h| {
            HeaderName::from_bytes(h.as_bytes())
                .map_err(|_| PolicyError::invalid(field, format!("bad header name {h:?}")))
        })
        .collect()
}

impl ExtAuth {
    pub(crate) fn new(cfg: &ExtAuthConfig) -> Result<Self, PolicyError> {
        let base: Uri = cfg
            .url
            .parse()
            .map_err(|e| PolicyError::invalid("ext_auth.url", format!("{}: {e}", cfg.url)))?;
        if base.scheme_str() != Some("http") || base.authority().is_none() {
            return Err(PolicyError::invalid(
                "ext_auth.url",
                "must be http://host:port/...",
            ));
        }
        let forward = names("ext_auth.forward_headers", &cfg.forward_headers)?;
        let cache = match &cfg.cache {
            Some(c) => {
                // Always every forwarded header: the decision depends on them.
                let mut key = forward.clone();
                for h in names("ext_auth.cache.key", &c.key)? {
                    if !key.contains(&h) {
                        key.push(h);
                    }
                }
                Some((c.clone(), key, Mutex::default()))
            }
            None => None,
        };
        Ok(Self {
            base,
            timeout: cfg.timeout,
            forward,
            upstream: names("ext_auth.upstream_headers", &cfg.upstream_headers)?,
            on_error: cfg.on_error,
            error_status: StatusCode::from_u16(cfg.error_status)
                .map_err(|_| PolicyError::invalid("ext_auth.error_status", "not an HTTP status"))?,
            client: PooledClient::new(),
            cache,
        })
    }

    /// Asks the service (or the cache). `Err` is a failure to get an answer, mapped by `on_error`
    /// to allow or reject; the reason label says which.
    pub(crate) async fn check(&self, req: &RequestView<'_>) -> Result<Decision, &'static str> {
        let key = self.cache.as_ref().map(|(_, hs, _)| cache_key(req, hs));
        if let (Some((_, _, map)), Some(key)) = (&self.cache, &key) {
            if let Ok(map) = map.lock() {
                if let Some((until, d)) = map.get(key) {
                    if *until > Instant::now() {
                        return Ok(d.clone());
                    }
                }
            }
        }
        let decision = match self.ask(req).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, mode = ?self.on_error, "external auth failed");
                return Err("ext_auth_unavailable");
            }
        };
        if let (Some((cfg, _, map)), Some(key)) = (&self.cache, key) {
            let cacheable = match &decision {
                Decision::Allow(_) => true,
                Decision::Deny(r) => matches!(r.status.as_u16(), 401 | 403),
            };
            if cacheable {
                if let Ok(mut map) = map.lock() {
                    let now = Instant::now();
                    if map.len() >= cfg.max_entries {
                        map.retain(|_, (until, _)| *until > now);
                        if map.len() >= cfg.max_entries {
                            map.clear();
                        }
                    }
                    map.insert(key, (now + cfg.ttl, decision.clone()));
                }
            }
        }
        Ok(decision)
    }

    pub(crate) fn on_error(&self) -> (FailMode, StatusCode) {
        (self.on_error, self.error_status)
    }

    async fn ask(&self, req: &RequestView<'_>) -> Result<Decision, crate::error::BackendError> {
        let base_path = self.base.path().trim_end_matches('/');
        let pq = req.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri = format!(
            "http://{}{base_path}{pq}",
            self.base.authority().map_or("", |a| a.as_str())
        );
        let mut builder = Request::builder()
            .method(req.method.clone())
            .uri(uri)
            .header(http::header::CONTENT_LENGTH, "0");
        for h in &self.forward {
            for v in req.headers.get_all(h) {
                builder = builder.header(h, v);
            }
        }
        let out = builder
            .body(Full::new(Bytes::new()))
            .map_err(|e| crate::error::BackendError::Http(e.to_string()))?;
        let resp = self.client.request(out, self.timeout, MAX_BODY).await?;
        let (parts, body) = resp.into_parts();
        if parts.status.is_success() {
            let mut allow = AuthAllow::default();
            for h in &self.upstream {
                // The client must not supply what the auth service vouches for.
                allow.remove_headers.push(h.clone());
                for v in parts.headers.get_all(h) {
                    allow.set_headers.push((h.clone(), v.clone()));
                }
            }
            allow.identity = Some(Identity {
                method: AuthMethod::ExtAuth,
                subject: None,
                api_key_name: None,
                claims: None,
            });
            return Ok(Decision::Allow(allow));
        }
        let mut headers = parts.headers;
        for h in [
            http::header::CONNECTION,
            http::header::TRANSFER_ENCODING,
            http::header::CONTENT_LENGTH,
            http::header::HeaderName::from_static("keep-alive"),
        ] {
            headers.remove(h);
        }
        Ok(Decision::Deny(Reject {
            status: parts.status,
            reason: "ext_auth_denied",
            headers,
            body: Some(body),
        }))
    }
}

/// The cache key of `req`: method, path and query, and each of `headers` with all its values,
/// every part length-prefixed so no two different requests can run together into one key.
fn cache_key(req: &RequestView<'_>, headers: &[HeaderName]) -> CacheKey {
    fn part(h: &mut Sha256, bytes: &[u8]) {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    let mut h = Sha256::new();
    part(&mut h, req.method.as_str().as_bytes());
    part(
        &mut h,
        req.uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .as_bytes(),
    );
    for name in headers {
        part(&mut h, name.as_str().as_bytes());
        let values = req.headers.get_all(name);
        h.update((values.iter().count() as u64).to_le_bytes());
        for v in values {
            part(&mut h, v.as_bytes());
        }
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, Method};
    use std::net::{IpAddr, Ipv4Addr};

    fn key(uri: &str, headers: &[(&'static str, &str)]) -> CacheKey {
        let uri: Uri = uri.parse().unwrap();
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, v.parse().unwrap());
        }
        let req = RequestView::new(&Method::GET, &uri, &map, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let names = [
            HeaderName::from_static("authorization"),
            HeaderName::from_static("cookie"),
        ];
        cache_key(&req, &names)
    }

    #[test]
    fn cache_keys_differ_for_every_difference_the_service_could_see() {
        let base = key("/x?a=1", &[("authorization", "Bearer a")]);
        assert_eq!(base, key("/x?a=1", &[("authorization", "Bearer a")]));
        for other in [
            key("/x?a=2", &[("authorization", "Bearer a")]),
            key("/y?a=1", &[("authorization", "Bearer a")]),
            key("/x?a=1", &[("authorization", "Bearer b")]),
            key("/x?a=1", &[]),
            key(
                "/x?a=1",
                &[("authorization", "Bearer a"), ("cookie", "s=1")],
            ),
            key(
                "/x?a=1",
                &[("authorization", "Bearer a"), ("authorization", "x")],
            ),
            key("/x?a=1", &[("cookie", "Bearer a")]),
        ] {
            assert_ne!(base, other);
        }
    }
}
