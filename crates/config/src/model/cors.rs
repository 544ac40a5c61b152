//! `routes[i].cors`: which browser origins may call the route, answered at the gateway.

use std::time::Duration;

/// `routes[i].cors`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// `allow_origins` (required): who may call.
    pub allow_origins: Vec<OriginPattern>,
    /// `allow_methods` (default: the route's `match.methods`, else GET, HEAD, POST, PUT,
    /// PATCH, DELETE): methods a preflight may ask for, uppercased.
    pub allow_methods: Vec<String>,
    /// `allow_headers` (default `content-type`; on `transcode` routes also the gRPC-Web
    /// request headers): request headers a preflight may ask for, lowercased.
    pub allow_headers: Vec<String>,
    /// `expose_headers` (default none; on `transcode` routes always the gRPC status
    /// headers): response headers scripts may read, lowercased.
    pub expose_headers: Vec<String>,
    /// `max_age` (default none: the browser's own, 5s in Chromium): how long a
    /// preflight's answer may be cached.
    pub max_age: Option<Duration>,
    /// `allow_credentials` (default false): cookies and HTTP auth may be sent.
    pub allow_credentials: bool,
}

/// One `allow_origins` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `*`: any origin.
    Any,
    /// `https://app.example.com[:port]`: this origin exactly (lowercased).
    Exact(String),
    /// `https://*.example.com[:port]`: any subdomain of `example.com` (not `example.com`
    /// itself) with this scheme and port.
    Subdomains {
        /// `https://`, `http://`, ...
        scheme: String,
        /// `.example.com`, with its leading dot.
        suffix: String,
        /// `:8443`, or empty for the scheme's default port.
        port: String,
    },
}

impl OriginPattern {
    /// True if the `Origin` header value `origin` matches (ASCII case-insensitively).
    pub fn matches(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        match self {
            OriginPattern::Any => true,
            OriginPattern::Exact(o) => *o == origin,
            OriginPattern::Subdomains {
                scheme,
                suffix,
                port,
            } => {
                let Some(rest) = origin.strip_prefix(scheme.as_str()) else {
                    return false;
                };
                let (host, p) = match rest.rfind(':') {
                    Some(i)
                        if !rest[i + 1..].is_empty()
                            && rest[i + 1..].bytes().all(|b| b.is_ascii_digit()) =>
                    {
                        (&rest[..i], &rest[i..])
                    }
                    _ => (rest, ""),
                };
                p == port
                    && host.len() > suffix.len()
                    && host.ends_with(suffix.as_str())
                    && !host[..host.len() - suffix.len()].contains(['/', '@'])
            }
        }
    }
}

impl std::fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OriginPattern::Any => f.write_str("*"),
            OriginPattern::Exact(o) => f.write_str(o),
            OriginPattern::Subdomains {
                scheme,
                suffix,
                port,
            } => write!(f, "{scheme}*{suffix}{port}"),
        }
    }
}
