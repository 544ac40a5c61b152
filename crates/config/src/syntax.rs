//! Checks of single values: hosts, methods, header names, paths, templates, endpoints.
//! Each returns the normalized value or an error message.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// An RFC 9110 token character (methods and header names).
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_tchar)
}

/// An HTTP method: a token, uppercased.
pub(crate) fn method(s: &str) -> Result<String, String> {
    if is_token(s) {
        Ok(s.to_ascii_uppercase())
    } else {
        Err(format!(
            "invalid HTTP method {s:?} (expected a token like GET)"
        ))
    }
}

/// A header name: a token, lowercased.
pub(crate) fn header_name(s: &str) -> Result<String, String> {
    if is_token(s) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!(
            "invalid header name {s:?} (letters, digits and !#$%&'*+-.^_`|~)"
        ))
    }
}

/// A header value: no control characters but tab.
pub(crate) fn header_value(s: &str) -> Result<String, String> {
    if s.chars().any(|c| c.is_control() && c != '\t') {
        Err("header value contains a control character (e.g. a newline)".to_string())
    } else {
        Ok(s.to_string())
    }
}

/// A route host: an exact name or `*.suffix`, lowercased, without a port.
pub(crate) fn host(s: &str) -> Result<String, String> {
    let lower = s.to_ascii_lowercase();
    if lower.contains(':') {
        return Err(format!(
            "invalid host {s:?}: write it without a port (routes match the host only)"
        ));
    }
    let name = lower.strip_prefix("*.").unwrap_or(&lower);
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if valid {
        Ok(lower)
    } else {
        Err(format!(
            "invalid host {s:?} (expected a name like api.example.com or a wildcard like *.example.com)"
        ))
    }
}

/// A URL path: starts with `/`, no spaces, controls, `?` or `#`.
pub(crate) fn url_path(s: &str) -> Result<String, String> {
    if !s.starts_with('/') {
        return Err(format!("path {s:?} must start with `/`"));
    }
    if s.chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '?' || c == '#')
    {
        return Err(format!(
            "path {s:?} contains a space, control character, `?` or `#`"
        ));
    }
    Ok(s.to_string())
}

/// A path template: `/v1/items/{id}`, `{name}` only as a whole segment, an optional final
/// catch-all `{name...}` or `{*name}`, no repeated names.
pub(crate) fn template(s: &str) -> Result<String, String> {
    url_path(s)?;
    let segments: Vec<&str> = s[1..].split('/').collect();
    let mut names: Vec<&str> = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        let Some(param) = parse_segment(seg).map_err(|m| format!("template {s:?}: {m}"))? else {
            continue;
        };
        if param.catch_all && i + 1 != segments.len() {
            return Err(format!(
                "template {s:?}: catch-all `{seg}` must be the last segment"
            ));
        }
        if names.contains(&param.name) {
            return Err(format!(
                "template {s:?}: parameter `{}` appears twice",
                param.name
            ));
        }
        names.push(param.name);
    }
    Ok(s.to_string())
}

/// The template with parameter names erased (`/v1/{}` and `/v1/{*}`): two templates with
/// the same shape match the same paths.
pub(crate) fn template_shape(s: &str) -> String {
    s.split('/')
        .map(|seg| match parse_segment(seg) {
            Ok(Some(p)) if p.catch_all => "{*}",
            Ok(Some(_)) => "{}",
            _ => seg,
        })
        .collect::<Vec<_>>()
        .join("/")
}

struct Param<'a> {
    name: &'a str,
    catch_all: bool,
}

/// A literal segment (None) or a parameter.
fn parse_segment(seg: &str) -> Result<Option<Param<'_>>, String> {
    let Some(inner) = seg.strip_prefix('{').and_then(|r| r.strip_suffix('}')) else {
        if seg.contains(['{', '}']) {
            return Err(format!(
                "segment `{seg}`: a parameter must be a whole segment like {{id}}"
            ));
        }
        return Ok(None);
    };
    let (name, catch_all) = if let Some(n) = inner.strip_prefix('*') {
        (n, true)
    } else if let Some(n) = inner.strip_suffix("...") {
        (n, true)
    } else {
        (inner, false)
    };
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(format!(
            "segment `{seg}`: parameter names are letters, digits and `_`"
        ));
    }
    Ok(Some(Param { name, catch_all }))
}

/// An upstream endpoint `host:port` or `[v6]:port`; the host is returned without brackets.
pub(crate) fn endpoint(s: &str) -> Result<(String, u16), String> {
    let bad = || {
        format!("invalid endpoint {s:?} (expected host:port, e.g. 127.0.0.1:8080, svc.local:80 or [::1]:8080)")
    };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, port) = rest.split_once("]:").ok_or_else(bad)?;
        v6.parse::<Ipv6Addr>().map_err(|_| bad())?;
        (v6.to_string(), port)
    } else {
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        if host.contains(':') {
            return Err(format!(
                "invalid endpoint {s:?}: write an IPv6 address in brackets, e.g. [::1]:8080"
            ));
        }
        if host.parse::<IpAddr>().is_err() && self::host(host).is_err() || host.starts_with("*.") {
            return Err(bad());
        }
        (host.to_ascii_lowercase(), port)
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((host, p)),
        _ => Err(bad()),
    }
}

/// A DNS resolver: `ip:port`, or `ip` for port 53.
pub(crate) fn resolver(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    match s.parse::<IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, 53)),
        Err(_) => Err(format!(
            "invalid resolver {s:?} (expected ip or ip:port, e.g. 127.0.0.1:53)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(host("API.Example.com"), Ok("api.example.com".into()));
        assert_eq!(host("*.Example.com"), Ok("*.example.com".into()));
        assert!(host("api.example.com:8080").is_err());
        assert!(host("a.*.com").is_err());
        assert!(host("*").is_err());
        assert!(host("a..b").is_err());
        assert!(host("").is_err());
    }

    #[test]
    fn methods_and_headers() {
        assert_eq!(method("get"), Ok("GET".into()));
        assert!(method("GE T").is_err());
        assert_eq!(header_name("X-Env"), Ok("x-env".into()));
        assert!(header_name("x env").is_err());
        assert!(header_name("").is_err());
        assert!(header_value("a\nb").is_err());
    }

    #[test]
    fn templates() {
        assert!(template("/v1/items/{id}").is_ok());
        assert!(template("/v1/{a}/x/{rest...}").is_ok());
        assert!(template("/v1/{*rest}").is_ok());
        assert!(template("/v1/x{id}").is_err());
        assert!(template("/v1/{id}/{id}").is_err());
        assert!(template("/v1/{*rest}/x").is_err());
        assert!(template("/v1/{}").is_err());
        assert!(template("v1/{id}").is_err());
        assert_eq!(
            template_shape("/v1/{id}/{rest...}"),
            template_shape("/v1/{x}/{*y}")
        );
        assert_ne!(template_shape("/v1/{id}"), template_shape("/v1/id"));
    }

    #[test]
    fn endpoints() {
        assert_eq!(endpoint("127.0.0.1:80"), Ok(("127.0.0.1".into(), 80)));
        assert_eq!(endpoint("Svc.Local:8080"), Ok(("svc.local".into(), 8080)));
        assert_eq!(endpoint("[::1]:8080"), Ok(("::1".into(), 8080)));
        for bad in [
            "::1:80", "host", "host:0", "host:x", ":80", "[::1]", "*.a:80", "a b:80",
        ] {
            assert!(endpoint(bad).is_err(), "{bad}");
        }
        assert_eq!(
            resolver("127.0.0.1"),
            Ok("127.0.0.1:53".parse().unwrap_or_else(|_| unreachable!()))
        );
        assert!(resolver("dns.google").is_err());
    }
}
