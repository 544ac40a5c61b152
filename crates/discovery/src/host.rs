//! Host strings: IP literals, and the cache key of a name.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv6Addr};

/// Parses `127.0.0.1`, `::1` and `[::1]` as IP literals.
pub(crate) fn ip_literal(host: &str) -> Option<IpAddr> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    host.parse().ok()
}

/// The cache key: DNS names are case-insensitive, so lowercase, but only
/// allocate when the name has uppercase letters (the common case is a hit
/// with an already-lowercase name).
pub(crate) fn cache_key(host: &str) -> Cow<'_, str> {
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn ip_literals() {
        assert_eq!(
            ip_literal("127.0.0.2"),
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        );
        assert_eq!(ip_literal("::1"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(ip_literal("[::1]"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(ip_literal("[127.0.0.1]"), None);
        assert_eq!(ip_literal("api.test"), None);
        assert_eq!(ip_literal("[::1"), None);
    }

    #[test]
    fn keys_are_lowercase_and_borrow_when_possible() {
        assert!(matches!(cache_key("api.test"), Cow::Borrowed("api.test")));
        assert_eq!(cache_key("API.Test"), "api.test");
    }
}
