//! The egress proxy's settings, and chocon's command-line flags that produce them.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use sekisho_discovery::DnsConfig;

use crate::error::EgressError;
use crate::host::{split_port, Scheme};
use crate::policy::{Policy, Rule};

/// Where access log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogSetting {
    /// Standard error (chocon's default, an empty `--access-log-dir`).
    Stderr,
    /// Standard output (`--access-log-dir stdout`).
    Stdout,
    /// Nowhere (`--access-log-dir none`).
    Off,
    /// Files `access_log.YYYYMMDDhhmm` in a directory, a `current` symlink to the newest.
    Dir {
        /// The directory.
        dir: PathBuf,
        /// Files older than this are removed (`--access-log-rotate`, days).
        keep: Duration,
        /// A new file is started this often (`--access-log-rotate-time`, minutes).
        every: Duration,
    },
}

/// Fixed upstream mode: every request goes to this origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedUpstream {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host name or IP literal (also the TLS server name).
    pub host: String,
    /// Port (the scheme's default if none was given).
    pub port: u16,
}

impl FixedUpstream {
    /// Parses `http://host[:port][/]` or `https://host[:port][/]`.
    pub fn parse(s: &str) -> Result<Self, EgressError> {
        let bad = |why: &str| EgressError::Config(format!("--upstream {s:?}: {why}"));
        let (scheme, rest) = if let Some(r) = s.strip_prefix("https://") {
            (Scheme::Https, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (Scheme::Http, r)
        } else {
            return Err(bad("the scheme must be http or https"));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains('/') {
            return Err(bad("expected scheme://host[:port] with no path"));
        }
        let (host, port) = split_port(authority).map_err(|e| bad(&e.to_string()))?;
        if host.is_empty() {
            return Err(bad("no host name"));
        }
        Ok(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port: port.unwrap_or(scheme.default_port()),
        })
    }
}

/// Everything [`Egress::start`](crate::Egress::start) needs.
#[derive(Debug, Clone)]
pub struct EgressConfig {
    /// Where to listen (loopback by default: an egress proxy open to all is an open proxy).
    pub listen: SocketAddr,
    /// Idle keep-alive connections kept per destination address.
    pub keepalive_conns: usize,
    /// Connections (busy + idle) per destination address; 0 means no limit.
    pub max_conns_per_host: usize,
    /// A client must send its request head within this.
    pub read_timeout: Duration,
    /// The response must be written within this from the request's start.
    pub write_timeout: Duration,
    /// The upstream must answer with a response head within this (else 504).
    pub proxy_read_timeout: Duration,
    /// On shutdown, requests in flight get this long to finish.
    pub shutdown_timeout: Duration,
    /// TCP + TLS + HTTP handshake bound for a new upstream connection.
    pub connect_timeout: Duration,
    /// Idle upstream connections are closed after this.
    pub idle_timeout: Duration,
    /// Fixed upstream mode instead of the host convention.
    pub upstream: Option<FixedUpstream>,
    /// Access log destination.
    pub access_log: AccessLogSetting,
    /// Written with the process id at start, removed at exit.
    pub pid_file: Option<PathBuf>,
    /// Destination allow and deny lists.
    pub policy: Policy,
    /// Extra CA certificates (PEM) trusted for HTTPS destinations, instead of the web PKI roots.
    pub ca_file: Option<PathBuf>,
    /// The DNS cache's settings.
    pub dns: DnsConfig,
    /// Most destinations with a pool at once; the least recently used idle one is evicted.
    pub max_destinations: usize,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            keepalive_conns: 2,
            max_conns_per_host: 0,
            read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(90),
            proxy_read_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(3600),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            upstream: None,
            access_log: AccessLogSetting::Stderr,
            pid_file: None,
            policy: Policy::new(Vec::new(), Vec::new(), true),
            ca_file: None,
            dns: dns_defaults(Vec::new()),
            max_destinations: 1024,
        }
    }
}

/// chocon re-resolves its upstream every 3 s: answers are kept at most that long.
pub(crate) fn dns_defaults(resolvers: Vec<SocketAddr>) -> DnsConfig {
    DnsConfig {
        resolvers,
        min_ttl: Duration::from_secs(1),
        max_ttl: Duration::from_secs(3),
        ..DnsConfig::default()
    }
}

/// chocon's flags (seconds as bare integers, like chocon; `250ms`, `1h` also work),
/// plus sekisho's safety and TLS additions.
#[derive(Debug, Clone, clap::Args)]
pub struct EgressArgs {
    /// Address to bind (chocon binds 0.0.0.0; sekisho defaults to loopback).
    #[arg(short = 'l', long, default_value = "127.0.0.1")]
    pub listen: IpAddr,
    /// Port to bind.
    #[arg(short = 'p', long, default_value_t = 3000)]
    pub port: u16,
    /// Idle keep-alive connections kept per upstream host.
    #[arg(short = 'c', long, default_value_t = 2)]
    pub keepalive_conns: usize,
    /// Connections per upstream host (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub max_conns_per_host: usize,
    /// Timeout of reading a request head.
    #[arg(long, default_value = "30", value_parser = parse_secs)]
    pub read_timeout: Duration,
    /// Timeout of writing the response (from the request's start).
    #[arg(long, default_value = "90", value_parser = parse_secs)]
    pub write_timeout: Duration,
    /// Timeout of waiting for the upstream's response head (504 past it).
    #[arg(long, default_value = "60", value_parser = parse_secs)]
    pub proxy_read_timeout: Duration,
    /// Longest wait for requests in flight on SIGTERM/SIGINT.
    #[arg(long, default_value = "1h", value_parser = parse_secs)]
    pub shutdown_timeout: Duration,
    /// Fixed upstream: `http(s)://host[:port]`; every request goes there with its Host kept.
    #[arg(long)]
    pub upstream: Option<String>,
    /// Access log directory; `stdout`, `none`, or empty for stderr.
    #[arg(long, default_value = "")]
    pub access_log_dir: String,
    /// Days before rotated access logs are removed.
    #[arg(long, default_value_t = 30)]
    pub access_log_rotate: u64,
    /// Minutes between access log rotations.
    #[arg(long, default_value_t = 1440)]
    pub access_log_rotate_time: u64,
    /// File to write the process id to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Allowed destination (host, `*.suffix` or CIDR; repeatable). When given, only these.
    #[arg(long = "allow", value_name = "HOST|CIDR")]
    pub allow: Vec<String>,
    /// Denied destination (host, `*.suffix` or CIDR; repeatable).
    #[arg(long = "deny", value_name = "HOST|CIDR")]
    pub deny: Vec<String>,
    /// Do not deny cloud metadata addresses by default.
    #[arg(long)]
    pub no_default_deny: bool,
    /// PEM file of CA certificates trusted for HTTPS destinations (instead of the web PKI roots).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// DNS servers to use instead of /etc/resolv.conf's (`ip:port`, repeatable).
    #[arg(long = "dns-resolver", value_name = "ADDR")]
    pub dns_resolvers: Vec<SocketAddr>,
}

/// A bare integer is seconds (chocon), else a unit duration (`250ms`, `1h`).
fn parse_secs(s: &str) -> Result<Duration, String> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    sekisho_config::parse_duration(s).map_err(|e| e.to_string())
}

impl EgressArgs {
    /// Checks the flags and builds the settings.
    pub fn to_config(&self) -> Result<EgressConfig, EgressError> {
        let rules = |list: &[String]| {
            list.iter()
                .map(|r| r.parse::<Rule>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| EgressError::Config(e.to_string()))
        };
        let access_log = match self.access_log_dir.as_str() {
            "" => AccessLogSetting::Stderr,
            "stdout" => AccessLogSetting::Stdout,
            "none" => AccessLogSetting::Off,
            dir => AccessLogSetting::Dir {
                dir: PathBuf::from(dir),
                keep: Duration::from_secs(self.access_log_rotate.saturating_mul(86_400)),
                every: Duration::from_secs(self.access_log_rotate_time.max(1).saturating_mul(60)),
            },
        };
        Ok(EgressConfig {
            listen: SocketAddr::new(self.listen, self.port),
            keepalive_conns: self.keepalive_conns,
            max_conns_per_host: self.max_conns_per_host,
            read_timeout: self.read_timeout,
            write_timeout: self.write_timeout,
            proxy_read_timeout: self.proxy_read_timeout,
            shutdown_timeout: self.shutdown_timeout,
            upstream: self
                .upstream
                .as_deref()
                .filter(|u| !u.is_empty())
                .map(FixedUpstream::parse)
                .transpose()?,
            access_log,
            pid_file: self.pid_file.clone(),
            policy: Policy::new(
                rules(&self.allow)?,
                rules(&self.deny)?,
                !self.no_default_deny,
            ),
            ca_file: self.ca_file.clone(),
            dns: dns_defaults(self.dns_resolvers.clone()),
            ..EgressConfig::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: EgressArgs,
    }

    fn parse(argv: &[&str]) -> EgressConfig {
        let cli = Cli::try_parse_from(std::iter::once("egress").chain(argv.iter().copied()))
            .expect("flags");
        cli.args.to_config().expect("config")
    }

    #[test]
    fn chocon_defaults_but_loopback() {
        let c = parse(&[]);
        assert_eq!(c.listen, SocketAddr::from(([127, 0, 0, 1], 3000)));
        assert_eq!(c.keepalive_conns, 2);
        assert_eq!(c.max_conns_per_host, 0);
        assert_eq!(c.read_timeout, Duration::from_secs(30));
        assert_eq!(c.write_timeout, Duration::from_secs(90));
        assert_eq!(c.proxy_read_timeout, Duration::from_secs(60));
        assert_eq!(c.shutdown_timeout, Duration::from_secs(3600));
        assert_eq!(c.access_log, AccessLogSetting::Stderr);
        assert!(c.upstream.is_none());
    }

    #[test]
    fn chocon_command_line() {
        let c = parse(&[
            "-l",
            "127.0.0.2",
            "-p",
            "8080",
            "-c",
            "8",
            "--max-conns-per-host",
            "32",
            "--read-timeout",
            "5",
            "--write-timeout",
            "250ms",
            "--proxy-read-timeout",
            "7",
            "--shutdown-timeout",
            "10",
            "--upstream",
            "https://api.example.com:8443/",
            "--access-log-dir",
            "/var/log/egress",
            "--access-log-rotate",
            "7",
            "--access-log-rotate-time",
            "60",
            "--pid-file",
            "/run/egress.pid",
        ]);
        assert_eq!(c.listen, SocketAddr::from(([127, 0, 0, 2], 8080)));
        assert_eq!((c.keepalive_conns, c.max_conns_per_host), (8, 32));
        assert_eq!(c.read_timeout, Duration::from_secs(5));
        assert_eq!(c.write_timeout, Duration::from_millis(250));
        assert_eq!(c.proxy_read_timeout, Duration::from_secs(7));
        assert_eq!(c.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(
            c.upstream,
            Some(FixedUpstream {
                scheme: Scheme::Https,
                host: "api.example.com".into(),
                port: 8443
            })
        );
        assert_eq!(
            c.access_log,
            AccessLogSetting::Dir {
                dir: "/var/log/egress".into(),
                keep: Duration::from_secs(7 * 86_400),
                every: Duration::from_secs(3600),
            }
        );
        assert_eq!(c.pid_file, Some(PathBuf::from("/run/egress.pid")));
        assert_eq!(
            parse(&["--access-log-dir", "none"]).access_log,
            AccessLogSetting::Off
        );
        assert_eq!(
            parse(&["--access-log-dir", "stdout"]).access_log,
            AccessLogSetting::Stdout
        );
    }

    #[test]
    fn upstream_urls() {
        let u = FixedUpstream::parse("http://svc.internal").expect("url");
        assert_eq!((u.scheme, u.port), (Scheme::Http, 80));
        for bad in [
            "ftp://x",
            "https://",
            "https://h/path",
            "https://h:0",
            "h:80",
        ] {
            assert!(FixedUpstream::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_rules_are_config_errors() {
        let cli = Cli::try_parse_from(["egress", "--deny", "10.0.0.0/99"]).expect("flags");
        assert!(cli.args.to_config().is_err());
    }
}
