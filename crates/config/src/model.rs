//! The typed configuration, as users write it in YAML.
//!
//! Every section that later stages may need to report errors against carries an
//! [`Location`] (its YAML path and line), so that errors found after parsing
//! (a conflicting route, an unreadable certificate) still point at the source.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod cors;
mod policy;
pub use cors::*;
pub use policy::*;

/// Where a config item was written: its YAML path (`routes[2].match`) and position.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// Dotted YAML path, with `[i]` for sequence items, e.g. `routes[2].match.host`.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// The whole gateway configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The admin listener (`/metrics`, `/healthz`, ...); none when absent.
    pub admin: Option<Admin>,
    /// Where access log lines go.
    pub access_log: AccessLog,
    /// The shared DNS cache used by every cluster.
    pub dns: Dns,
    /// Client-facing listeners.
    pub listeners: Vec<Listener>,
    /// Routes; order does not matter (most specific wins).
    pub routes: Vec<Route>,
    /// Upstream clusters.
    pub clusters: Vec<Cluster>,
    /// `default_auth`: the authentication of every route without its own `auth`
    /// (`auth: public` opts a route out).
    pub default_auth: Option<AuthConfig>,
    /// YAML paths (e.g. `routes[0].request_headers.set.authorization`) of the values that
    /// took text from `${ENV_VARS}`: secrets, redacted by [`Config::effective_json`].
    pub secret_paths: Vec<String>,
}

/// `admin:`
#[derive(Debug, Clone, PartialEq)]
pub struct Admin {
    /// `admin.listen`: address of the admin HTTP listener.
    pub listen: SocketAddr,
    /// Where it was written.
    pub at: Location,
}

/// `access_log:`; default: JSON lines to stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLog {
    /// `access_log.path`: `stdout` (default), `stderr`, `off`, or a file path (appended to).
    pub target: LogTarget,
}

/// Destination of the access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// No access log.
    Off,
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A file, opened for append.
    File(PathBuf),
}

/// `dns:`: the in-process DNS cache shared by all clusters.
#[derive(Debug, Clone, PartialEq)]
pub struct Dns {
    /// `dns.resolvers`: name servers (`ip:port`, port defaults to 53). Empty: the system's (`/etc/resolv.conf`).
    pub resolvers: Vec<SocketAddr>,
    /// `dns.min_ttl` (default `1s`): answers are kept at least this long.
    pub min_ttl: Duration,
    /// `dns.max_ttl` (default `300s`): answers are refreshed at least this often.
    pub max_ttl: Duration,
    /// `dns.timeout` (default `2s`): one lookup's time bound.
    pub timeout: Duration,
    /// `dns.max_stale` (default `1h`): how long an expired answer is still served while the resolver fails.
    pub max_stale: Duration,
}

/// `listeners[i]`
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    /// `name`: unique among listeners.
    pub name: String,
    /// `listen`: the socket address to bind.
    pub listen: SocketAddr,
    /// `tls`: serve TLS (HTTP/2 and HTTP/1.1 chosen by ALPN). Absent: plaintext HTTP/1.1 and h2c.
    pub tls: Option<ListenerTls>,
    /// `limits`: per-connection limits.
    pub limits: ListenerLimits,
    /// `http1_fast_path` (default true): plain HTTP/1.1 requests on plaintext listeners are
    /// proxied by the gateway's own HTTP/1.1 engine instead of hyper (see the gateway's
    /// `fast` module); false sends every request through the general pipeline.
    pub http1_fast_path: bool,
    /// Where it was written.
    pub at: Location,
}

/// `listeners[i].tls`
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerTls {
    /// `certs`: certificate chains; the SNI name picks one, the first is the default.
    pub certs: Vec<CertKey>,
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone, PartialEq)]
pub struct CertKey {
    /// `cert`: PEM file with the chain, leaf first.
    pub cert: PathBuf,
    /// `key`: PEM file with the private key.
    pub key: PathBuf,
    /// Where it was written.
    pub at: Location,
}

/// `listeners[i].limits`
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerLimits {
    /// `max_header_bytes` (default `64KiB`): request line plus headers.
    pub max_header_bytes: u64,
    /// `header_read_timeout` (default `10s`): time to receive the request head (slowloris bound).
    pub header_read_timeout: Duration,
    /// `idle_timeout` (default `60s`): a keep-alive connection with no request in flight is closed after this.
    pub idle_timeout: Duration,
    /// `max_connections` (default `10000`): connections past this wait in the accept queue.
    pub max_connections: usize,
    /// `max_concurrent_streams` (default `100`): HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
}

/// `routes[i]`
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// `name`: unique among routes; used in logs and metrics.
    pub name: String,
    /// `match`
    pub matcher: RouteMatch,
    /// Exactly one of `cluster`, `split`, `direct_response`, `redirect`.
    pub action: RouteAction,
    /// `rewrite`: path rewrite applied before proxying.
    pub rewrite: Option<Rewrite>,
    /// `request_headers`: edits of the request sent upstream.
    pub request_headers: HeaderOps,
    /// `response_headers`: edits of the response sent to the client.
    pub response_headers: HeaderOps,
    /// `timeout` (default `15s`): the whole request, from routing to the last response byte's header arrival.
    pub timeout: Duration,
    /// `buffer_request`: read the whole request body before choosing an upstream.
    pub buffer_request: Option<BufferRequest>,
    /// `allow_encoded_slashes` (default false): accept `%2F` / `%5C` in the path (kept encoded).
    pub allow_encoded_slashes: bool,
    /// `per_try_timeout`: bound on each attempt (first try and each retry); none: only `timeout`.
    pub per_try_timeout: Option<Duration>,
    /// `retry`: retry failed attempts, on another endpoint when possible.
    pub retry: Option<Retry>,
    /// `mirror`: copy a share of the traffic to a shadow cluster, fire and forget.
    pub mirror: Option<Mirror>,
    /// `transcode`: HTTP+JSON / HTTP+Protobuf to gRPC for this route's (gRPC) cluster.
    pub transcode: Option<Transcode>,
    /// `auth`: who may call the route.
    pub auth: RouteAuth,
    /// `rate_limit`: requests per period per key.
    pub rate_limit: Option<RateLimitConfig>,
    /// `lock`: at most one request in flight per key (across instances with a shared backend).
    pub lock: Option<LockConfig>,
    /// `cors`: browser origins allowed to call the route; preflights answered at the gateway.
    pub cors: Option<Cors>,
    /// Where it was written.
    pub at: Location,
}

/// `routes[i].retry`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// `attempts`: retries after the first try (1 to 10).
    pub attempts: u32,
    /// `on` (default `[connect-failure, reset]`): which failures are retried.
    pub on: Vec<RetryOn>,
    /// `statuses`: response statuses that are retried (e.g. `[503, 409]`).
    pub statuses: Vec<u16>,
    /// `non_idempotent` (default false): retry also POST, PATCH and other non-idempotent
    /// methods after the request may have reached the upstream. A connect failure (nothing
    /// was sent) is retried for every method.
    pub non_idempotent: bool,
    /// `backoff.base` (default `25ms`): the first backoff; each retry doubles it, with jitter.
    pub backoff_base: Duration,
    /// `backoff.max` (default `250ms`): the longest backoff.
    pub backoff_max: Duration,
}

/// What a retry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOn {
    /// `connect-failure`: the connection could not be made (refused, timed out, TLS failed,
    /// pool full): nothing was sent.
    ConnectFailure,
    /// `reset`: the connection broke before a response head arrived.
    Reset,
    /// `5xx`: any 5xx response.
    Status5xx,
    /// `gateway-error`: a 502, 503 or 504 response.
    GatewayError,
}

/// `routes[i].transcode`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcode {
    /// `descriptors`: a `FileDescriptorSet` (`protoc --include_imports --descriptor_set_out`).
    pub descriptors: PathBuf,
    /// `services`: fully qualified gRPC services to expose (`bookstore.v1.Bookstore`).
    pub services: Vec<String>,
    /// `auto_mapping` (default true): methods without an HTTP rule answer `POST /pkg.Service/Method`.
    pub auto_mapping: bool,
    /// `reject_unknown_fields` (default false): unknown JSON fields are a 400 instead of ignored.
    pub reject_unknown_fields: bool,
    /// `case_insensitive_enums` (default false): accept enum names in any case.
    pub case_insensitive_enums: bool,
    /// `use_proto_field_names` (default false): JSON output uses proto names, not lowerCamelCase.
    pub use_proto_field_names: bool,
    /// `emit_defaults` (default false): JSON output includes fields with default values.
    pub emit_defaults: bool,
    /// `stream_format` (default `json_array`): server streams as `json_array`, `ndjson` or `sse`.
    pub stream_format: StreamFormat,
    /// `metadata_headers` (default none): request headers forwarded as gRPC metadata.
    pub metadata_headers: Vec<String>,
    /// `max_request_bytes` (default `4MiB`): largest HTTP request body transcoded.
    pub max_request_bytes: u64,
}

/// How a server stream is written to an HTTP client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// `json_array`: one JSON array.
    JsonArray,
    /// `ndjson`: one JSON message per line.
    Ndjson,
    /// `sse`: Server-Sent Events.
    Sse,
}

/// `routes[i].mirror`
#[derive(Debug, Clone, PartialEq)]
pub struct Mirror {
    /// `cluster`: the shadow cluster; its answers are discarded.
    pub cluster: String,
    /// `percent` (default 100): share of the route's requests copied, 0 to 100.
    pub percent: f64,
}

/// `routes[i].match`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// `host`: exact (`api.example.com`) or wildcard (`*.example.com`), lowercased, no port. None: any host.
    pub host: Option<String>,
    /// One of `path`, `path_prefix`, `path_template`; none means `path_prefix: /`.
    pub path: PathMatch,
    /// `methods`: uppercase method names; empty means any.
    pub methods: Vec<String>,
    /// `headers`: all must match.
    pub headers: Vec<HeaderMatch>,
}

/// How a route matches the (normalized) path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// `path`: the whole path, exactly.
    Exact(String),
    /// `path_prefix`: a prefix on a segment boundary if it ends with `/`, else a plain string prefix.
    Prefix(String),
    /// `path_template`: `/v1/items/{id}`, `{name}` matches one segment, a final `{name...}`/`{*name}` the rest.
    Template(String),
}

/// `routes[i].match.headers[j]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMatch {
    /// `name`, lowercased.
    pub name: String,
    /// `value`: exact value; None (key absent, or `present: true`) means the header only has to be present.
    pub value: Option<String>,
}

/// What a route does with a matched request.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteAction {
    /// `cluster: NAME`
    Cluster(String),
    /// `split: [{cluster, weight}]` with the optional `split_header` override.
    Split(Split),
    /// `direct_response: {status, body, content_type}`
    Direct(DirectResponse),
    /// `redirect: {location, status, preserve_path}`
    Redirect(Redirect),
}

/// A weighted split across clusters (canary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The targets; weights are relative (they need not sum to 100).
    pub targets: Vec<WeightedCluster>,
    /// `split_header` (default `x-sekisho-cluster`): a request carrying this header with a
    /// target's cluster name goes to that target, bypassing the weights.
    pub override_header: String,
}

/// `split[i]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedCluster {
    /// `cluster`
    pub cluster: String,
    /// `weight` (0 allowed: reachable only by the override header).
    pub weight: u32,
}

/// `direct_response`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectResponse {
    /// `status` (100-599).
    pub status: u16,
    /// `body` (default empty).
    pub body: String,
    /// `content_type` (default `text/plain; charset=utf-8`).
    pub content_type: String,
}

/// `redirect`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// `location`: absolute URL or path.
    pub location: String,
    /// `status`: 301 (default), 302, 303, 307 or 308.
    pub status: u16,
    /// `preserve_path` (default false): append the request's path and query to `location`.
    pub preserve_path: bool,
}

/// `rewrite`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// `prefix`: replaces the part of the path matched by `path_prefix` (only with `path_prefix`).
    pub prefix: String,
}

/// `request_headers` / `response_headers`
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderOps {
    /// `set: {name: value}`: replace any existing values.
    pub set: Vec<(String, String)>,
    /// `add: {name: value}`: append a value.
    pub add: Vec<(String, String)>,
    /// `remove: [name]`
    pub remove: Vec<String>,
}

/// `buffer_request`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferRequest {
    /// `max_bytes`: bodies past this get 413.
    pub max_bytes: u64,
}

/// `clusters[i]`
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// `name`: unique among clusters.
    pub name: String,
    /// `endpoints`: `host:port` strings or `{address, weight}` maps.
    pub endpoints: Vec<Endpoint>,
    /// `protocol` (default `http1`).
    pub protocol: Protocol,
    /// `lb` (default `least_request`).
    pub lb: LbPolicy,
    /// `connect_timeout` (default `1s`).
    pub connect_timeout: Duration,
    /// `tls`: connect to endpoints with TLS.
    pub tls: Option<UpstreamTls>,
    /// `pool`: connection pool limits, per endpoint.
    pub pool: Pool,
    /// `health_check`, `outlier_detection`, `panic_threshold`, `max_requests`, `retry_budget`.
    pub resilience: ClusterResilience,
    /// Where it was written.
    pub at: Location,
}

/// `clusters[i].endpoints[j]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host part: an IP literal or a DNS name (resolved through the cache).
    pub host: String,
    /// Port.
    pub port: u16,
    /// `weight` (default 1, at least 1).
    pub weight: u32,
    /// Where it was written.
    pub at: Location,
}

/// Upstream application protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `http1`
    Http1,
    /// `h2`: HTTP/2 over TLS (requires `tls`).
    H2,
    /// `h2c`: HTTP/2 prior knowledge over plaintext.
    H2c,
    /// `auto`: HTTP/2 or HTTP/1.1 chosen by ALPN (requires `tls`).
    Auto,
}

/// Load-balancing policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbPolicy {
    /// `round_robin`: smooth weighted round robin.
    RoundRobin,
    /// `least_request`: power of two choices on in-flight requests, weight-aware.
    LeastRequest,
    /// `random`: weighted random.
    Random,
}

/// `clusters[i].tls`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// `sni`: server name to send and verify (default: the endpoint's host).
    pub sni: Option<String>,
    /// `ca`: PEM file of trusted roots (default: the bundled web PKI roots).
    pub ca: Option<PathBuf>,
    /// `extra_ca`: PEM file of roots trusted in addition to the default ones (an internal
    /// CA next to the public web PKI); not with `ca`.
    pub extra_ca: Option<PathBuf>,
    /// `system_roots` (default false): trust the operating system's roots (e.g.
    /// `/etc/ssl/certs`) instead of the bundled web PKI roots; not with `ca`.
    pub system_roots: bool,
    /// `cert` + `key`: client certificate for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// `clusters[i].pool`
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// `max_connections` (default `256`): total (busy + idle) connections per endpoint.
    pub max_connections: usize,
    /// `max_idle` (default `64`): idle keep-alive connections kept per endpoint.
    pub max_idle: usize,
    /// `idle_timeout` (default `60s`): an idle connection older than this is closed.
    pub idle_timeout: Duration,
    /// `max_pending` (default `1024`): requests waiting for a connection past the cap; more get 503.
    pub max_pending: usize,
    /// `pending_timeout` (default `5s`): longest wait for a connection slot.
    pub pending_timeout: Duration,
}

/// The cluster keys that keep failing endpoints out of rotation and bound the load on
/// the cluster (`Default` gives the documented defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterResilience {
    /// `health_check`: active HTTP checks of every endpoint address; none when absent.
    pub health_check: Option<HealthCheck>,
    /// `outlier_detection`: passive ejection of failing addresses (on by default).
    pub outlier_detection: OutlierDetection,
    /// `panic_threshold` (default `50`): when fewer than this percent of the addresses are
    /// healthy, requests go to all of them (0 disables panic mode).
    pub panic_threshold: u32,
    /// `max_requests` (default `1024`): concurrent requests to the cluster; past it requests
    /// fail at once with 503 (circuit breaking).
    pub max_requests: usize,
    /// `retry_budget`: how many retries the cluster accepts relative to its requests.
    pub retry_budget: RetryBudget,
}

impl Default for ClusterResilience {
    fn default() -> Self {
        Self {
            health_check: None,
            outlier_detection: OutlierDetection::default(),
            panic_threshold: 50,
            max_requests: 1024,
            retry_budget: RetryBudget::default(),
        }
    }
}

/// `clusters[i].health_check`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// `path`: the path (and query) requested with `GET`; a 2xx answer is a pass.
    pub path: String,
    /// `interval` (default `5s`): time between two checks of one address.
    pub interval: Duration,
    /// `timeout` (default `1s`): bound on one check (connect, request and response head).
    pub timeout: Duration,
    /// `healthy_threshold` (default `2`): consecutive passes that make an unhealthy address healthy.
    pub healthy_threshold: u32,
    /// `unhealthy_threshold` (default `3`): consecutive failures that make a healthy address unhealthy.
    pub unhealthy_threshold: u32,
    /// `host`: the `Host` (HTTP/2 `:authority`) sent; default: the endpoint's `host:port`.
    pub host: Option<String>,
}

/// `clusters[i].outlier_detection`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlierDetection {
    /// `consecutive_5xx` (default `5`): 5xx answers (or resets) in a row that eject an address; 0: never.
    pub consecutive_5xx: u32,
    /// `consecutive_connect_failures` (default `5`): failed connects in a row that eject an address; 0: never.
    pub consecutive_connect_failures: u32,
    /// `base_ejection_time` (default `30s`): the first ejection's length; the n-th lasts n times this.
    pub base_ejection_time: Duration,
    /// `max_ejection_time` (default `300s`): the longest ejection.
    pub max_ejection_time: Duration,
    /// `max_ejection_percent` (default `50`): at most this percent of the addresses are ejected at once.
    pub max_ejection_percent: u32,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        Self {
            consecutive_5xx: 5,
            consecutive_connect_failures: 5,
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 50,
        }
    }
}

/// `clusters[i].retry_budget`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBudget {
    /// `percent` (default `20`): retries allowed as a percentage of requests over the last 10 s.
    pub percent: u32,
    /// `min_retries_per_second` (default `10`): retries always allowed per second, so a
    /// quiet cluster can still retry.
    pub min_retries_per_second: u32,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            percent: 20,
            min_retries_per_second: 10,
        }
    }
}
