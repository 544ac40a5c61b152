//! `routes[i].cors`: origins, methods, headers, with defaults that fit the route.

use super::Decoder;
use crate::keys;
use crate::model::{Cors, OriginPattern};
use crate::syntax;
use crate::yaml::Node;

/// `allow_methods` when absent and the route matches any method.
const DEFAULT_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
/// Request headers a gRPC-Web client sends (grpc-web's `x-grpc-web`, `x-user-agent`, the
/// deadline in `grpc-timeout`): always allowed on `transcode` routes.
pub(crate) const GRPC_WEB_REQUEST_HEADERS: &[&str] =
    &["content-type", "x-grpc-web", "x-user-agent", "grpc-timeout"];
/// Response headers a gRPC-Web client must read: always exposed on `transcode` routes.
pub(crate) const GRPC_WEB_RESPONSE_HEADERS: &[&str] =
    &["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// Decodes `cors`; `route_methods` and `grpc_web` (the route transcodes) pick the defaults.
pub(crate) fn decode(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    route_methods: &[String],
    grpc_web: bool,
) -> Option<Cors> {
    let f = d.map(node, path, keys::CORS)?;
    let origins_node = f.required(d, "allow_origins")?;
    let origins_path = f.path("allow_origins");
    let allow_origins = d.list(origins_node, &origins_path, |d, n, p| {
        d.check(n, p, origin_pattern)
    });
    if allow_origins.is_empty()
        && d.seq(origins_node, &origins_path)
            .is_some_and(<[_]>::is_empty)
    {
        d.error(
            &origins_path,
            origins_node.mark,
            "must list at least one origin",
        );
    }
    let allow_methods = match f.get("allow_methods") {
        Some(n) => {
            let p = f.path("allow_methods");
            dedup(d.list(n, &p, |d, n, p| d.check(n, p, syntax::method)))
        }
        None if !route_methods.is_empty() => route_methods.to_vec(),
        None => DEFAULT_METHODS.iter().map(|m| (*m).to_owned()).collect(),
    };
    let header_list = |d: &mut Decoder, key: &str| -> Vec<String> {
        match f.get(key) {
            Some(n) => d.list(n, &f.path(key), |d, n, p| {
                d.check(n, p, syntax::header_name)
            }),
            None => Vec::new(),
        }
    };
    let mut allow_headers = header_list(d, "allow_headers");
    let mut expose_headers = header_list(d, "expose_headers");
    if f.get("allow_headers").is_none() {
        allow_headers.push("content-type".to_owned());
    }
    if grpc_web {
        allow_headers.extend(GRPC_WEB_REQUEST_HEADERS.iter().map(|h| (*h).to_owned()));
        expose_headers.extend(GRPC_WEB_RESPONSE_HEADERS.iter().map(|h| (*h).to_owned()));
    }
    let max_age = f
        .get("max_age")
        .and_then(|n| d.duration(n, &f.path("max_age")));
    let allow_credentials = f
        .get("allow_credentials")
        .and_then(|n| d.bool(n, &f.path("allow_credentials")))
        .unwrap_or(false);
    if allow_credentials && allow_origins.contains(&OriginPattern::Any) {
        d.error(
            &origins_path,
            origins_node.mark,
            "`*` with `allow_credentials: true` would let any site act as the user: list the origins",
        );
    }
    Some(Cors {
        allow_origins,
        allow_methods,
        allow_headers: dedup(allow_headers),
        expose_headers: dedup(expose_headers),
        max_age,
        allow_credentials,
    })
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|s| seen.insert(s.clone()));
    v
}

/// `*`, `scheme://host[:port]` or `scheme://*.domain[:port]`.
pub(crate) fn origin_pattern(s: &str) -> Result<OriginPattern, String> {
    if s == "*" {
        return Ok(OriginPattern::Any);
    }
    let bad = |why: &str| {
        Err(format!(
            "invalid origin {s:?}: {why} (expected `*`, `https://app.example.com` or `https://*.example.com`, optionally with a port)"
        ))
    };
    let lower = s.to_ascii_lowercase();
    let Some((scheme, authority)) = lower.split_once("://") else {
        return bad("no scheme");
    };
    if scheme.is_empty()
        || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return bad("bad scheme");
    }
    if authority.contains(['/', '?', '#']) {
        return bad("an origin has no path");
    }
    if authority.contains('@') {
        return bad("an origin has no user info");
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err() {
                return bad("bad port");
            }
            (h, format!(":{p}"))
        }
        _ => (authority, String::new()),
    };
    if host.is_empty() {
        return bad("no host");
    }
    match host.strip_prefix("*.") {
        Some(domain) if !domain.is_empty() && !domain.contains('*') => {
            Ok(OriginPattern::Subdomains {
                scheme: format!("{scheme}://"),
                suffix: format!(".{domain}"),
                port,
            })
        }
        Some(_) => bad("`*.` needs a domain after it"),
        None if host.contains('*') => bad("`*` only as the first label (`*.example.com`)"),
        None => Ok(OriginPattern::Exact(lower)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_patterns_parse_and_match() {
        let p = |s| origin_pattern(s).unwrap();
        assert_eq!(p("*"), OriginPattern::Any);
        assert!(p("https://App.example.com").matches("https://app.example.com"));
        assert!(!p("https://app.example.com").matches("http://app.example.com"));
        assert!(!p("https://app.example.com").matches("https://app.example.com:8443"));
        let sub = p("https://*.example.com");
        assert!(sub.matches("https://a.example.com"));
        assert!(sub.matches("https://a.b.example.com"));
        assert!(!sub.matches("https://example.com"));
        assert!(!sub.matches("https://evil-example.com"));
        assert!(!sub.matches("https://a.example.com.evil.net"));
        assert!(!sub.matches("https://a.example.com:8443"));
        assert!(!sub.matches("http://a.example.com"));
        assert!(p("http://*.example.com:8080").matches("http://x.example.com:8080"));
        assert!(p("http://[::1]:8080").matches("http://[::1]:8080"));
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://a.*.com",
            "https://*.",
            "https://app.example.com:x",
            "https://u@app.example.com",
            "://x",
        ] {
            assert!(origin_pattern(bad).is_err(), "{bad}");
        }
    }
}
