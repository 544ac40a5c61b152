//! The parts of `/etc/resolv.conf` the cache uses, when no resolvers are configured.
//!
//! hickory reads it only with its `system-config` feature, which pulls more
//! crates than these few lines are worth.

use std::net::{IpAddr, SocketAddr};

/// What `/etc/resolv.conf` says, as far as we use it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ResolvConf {
    /// `nameserver` lines, port 53.
    pub nameservers: Vec<SocketAddr>,
    /// `search` (or `domain`) suffixes, in order; the last such line wins, as in glibc.
    pub search: Vec<String>,
    /// `options ndots:N`, if given.
    pub ndots: Option<usize>,
}

pub(crate) const PATH: &str = "/etc/resolv.conf";

/// Parses resolv.conf text; unknown lines and bad values are skipped, as glibc does.
pub(crate) fn parse(text: &str) -> ResolvConf {
    let mut conf = ResolvConf::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                // A scoped IPv6 address (`fe80::1%eth0`) does not parse and is skipped.
                if let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) {
                    conf.nameservers.push(SocketAddr::new(ip, 53));
                }
            }
            Some("search") | Some("domain") => {
                conf.search = words.map(|w| w.trim_end_matches('.').to_owned()).collect();
            }
            Some("options") => {
                for opt in words {
                    if let Some(n) = opt.strip_prefix("ndots:").and_then(|n| n.parse().ok()) {
                        // glibc caps ndots at 15.
                        conf.ndots = Some(std::cmp::min(n, 15));
                    }
                }
            }
            _ => {}
        }
    }
    conf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubernetes_style_resolv_conf() {
        let conf = parse(
            "# generated\nnameserver 10.96.0.10\nnameserver ::1 ; comment\nnameserver bogus\n\
             search default.svc.cluster.local svc.cluster.local cluster.local\n\
             options ndots:5 timeout:1\n",
        );
        assert_eq!(
            conf.nameservers,
            vec![
                SocketAddr::from(([10, 96, 0, 10], 53)),
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 53)),
            ]
        );
        assert_eq!(
            conf.search,
            [
                "default.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local"
            ]
        );
        assert_eq!(conf.ndots, Some(5));
    }

    #[test]
    fn empty_file_has_nothing() {
        assert_eq!(parse(""), ResolvConf::default());
    }
}
