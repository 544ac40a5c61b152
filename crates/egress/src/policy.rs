//! Which destinations the proxy may reach: allow and deny lists of host names and CIDRs.
//!
//! An egress proxy is an open door into the network it runs in. Cloud metadata services
//! (`169.254.169.254`, `fd00:ec2::254`, `metadata.google.internal`) hand out credentials to
//! anything that can reach them, so they are denied by default. Names are checked as
//! written, and addresses after resolution: a harmless-looking name that resolves to a
//! denied address is refused too (the resolver given to the pools filters them out).

use std::net::IpAddr;
use std::str::FromStr;

/// A host name (exact, or `*.suffix` for any subdomain) or an IP network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// An exact host name, lowercase.
    Host(String),
    /// `*.example.com`: any name ending in `.example.com` (not `example.com` itself).
    Suffix(String),
    /// An IP network; a plain address is a /32 or /128.
    Net(Cidr),
}

/// An IP network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// A rule that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid host or CIDR {0:?}")]
pub struct InvalidRule(pub String);

impl Cidr {
    /// Whether `ip` is inside the network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl FromStr for Rule {
    type Err = InvalidRule;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidRule(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let bare = addr.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            let ip = canonical(ip);
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let prefix = prefix.unwrap_or(max);
            if prefix > max {
                return Err(bad());
            }
            return Ok(Rule::Net(Cidr { addr: ip, prefix }));
        }
        if prefix.is_some() || s.is_empty() {
            return Err(bad());
        }
        let name = s.to_ascii_lowercase();
        let valid = |n: &str| {
            !n.is_empty()
                && n.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
        };
        match name.strip_prefix("*.") {
            Some(suffix) if valid(suffix) => Ok(Rule::Suffix(format!(".{suffix}"))),
            None if valid(&name) => Ok(Rule::Host(name)),
            _ => Err(bad()),
        }
    }
}

impl Rule {
    fn matches_name(&self, host: &str) -> bool {
        match self {
            Rule::Host(h) => h == host,
            Rule::Suffix(s) => host.ends_with(s.as_str()),
            Rule::Net(_) => false,
        }
    }

    fn matches_ip(&self, ip: IpAddr) -> bool {
        matches!(self, Rule::Net(n) if n.contains(ip))
    }
}

/// The rules denied unless `--no-default-deny`: cloud metadata endpoints.
pub const DEFAULT_DENY: [&str; 4] = [
    "169.254.169.254",
    "fd00:ec2::254",
    "metadata.google.internal",
    "metadata.goog",
];

/// Allow and deny lists. Deny wins; with a non-empty allow list, a destination must match
/// it by name or by every one of its addresses.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    allow: Vec<Rule>,
    deny: Vec<Rule>,
}

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The host name is on the deny list.
    #[error("destination host {0} is denied")]
    Name(String),
    /// An address the host resolved to is on the deny list.
    #[error("destination address {0} is denied")]
    Address(IpAddr),
    /// The allow list is not empty and the destination is not on it.
    #[error("destination {0} is not on the allow list")]
    NotAllowed(String),
}

impl Policy {
    /// A policy from explicit lists; `default_deny` adds [`DEFAULT_DENY`].
    pub fn new(allow: Vec<Rule>, mut deny: Vec<Rule>, default_deny: bool) -> Self {
        if default_deny {
            deny.extend(DEFAULT_DENY.iter().filter_map(|r| r.parse().ok()));
        }
        Self { allow, deny }
    }

    /// Checks a destination host (a lowercase name or an IP literal) before resolving it.
    /// Returns whether the name alone settles the allow list.
    pub fn check_name(&self, host: &str) -> Result<bool, Denied> {
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse() {
            self.check_ip(ip, false)?;
            return Ok(true);
        }
        if self.deny.iter().any(|r| r.matches_name(host)) {
            return Err(Denied::Name(host.to_owned()));
        }
        Ok(self.allow.is_empty() || self.allow.iter().any(|r| r.matches_name(host)))
    }

    /// Checks one resolved address; `name_allowed` is what [`Policy::check_name`] said.
    pub fn check_ip(&self, ip: IpAddr, name_allowed: bool) -> Result<(), Denied> {
        if self.deny.iter().any(|r| r.matches_ip(ip)) {
            return Err(Denied::Address(ip));
        }
        if name_allowed || self.allow.is_empty() || self.allow.iter().any(|r| r.matches_ip(ip)) {
            Ok(())
        } else {
            Err(Denied::NotAllowed(ip.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(v: &[&str]) -> Vec<Rule> {
        v.iter().map(|r| r.parse().expect("rule")).collect()
    }

    #[test]
    fn metadata_denied_by_default() {
        let p = Policy::new(vec![], vec![], true);
        assert!(p.check_name("169.254.169.254").is_err());
        assert!(p.check_name("[fd00:ec2::254]").is_err());
        assert!(p.check_name("metadata.google.internal").is_err());
        assert!(p
            .check_ip("169.254.169.254".parse().expect("ip"), true)
            .is_err());
        // IPv4-mapped IPv6 is the same address.
        assert!(p
            .check_ip("::ffff:169.254.169.254".parse().expect("ip"), true)
            .is_err());
        assert_eq!(p.check_name("example.com"), Ok(true));
        assert!(p.check_ip("127.0.0.1".parse().expect("ip"), true).is_ok());
        let open = Policy::new(vec![], vec![], false);
        assert_eq!(open.check_name("169.254.169.254"), Ok(true));
    }

    #[test]
    fn cidrs() {
        let p = Policy::new(vec![], rules(&["10.0.0.0/8", "fe80::/10"]), false);
        assert!(p.check_ip("10.1.2.3".parse().expect("ip"), true).is_err());
        assert!(p.check_ip("11.0.0.1".parse().expect("ip"), true).is_ok());
        assert!(p.check_ip("fe80::1".parse().expect("ip"), true).is_err());
        assert!(p.check_ip("::1".parse().expect("ip"), true).is_ok());
        let all = Policy::new(vec![], rules(&["0.0.0.0/0"]), false);
        assert!(all.check_ip("8.8.8.8".parse().expect("ip"), true).is_err());
    }

    #[test]
    fn allow_list_by_name_or_address() {
        let p = Policy::new(rules(&["*.example.com", "127.0.0.0/8"]), vec![], false);
        assert_eq!(p.check_name("api.example.com"), Ok(true));
        assert_eq!(p.check_name("example.com"), Ok(false));
        assert!(p.check_ip("127.0.0.2".parse().expect("ip"), false).is_ok());
        assert!(p.check_ip("10.0.0.1".parse().expect("ip"), false).is_err());
        assert!(p.check_name("10.0.0.1").is_err());
    }

    #[test]
    fn deny_wins_over_allow() {
        let p = Policy::new(
            rules(&["*.example.com"]),
            rules(&["bad.example.com"]),
            false,
        );
        assert!(p.check_name("bad.example.com").is_err());
    }

    #[test]
    fn invalid_rules() {
        for r in [
            "",
            "10.0.0.0/33",
            "::/129",
            "a b",
            "*.",
            "host/8",
            "1.2.3.4/x",
        ] {
            assert!(r.parse::<Rule>().is_err(), "{r}");
        }
    }
}
