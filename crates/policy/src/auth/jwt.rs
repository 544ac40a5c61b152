//! JWT bearer authentication: find the token, verify it against the key store, check claims,
//! and say which claims go upstream as headers.

use std::collections::HashSet;
use std::sync::Arc;

use http::{HeaderName, HeaderValue, StatusCode};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, Algorithm, Validation};
use serde_json::{Map, Value};

use super::keys::KeyStore;
use super::token_cache::TokenCache;
use super::{AuthAllow, AuthMethod, Identity};
use crate::config::{ClaimRequirement, JwtConfig, TokenSource};
use crate::error::PolicyError;
use crate::request::{header_value, Reject, RequestView};

/// What the JWT check concluded.
pub(crate) enum JwtOutcome {
    /// No token in any configured place.
    NoToken,
    /// Verified (`cached`: the verified-token cache answered).
    Allow {
        /// Upstream header edits and the identity.
        allow: AuthAllow,
        /// Whether the token came from the verified-token cache.
        cached: bool,
    },
    /// 401 or 403.
    Reject(Reject),
}

#[derive(Debug)]
pub(crate) struct JwtAuth {
    /// One validation per accepted algorithm: jsonwebtoken requires every algorithm of a
    /// `Validation` to be of the key's family, so a mixed list (RS256 + ES256) is split.
    validations: Vec<(Algorithm, Validation)>,
    pub(crate) keys: KeyStore,
    from: Vec<TokenSource>,
    required: Vec<ClaimRequirement>,
    forward: Vec<(String, HeaderName)>,
    strip: bool,
    /// Recently verified tokens (`cache_size: 0` disables it).
    cache: Option<TokenCache>,
    /// Requests whose token came from the cache.
    pub(crate) cache_hits: std::sync::atomic::AtomicU64,
}

impl JwtAuth {
    pub(crate) async fn new(cfg: &JwtConfig) -> Result<Self, PolicyError> {
        let algorithms: Vec<Algorithm> = cfg
            .algorithms
            .iter()
            .map(|a| crate::config::jwt_algorithm(*a))
            .collect();
        let Some(first) = algorithms.first() else {
            return Err(PolicyError::invalid(
                "jwt.algorithms",
                "at least one algorithm",
            ));
        };
        let mut v = Validation::new(*first);
        v.algorithms = algorithms.clone();
        v.leeway = cfg.leeway.as_secs();
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required: HashSet<String> = HashSet::from(["exp".to_string()]);
        if cfg.issuers.is_empty() {
            v.iss = None;
        } else {
            v.set_issuer(&cfg.issuers);
            required.insert("iss".into());
        }
        if cfg.audiences.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&cfg.audiences);
            required.insert("aud".into());
        }
        v.required_spec_claims = required;
        let forward = cfg
            .forward_claims
            .iter()
            .map(|(claim, h)| {
                HeaderName::from_bytes(h.as_bytes())
                    .map(|name| (claim.clone(), name))
                    .map_err(|_| {
                        PolicyError::invalid("jwt.forward_claims", format!("bad header name {h:?}"))
                    })
            })
            .collect::<Result<_, _>>()?;
        if cfg.from.is_empty() {
            return Err(PolicyError::invalid(
                "jwt.from",
                "at least one token source",
            ));
        }
        let validations = algorithms
            .iter()
            .map(|alg| {
                let mut one = v.clone();
                one.algorithms = vec![*alg];
                (*alg, one)
            })
            .collect();
        Ok(Self {
            validations,
            keys: KeyStore::load(&cfg.keys).await?,
            from: cfg.from.clone(),
            required: cfg.required_claims.clone(),
            forward,
            strip: cfg.strip_token,
            cache: TokenCache::new(cfg.cache_size, cfg.leeway),
            cache_hits: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn find_token<'a>(&self, req: &RequestView<'a>) -> Option<(&'a str, &TokenSource)> {
        self.from.iter().find_map(|src| {
            let token = match src {
                TokenSource::Bearer => req.header_str("authorization").and_then(|v| {
                    let (scheme, rest) = v.split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
                }),
                TokenSource::Header(h) => req.header_str(h).map(str::trim),
                TokenSource::Cookie(c) => req.cookie(c),
            };
            token.filter(|t| !t.is_empty()).map(|t| (t, src))
        })
    }

    pub(crate) async fn check(&self, req: &RequestView<'_>) -> JwtOutcome {
        let Some((token, source)) = self.find_token(req) else {
            return JwtOutcome::NoToken;
        };
        let cached = self.cache.as_ref().and_then(|c| c.get(token));
        let from_cache = cached.is_some();
        let claims = match cached {
            Some(c) => {
                self.cache_hits
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                c
            }
            None => match self.verify(token).await {
                Ok(c) => {
                    let c = Arc::new(c);
                    if let Some(cache) = &self.cache {
                        cache.put(token, c.clone());
                    }
                    c
                }
                Err(reason) => return JwtOutcome::Reject(unauthorized(reason)),
            },
        };
        for r in &self.required {
            if !claim_satisfies(claims.get(&r.claim), &r.any_of) {
                return JwtOutcome::Reject(
                    Reject::new(StatusCode::FORBIDDEN, "missing_claim").with_header(
                        http::header::WWW_AUTHENTICATE,
                        HeaderValue::from_static(
                            "Bearer realm=\"sekisho\", error=\"insufficient_scope\"",
                        ),
                    ),
                );
            }
        }
        let mut allow = AuthAllow::default();
        // Headers named for forwarded claims are always removed first: a client must not be
        // able to send its own `x-user-id`.
        for (claim, header) in &self.forward {
            allow.remove_headers.push(header.clone());
            if let Some(v) = claims.get(claim).and_then(claim_text) {
                allow.set_headers.push((header.clone(), header_value(&v)));
            }
        }
        if self.strip {
            strip(req, source, &mut allow);
        }
        allow.identity = Some(Identity {
            method: AuthMethod::Jwt,
            subject: claims.get("sub").and_then(claim_text),
            api_key_name: None,
            claims: Some(claims),
        });
        JwtOutcome::Allow {
            allow,
            cached: from_cache,
        }
    }

    /// Verifies signature and registered claims; `Err` is the 401 reason.
    async fn verify(&self, token: &str) -> Result<Map<String, Value>, &'static str> {
        let header = decode_header(token).map_err(|_| "malformed")?;
        let Some((_, validation)) = self.validations.iter().find(|(a, _)| *a == header.alg) else {
            return Err("bad_algorithm");
        };
        let mut keys = self.keys.candidates(header.kid.as_deref(), header.alg);
        if keys.is_empty() {
            let Some(kid) = header.kid.as_deref() else {
                return Err("no_key");
            };
            self.keys.refetch_for(kid).await;
            keys = self.keys.candidates(Some(kid), header.alg);
            if keys.is_empty() {
                return Err("unknown_kid");
            }
        }
        let mut reason = "bad_signature";
        for key in keys {
            match decode::<Map<String, Value>>(token, &key, validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => {
                    reason = match e.kind() {
                        // Another key (same kid-less family) may still verify it.
                        ErrorKind::InvalidSignature
                        | ErrorKind::InvalidEcdsaKey
                        | ErrorKind::InvalidRsaKey(_)
                        | ErrorKind::InvalidEddsaKey => continue,
                        ErrorKind::ExpiredSignature => "expired",
                        ErrorKind::ImmatureSignature => "not_yet_valid",
                        ErrorKind::InvalidIssuer => "wrong_issuer",
                        ErrorKind::InvalidAudience => "wrong_audience",
                        ErrorKind::MissingRequiredClaim(_) => "missing_registered_claim",
                        ErrorKind::InvalidAlgorithm => "bad_algorithm",
                        _ => "malformed",
                    };
                    break;
                }
            }
        }
        Err(reason)
    }
}

/// The 401 for `reason`, with an RFC 6750 challenge.
pub(crate) fn unauthorized(reason: &'static str) -> Reject {
    let challenge = if reason == "missing_credentials" {
        HeaderValue::from_static("Bearer realm=\"sekisho\"")
    } else {
        header_value(&format!(
            "Bearer realm=\"sekisho\", error=\"invalid_token\", error_description=\"{reason}\""
        ))
    };
    Reject::new(StatusCode::UNAUTHORIZED, reason)
        .with_header(http::header::WWW_AUTHENTICATE, challenge)
}

fn claim_satisfies(value: Option<&Value>, any_of: &[String]) -> bool {
    let Some(value) = value else { return false };
    if any_of.is_empty() {
        return !value.is_null();
    }
    let has = |s: &str| any_of.iter().any(|want| want == s);
    match value {
        // `scope` is a space-separated string by convention (RFC 8693).
        Value::String(s) => s.split(' ').any(has),
        Value::Array(items) => items.iter().filter_map(Value::as_str).any(has),
        Value::Bool(b) => has(if *b { "true" } else { "false" }),
        Value::Number(n) => has(&n.to_string()),
        _ => false,
    }
}

/// A claim as header text: strings as is, numbers and booleans printed, arrays comma-joined.
fn claim_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(claim_text)
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    }
}

fn strip(req: &RequestView<'_>, source: &TokenSource, allow: &mut AuthAllow) {
    match source {
        TokenSource::Bearer => allow.remove_headers.push(http::header::AUTHORIZATION),
        TokenSource::Header(h) => {
            if let Ok(name) = HeaderName::from_bytes(h.as_bytes()) {
                allow.remove_headers.push(name);
            }
        }
        TokenSource::Cookie(name) => {
            let kept: Vec<&str> = req
                .headers
                .get_all(http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .map(str::trim)
                .filter(|p| !p.is_empty() && p.split_once('=').is_none_or(|(k, _)| k != name))
                .collect();
            allow.remove_headers.push(http::header::COOKIE);
            if !kept.is_empty() {
                allow
                    .set_headers
                    .push((http::header::COOKIE, header_value(&kept.join("; "))));
            }
        }
    }
}
