//! Route policies (`auth`, `rate_limit`, `lock`): plain types mirroring the YAML one to one.
//!
//! ```yaml
//! auth:
//!   optional: false
//!   jwt:
//!     issuers: [https://id.example.com/]
//!     audiences: [shop-api]
//!     algorithms: [RS256, ES256]
//!     leeway: 30s
//!     keys:
//!       jwks: { url: https://id.example.com/jwks.json, refresh: 5m, min_refetch: 30s, timeout: 2s }
//!       files: [{ path: keys/old.pem, kid: old }]
//!       secret_env: JWT_SECRET          # HS256
//!     from: [bearer, { header: x-token }, { cookie: session }]
//!     required_claims: [{ claim: scope, any_of: [purchase] }]
//!     forward_claims: { sub: x-user-id }
//!     strip_token: true
//!   ext_auth:
//!     url: http://127.0.0.1:9000/check
//!     timeout: 200ms
//!     forward_headers: [authorization, cookie]
//!     upstream_headers: [x-user-id]
//!     cache: { ttl: 5s, key: [x-tenant], max_entries: 10000 }   # keyed by forward_headers too
//!     on_error: closed
//!     error_status: 503
//!   api_keys: { header: x-api-key, file: secrets/api-keys.txt, env: API_KEYS }
//! rate_limit:
//!   key: { header: x-tenant }           # client_ip | { header: H } | { claim: C } | api_key
//!   limit: 100
//!   period: 1s
//!   burst: 20
//!   backend: { redis: "redis://127.0.0.1:6379" }   # or local
//!   timeout: 20ms
//!   on_backend_error: local             # local | allow | deny
//!   breaker: { failures: 3, cooldown: 2s }
//! lock:
//!   key: "buy/{form.item_id}"
//!   backend: { memcached: "127.0.0.1:11211" }      # or { redis: URL }, or local
//!   ttl: 10s
//!   wait: { attempts: 3, backoff: 20ms }
//!   on_busy: { status: 503, retry_after: 1s }
//!   on_error: closed                    # closed | open
//!   timeout: 50ms
//!   breaker: { failures: 3, cooldown: 2s }
//! ```

use std::path::PathBuf;
use std::time::Duration;

/// `auth`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthConfig {
    /// `optional` (default false): a request with no credential at all passes, anonymous.
    pub optional: bool,
    /// `jwt`
    pub jwt: Option<JwtConfig>,
    /// `ext_auth`
    pub ext_auth: Option<ExtAuthConfig>,
    /// `api_keys`
    pub api_keys: Option<ApiKeysConfig>,
}

/// `auth.jwt`
#[derive(Debug, Clone, PartialEq)]
pub struct JwtConfig {
    /// `issuers`: accepted `iss` values (empty: not checked).
    pub issuers: Vec<String>,
    /// `audiences`: accepted `aud` values (empty: not checked).
    pub audiences: Vec<String>,
    /// `algorithms`: accepted `alg` values; a token with another is rejected (no `none`, no confusion).
    pub algorithms: Vec<JwtAlgorithm>,
    /// `leeway` (default `30s`): clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// `keys`
    pub keys: JwtKeysConfig,
    /// `from` (default `[bearer]`): where the token is looked for, in order.
    pub from: Vec<TokenSource>,
    /// `required_claims`: a valid token lacking one is 403.
    pub required_claims: Vec<ClaimRequirement>,
    /// `forward_claims`: claim name → upstream header name.
    pub forward_claims: Vec<(String, String)>,
    /// `strip_token` (default false): remove the token's header/cookie before proxying.
    pub strip_token: bool,
    /// `cache_size` (default 10000): verified tokens remembered so a client's repeated token
    /// skips the signature check (still checked against `exp`; re-verified every 5 minutes);
    /// 0 disables.
    pub cache_size: usize,
}

impl JwtConfig {
    /// A config with the defaults and the given keys.
    pub fn new(algorithms: Vec<JwtAlgorithm>, keys: JwtKeysConfig) -> Self {
        Self {
            issuers: Vec::new(),
            audiences: Vec::new(),
            algorithms,
            leeway: Duration::from_secs(30),
            keys,
            from: vec![TokenSource::Bearer],
            required_claims: Vec::new(),
            forward_claims: Vec::new(),
            strip_token: false,
            cache_size: 10_000,
        }
    }
}

/// `auth.jwt.keys`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JwtKeysConfig {
    /// `jwks`
    pub jwks: Option<JwksConfig>,
    /// `files`: PEM public keys.
    pub files: Vec<KeyFileConfig>,
    /// `secret_env`: the environment variable holding the HS256 shared secret.
    pub secret_env: Option<String>,
}

/// `auth.jwt.keys.jwks`
#[derive(Debug, Clone, PartialEq)]
pub struct JwksConfig {
    /// `url`: `http://` or `https://`.
    pub url: String,
    /// `refresh` (default `5m`): background refresh period.
    pub refresh: Duration,
    /// `min_refetch` (default `30s`): at most one refetch per this for unknown `kid`s.
    pub min_refetch: Duration,
    /// `timeout` (default `2s`): one fetch.
    pub timeout: Duration,
}

impl JwksConfig {
    /// A config with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            refresh: Duration::from_secs(300),
            min_refetch: Duration::from_secs(30),
            timeout: Duration::from_secs(2),
        }
    }
}

/// `auth.jwt.keys.files[i]`
#[derive(Debug, Clone, PartialEq)]
pub struct KeyFileConfig {
    /// `path`: a PEM public key (RSA, EC or Ed25519).
    pub path: PathBuf,
    /// `kid`: matched against the token's `kid` (a key without one matches any token).
    pub kid: Option<String>,
}

/// `auth.jwt.from[i]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `bearer`: `Authorization: Bearer <token>`.
    Bearer,
    /// `{header: NAME}`: the whole header value.
    Header(String),
    /// `{cookie: NAME}`
    Cookie(String),
}

/// `auth.jwt.required_claims[i]`
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRequirement {
    /// `claim`: the claim name.
    pub claim: String,
    /// `any_of`: accepted values (a string claim is split on spaces, like `scope`); empty: present is enough.
    pub any_of: Vec<String>,
}

/// `auth.ext_auth`
#[derive(Debug, Clone, PartialEq)]
pub struct ExtAuthConfig {
    /// `url`: the service; the request's path and query are appended to its path. `http://` only.
    pub url: String,
    /// `timeout` (default `200ms`).
    pub timeout: Duration,
    /// `forward_headers` (default `[authorization, cookie]`): request headers sent to the service.
    pub forward_headers: Vec<String>,
    /// `upstream_headers`: headers of a 2xx answer copied to the upstream request.
    pub upstream_headers: Vec<String>,
    /// `cache`
    pub cache: Option<ExtAuthCacheConfig>,
    /// `on_error` (default `closed`): when the service times out or fails.
    pub on_error: FailMode,
    /// `error_status` (default `503`): the status when failing closed.
    pub error_status: u16,
}

impl ExtAuthConfig {
    /// A config with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout: Duration::from_millis(200),
            forward_headers: vec!["authorization".into(), "cookie".into()],
            upstream_headers: Vec::new(),
            cache: None,
            on_error: FailMode::Closed,
            error_status: 503,
        }
    }
}

/// `auth.ext_auth.cache`
#[derive(Debug, Clone, PartialEq)]
pub struct ExtAuthCacheConfig {
    /// `ttl`: how long an allow, 401 or 403 is reused.
    pub ttl: Duration,
    /// `key`: request headers that key the decision in addition to the ones it is always keyed
    /// by: the method, the path and query, and every `forward_headers` header (what the
    /// service decided on). It can only add headers, never make two callers share a decision.
    pub key: Vec<String>,
    /// `max_entries` (default 10000).
    pub max_entries: usize,
}

/// `auth.api_keys`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiKeysConfig {
    /// `header` (default `x-api-key`).
    pub header: String,
    /// `file`: one `name: key` per line; `#` comments.
    pub file: Option<PathBuf>,
    /// `env`: a variable holding `name:key,name:key`.
    pub env: Option<String>,
}

/// `on_error` of the backends: what to do when the policy cannot decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailMode {
    /// `closed`: reject.
    #[default]
    Closed,
    /// `open`: let the request through.
    Open,
}

/// `rate_limit`
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitConfig {
    /// `key`
    pub key: RateKey,
    /// `limit`: requests per `period`, sustained.
    pub limit: u32,
    /// `period`
    pub period: Duration,
    /// `burst` (default `limit`): requests allowed at once from a full bucket.
    pub burst: u32,
    /// `backend` (default `local`).
    pub backend: RateBackend,
    /// `timeout` (default `20ms`): bound on a Redis decision.
    pub timeout: Duration,
    /// `on_backend_error` (default `local`).
    pub on_backend_error: RateFallback,
    /// `breaker`
    pub breaker: BreakerConfig,
}

impl RateLimitConfig {
    /// A local limit of `limit` per `period`, burst `limit`, keyed by `key`.
    pub fn new(key: RateKey, limit: u32, period: Duration) -> Self {
        Self {
            key,
            limit,
            period,
            burst: limit,
            backend: RateBackend::Local,
            timeout: Duration::from_millis(20),
            on_backend_error: RateFallback::Local,
            breaker: BreakerConfig::default(),
        }
    }
}

/// `rate_limit.key`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateKey {
    /// `client_ip`
    ClientIp,
    /// `{header: NAME}` (a request without it is keyed by client IP).
    Header(String),
    /// `{claim: NAME}` of the verified JWT (no claim: keyed by client IP).
    Claim(String),
    /// `api_key`: the API key's name (no key: keyed by client IP).
    ApiKey,
}

/// `rate_limit.backend`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateBackend {
    /// `local`: per instance.
    Local,
    /// `{redis: URL}`: shared by every instance.
    Redis(String),
}

/// `rate_limit.on_backend_error`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateFallback {
    /// `local`: fail open to the same limit counted per instance.
    Local,
    /// `allow`: fail open without limit.
    Allow,
    /// `deny`: fail closed (429).
    Deny,
}

/// `breaker`: consecutive failures open the circuit for `cooldown`; then one probe is let through.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// `failures` (default 3).
    pub failures: u32,
    /// `cooldown` (default `2s`).
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: 3,
            cooldown: Duration::from_secs(2),
        }
    }
}

/// `lock`
#[derive(Debug, Clone, PartialEq)]
pub struct LockConfig {
    /// `key`: a template, e.g. `buy/{form.item_id}`; sources `path.`, `query.`, `header.`,
    /// `form.`, `json.` (dotted path into the JSON body).
    pub key: String,
    /// `backend`
    pub backend: LockBackendConfig,
    /// `ttl` (default `10s`): the key expires if a gateway dies holding it.
    pub ttl: Duration,
    /// `wait`
    pub wait: LockWait,
    /// `on_busy`
    pub on_busy: OnBusy,
    /// `on_error` (default `closed`): when the backend fails or is slower than `timeout`.
    pub on_error: FailMode,
    /// `timeout` (default `50ms`): bound on each backend call.
    pub timeout: Duration,
    /// `breaker`
    pub breaker: BreakerConfig,
}

impl LockConfig {
    /// A config with the defaults.
    pub fn new(key: impl Into<String>, backend: LockBackendConfig) -> Self {
        Self {
            key: key.into(),
            backend,
            ttl: Duration::from_secs(10),
            wait: LockWait::default(),
            on_busy: OnBusy::default(),
            on_error: FailMode::Closed,
            timeout: Duration::from_millis(50),
            breaker: BreakerConfig::default(),
        }
    }
}

/// `lock.backend`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockBackendConfig {
    /// `local`: one instance only.
    Local,
    /// `{memcached: "host:port"}`
    Memcached(String),
    /// `{redis: URL}`
    Redis(String),
}

/// `lock.wait`
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LockWait {
    /// `attempts` (default 3): retries after the first try, like `retry.attempts`.
    pub attempts: u32,
    /// `backoff` (default `20ms`): pause before each retry (jittered ±25%).
    pub backoff: Duration,
}

impl Default for LockWait {
    fn default() -> Self {
        Self {
            attempts: 3,
            backoff: Duration::from_millis(20),
        }
    }
}

/// `lock.on_busy`
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnBusy {
    /// `status` (default 503).
    pub status: u16,
    /// `retry_after` (default `1s`): sent as `Retry-After` in whole seconds (rounded up).
    pub retry_after: Option<Duration>,
}

impl Default for OnBusy {
    fn default() -> Self {
        Self {
            status: 503,
            retry_after: Some(Duration::from_secs(1)),
        }
    }
}

/// `auth.jwt.algorithms[i]`: the signature algorithms a token may use (never `none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    /// HMAC SHA-256 (shared secret).
    HS256,
    /// RSASSA-PKCS1-v1_5 SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 SHA-512.
    RS512,
    /// RSASSA-PSS SHA-256.
    PS256,
    /// RSASSA-PSS SHA-384.
    PS384,
    /// RSASSA-PSS SHA-512.
    PS512,
    /// ECDSA P-256 SHA-256.
    ES256,
    /// ECDSA P-384 SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

impl JwtAlgorithm {
    /// Every algorithm with its name as written in YAML and in a token's `alg`.
    pub const ALL: &'static [(&'static str, JwtAlgorithm)] = &[
        ("HS256", JwtAlgorithm::HS256),
        ("RS256", JwtAlgorithm::RS256),
        ("RS384", JwtAlgorithm::RS384),
        ("RS512", JwtAlgorithm::RS512),
        ("PS256", JwtAlgorithm::PS256),
        ("PS384", JwtAlgorithm::PS384),
        ("PS512", JwtAlgorithm::PS512),
        ("ES256", JwtAlgorithm::ES256),
        ("ES384", JwtAlgorithm::ES384),
        ("EdDSA", JwtAlgorithm::EdDSA),
    ];

    /// The name as written.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, a)| *a == self)
            .map_or("?", |(n, _)| n)
    }
}

/// A route's `auth`: its own policy, the root `default_auth`, or explicitly none.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteAuth {
    /// No `auth` key: the root `default_auth` applies if there is one, else the route is public.
    Inherit,
    /// `auth: public`: no authentication, even with a `default_auth`.
    Public,
    /// `auth: {...}`
    Policy(Box<AuthConfig>),
}
