//! Host header handling: the key a request's host is looked up by.

use std::borrow::Cow;

/// Normalizes a Host header or `:authority` value for matching: strips the port
/// (also from `[v6]:port`, keeping the brackets), one trailing dot, and lowercases.
///
/// Borrows without allocating when the host is already lowercase (the common case).
pub fn normalize_host(raw: &str) -> Cow<'_, str> {
    let host = strip_port(raw);
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

fn strip_port(raw: &str) -> &str {
    if raw.starts_with('[') {
        // "[::1]:8080" -> "[::1]"; an unclosed bracket is left for no route to match.
        return match raw.find(']') {
            Some(end) => raw.get(..=end).unwrap_or(raw),
            None => raw,
        };
    }
    match raw.split_once(':') {
        // A second ':' means a bare IPv6 address, which has no port to strip.
        Some((host, port)) if !port.contains(':') => host,
        _ => raw,
    }
}

/// The suffixes of `host` a wildcard route could be keyed by, longest first:
/// `a.b.example.com` gives `.b.example.com`, `.example.com`, `.com`. A suffix is
/// never the whole host, so `*.example.com` does not match `example.com`.
///
/// Only suffixes of at most `max_len` bytes are produced, so a host of many
/// labels costs no more than the longest configured wildcard allows.
pub(crate) fn wildcard_suffixes(host: &str, max_len: usize) -> impl Iterator<Item = &str> {
    let start = host.len().saturating_sub(max_len).max(1);
    let tail = host.as_bytes().get(start..).unwrap_or_default();
    // '.' is ASCII, so every position found is a char boundary.
    tail.iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'.')
        .filter_map(move |(i, _)| host.get(start + i..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_port_dot_and_case() {
        let cases = [
            ("api.example.com", "api.example.com"),
            ("api.example.com:8080", "api.example.com"),
            ("API.Example.COM", "api.example.com"),
            ("api.example.com.", "api.example.com"),
            ("api.example.com.:443", "api.example.com"),
            ("[::1]:8080", "[::1]"),
            ("[::1]", "[::1]"),
            ("[::1", "[::1"),
            ("::1", "::1"),
            ("127.0.0.1:80", "127.0.0.1"),
            ("", ""),
            (":80", ""),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_host(raw), want, "input {raw}");
        }
    }

    #[test]
    fn lowercase_hosts_are_borrowed() {
        assert!(matches!(
            normalize_host("api.example.com:80"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(normalize_host("Api.example.com"), Cow::Owned(_)));
    }

    #[test]
    fn suffixes_longest_first() {
        let got: Vec<_> = wildcard_suffixes("a.b.example.com", 255).collect();
        assert_eq!(got, [".b.example.com", ".example.com", ".com"]);
        let got: Vec<_> = wildcard_suffixes("a.b.example.com", 12).collect();
        assert_eq!(got, [".example.com", ".com"]);
        assert_eq!(wildcard_suffixes(".com", 255).count(), 0);
        assert_eq!(wildcard_suffixes("localhost", 255).count(), 0);
        assert_eq!(
            wildcard_suffixes("ü.é.com", 255).collect::<Vec<_>>(),
            [".é.com", ".com"]
        );
        assert_eq!(wildcard_suffixes("a.com", 0).count(), 0);
    }
}
