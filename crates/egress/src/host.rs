//! chocon's host convention: `Host: example.com.ccnproxy-https` means `https://example.com`.
//!
//! Rules (pure, no I/O):
//! - the marker labels are `ccnproxy` (plain http) and `ccnproxy-https`, `ccnproxy-secure`,
//!   `ccnproxy-ssl` (https); they match case-insensitively, like DNS names;
//! - the **last** marker label wins and the labels after it are dropped
//!   (`example.com.ccnproxy.local:3000` → `http://example.com:3000`), so a client can use an
//!   internal DNS wildcard (`*.ccnproxy.local`) pointing at the proxy;
//! - a port after the host is kept; without one the scheme's default port is used;
//! - no marker, a marker as the first label, an empty label, a byte that is not a DNS
//!   host character, or a bad port is an error (the server answers 400).

use std::fmt;

/// The scheme the proxy speaks to a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP (`.ccnproxy`).
    Http,
    /// HTTPS (`.ccnproxy-https`, `.ccnproxy-secure`, `.ccnproxy-ssl`).
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

/// Where a request goes: the key of a connection pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// The host name (lowercased) or IP literal, without the marker labels.
    pub host: String,
    /// The port: the one given, else the scheme's default.
    pub port: u16,
    /// The `Host` header to send upstream: the rewritten host, with the port if one was given.
    pub host_header: String,
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme.as_str(), self.host, self.port)
    }
}

/// Why a `Host` does not name a destination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// No `Host` header (or authority) at all.
    #[error("the request has no Host")]
    Missing,
    /// No `.ccnproxy*` label.
    #[error(
        "host {0:?} has no .ccnproxy, .ccnproxy-https, .ccnproxy-secure or .ccnproxy-ssl label"
    )]
    NoMarker(String),
    /// The marker is the first label: no destination host is left.
    #[error("host {0:?} names no destination before its .ccnproxy label")]
    NothingBeforeMarker(String),
    /// An empty label or a character not allowed in a host name.
    #[error("host {0:?} is not a valid host name")]
    InvalidHost(String),
    /// The port is not a number in 1..=65535.
    #[error("host {0:?} has an invalid port")]
    InvalidPort(String),
}

const HTTP_MARKER: &str = "ccnproxy";
const HTTPS_MARKERS: [&str; 3] = ["ccnproxy-https", "ccnproxy-secure", "ccnproxy-ssl"];

fn marker(label: &str) -> Option<Scheme> {
    if label.eq_ignore_ascii_case(HTTP_MARKER) {
        Some(Scheme::Http)
    } else if HTTPS_MARKERS.iter().any(|m| label.eq_ignore_ascii_case(m)) {
        Some(Scheme::Https)
    } else {
        None
    }
}

/// Splits `host[:port]`; a port must be 1..=65535 digits-only.
pub(crate) fn split_port(authority: &str) -> Result<(&str, Option<u16>), HostError> {
    match authority.rsplit_once(':') {
        None => Ok((authority, None)),
        Some((host, port)) => {
            let bad = || HostError::InvalidPort(authority.to_owned());
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            match port.parse::<u16>() {
                Ok(p) if p > 0 => Ok((host, Some(p))),
                _ => Err(bad()),
            }
        }
    }
}

/// Parses a request's `Host` (or HTTP/2 authority) by the convention above.
pub fn parse_host(authority: &str) -> Result<Destination, HostError> {
    if authority.is_empty() {
        return Err(HostError::Missing);
    }
    let (host, port) = split_port(authority)?;
    let labels: Vec<&str> = host.split('.').collect();
    let (index, scheme) = labels
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, l)| marker(l).map(|s| (i, s)))
        .ok_or_else(|| HostError::NoMarker(authority.to_owned()))?;
    if index == 0 {
        return Err(HostError::NothingBeforeMarker(authority.to_owned()));
    }
    let kept = labels.get(..index).unwrap_or_default();
    let valid_label = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !kept.iter().all(valid_label) {
        return Err(HostError::InvalidHost(authority.to_owned()));
    }
    let host = kept.join(".").to_ascii_lowercase();
    let host_header = match port {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    Ok(Destination {
        scheme,
        port: port.unwrap_or(scheme.default_port()),
        host,
        host_header,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> (Scheme, String, u16, String) {
        let d = parse_host(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        (d.scheme, d.host, d.port, d.host_header)
    }

    fn t(s: Scheme, h: &str, p: u16, hh: &str) -> (Scheme, String, u16, String) {
        (s, h.into(), p, hh.into())
    }

    #[test]
    fn plain_marker_is_http_on_port_80() {
        assert_eq!(
            ok("example.com.ccnproxy"),
            t(Scheme::Http, "example.com", 80, "example.com")
        );
    }

    #[test]
    fn https_markers_and_synonyms() {
        for m in ["ccnproxy-https", "ccnproxy-secure", "ccnproxy-ssl"] {
            assert_eq!(
                ok(&format!("example.com.{m}")),
                t(Scheme::Https, "example.com", 443, "example.com"),
                "{m}"
            );
        }
    }

    #[test]
    fn port_is_kept_in_destination_and_host_header() {
        assert_eq!(
            ok("example.com.ccnproxy:3000"),
            t(Scheme::Http, "example.com", 3000, "example.com:3000")
        );
        assert_eq!(
            ok("example.com.ccnproxy-https:8443"),
            t(Scheme::Https, "example.com", 8443, "example.com:8443")
        );
    }

    #[test]
    fn labels_after_the_marker_are_dropped() {
        assert_eq!(
            ok("example.com.ccnproxy.local:3000"),
            t(Scheme::Http, "example.com", 3000, "example.com:3000")
        );
        assert_eq!(
            ok("api.example.com.ccnproxy-ssl.svc.cluster.local"),
            t(Scheme::Https, "api.example.com", 443, "api.example.com")
        );
    }

    #[test]
    fn last_marker_wins() {
        // The earlier marker becomes part of the destination host.
        assert_eq!(
            ok("a.ccnproxy.b.ccnproxy-https.local"),
            t(Scheme::Https, "a.ccnproxy.b", 443, "a.ccnproxy.b")
        );
        assert_eq!(
            ok("a.ccnproxy-https.ccnproxy"),
            t(Scheme::Http, "a.ccnproxy-https", 80, "a.ccnproxy-https")
        );
    }

    #[test]
    fn single_label_and_ip_literal_destinations() {
        assert_eq!(
            ok("backend.ccnproxy"),
            t(Scheme::Http, "backend", 80, "backend")
        );
        assert_eq!(
            ok("127.0.0.1.ccnproxy-https:8443"),
            t(Scheme::Https, "127.0.0.1", 8443, "127.0.0.1:8443")
        );
    }

    #[test]
    fn markers_are_case_insensitive_and_host_lowercased() {
        assert_eq!(
            ok("Example.COM.CCNPROXY-HTTPS"),
            t(Scheme::Https, "example.com", 443, "example.com")
        );
    }

    #[test]
    fn lookalike_labels_are_not_markers() {
        for h in [
            "example.com.ccnproxy-http",
            "example.com.xccnproxy",
            "example.com.ccnproxyx",
            "example.com-ccnproxy",
            "example.com",
        ] {
            assert!(matches!(parse_host(h), Err(HostError::NoMarker(_))), "{h}");
        }
    }

    #[test]
    fn missing_host_is_an_error() {
        assert_eq!(parse_host(""), Err(HostError::Missing));
    }

    #[test]
    fn marker_as_first_label_is_an_error() {
        for h in [
            "ccnproxy",
            "ccnproxy-https",
            "ccnproxy-secure:443",
            "ccnproxy-ssl.local",
            "ccnproxy.example.com",
        ] {
            assert!(
                matches!(parse_host(h), Err(HostError::NothingBeforeMarker(_))),
                "{h}"
            );
        }
    }

    #[test]
    fn empty_labels_and_bad_characters_are_errors() {
        for h in [
            ".ccnproxy",
            "example..com.ccnproxy",
            "example.com..ccnproxy",
            "exa mple.com.ccnproxy",
            "exa/mple.com.ccnproxy",
            "user@example.com.ccnproxy",
        ] {
            assert!(
                matches!(parse_host(h), Err(HostError::InvalidHost(_))),
                "{h}"
            );
        }
    }

    #[test]
    fn bad_ports_are_errors() {
        for h in [
            "example.com.ccnproxy:",
            "example.com.ccnproxy:0",
            "example.com.ccnproxy:65536",
            "example.com.ccnproxy:80a",
            "example.com.ccnproxy:-1",
            "example.com.ccnproxy:+80",
        ] {
            assert!(
                matches!(parse_host(h), Err(HostError::InvalidPort(_))),
                "{h}"
            );
        }
    }

    #[test]
    fn display_is_the_pool_key() {
        let d = parse_host("example.com.ccnproxy-https").expect("parse");
        assert_eq!(d.to_string(), "https://example.com:443");
    }
}
