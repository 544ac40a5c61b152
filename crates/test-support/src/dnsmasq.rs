//! A real `dnsmasq` on a loopback port, serving names from a hosts file the test controls.
//!
//! ```no_run
//! # use std::net::{IpAddr, Ipv4Addr};
//! use sekisho_test_support::dnsmasq::Dnsmasq;
//!
//! let dns = Dnsmasq::start(&[("api.test", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))], 1);
//! // point the resolver at dns.addr() ...
//! dns.set_hosts(&[("api.test", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)))]);
//! ```
//!
//! dnsmasq is started authoritative for every name (`--local=/#/`), so a name
//! missing from the hosts file gets NXDOMAIN (not REFUSED), and a name with
//! only an A record gets an empty NOERROR answer for AAAA, like a real zone.

use std::fs;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `dnsmasq-base` puts the binary.
const DNSMASQ: &str = "/usr/sbin/dnsmasq";
/// How long dnsmasq may take to answer its first query.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// Port collisions (another test grabbed the port between our probe and dnsmasq's bind) are retried.
const START_ATTEMPTS: usize = 5;

/// A running dnsmasq serving a hosts file on `127.0.0.1:<port>` (UDP and TCP).
///
/// Dropping it kills the process (only the one it started).
#[derive(Debug)]
pub struct Dnsmasq {
    child: Option<Child>,
    addr: SocketAddr,
    hosts: PathBuf,
    log: PathBuf,
    // Held so the hosts file and log live as long as the server.
    _dir: tempfile::TempDir,
}

impl Dnsmasq {
    /// Starts dnsmasq answering `entries` with TTL `local_ttl` seconds.
    ///
    /// # Panics
    /// When dnsmasq is missing or does not come up; the message says why
    /// (this is a test harness: failing loudly is the point).
    pub fn start(entries: &[(&str, IpAddr)], local_ttl: u32) -> Self {
        match Self::try_start(entries, local_ttl) {
            Ok(dns) => dns,
            Err(e) => panic!("starting dnsmasq for the test failed: {e}"),
        }
    }

    /// Like [`Dnsmasq::start`], returning the error instead of panicking.
    pub fn try_start(entries: &[(&str, IpAddr)], local_ttl: u32) -> io::Result<Self> {
        if !Path::new(DNSMASQ).exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{DNSMASQ} is missing: DNS tests need a real dnsmasq; \
                     the test script installs it with `apt-get install dnsmasq-base`"
                ),
            ));
        }
        let dir = tempfile::tempdir()?;
        let hosts = dir.path().join("hosts");
        let log = dir.path().join("dnsmasq.log");
        write_hosts(&hosts, entries)?;

        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            match spawn(port, &hosts, &log, local_ttl) {
                Ok(child) => {
                    return Ok(Self {
                        child: Some(child),
                        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                        hosts,
                        log,
                        _dir: dir,
                    })
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("dnsmasq did not start")))
    }

    /// The address dnsmasq answers on (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the hosts file with `entries` and tells dnsmasq to re-read it (SIGHUP).
    ///
    /// The reload is asynchronous (milliseconds); poll for the new answer.
    ///
    /// # Panics
    /// When the file cannot be written or the signal cannot be sent.
    pub fn set_hosts(&self, entries: &[(&str, IpAddr)]) {
        if let Err(e) = write_hosts(&self.hosts, entries) {
            panic!("rewriting dnsmasq hosts file {}: {e}", self.hosts.display());
        }
        let Some(child) = &self.child else {
            panic!("set_hosts on a stopped dnsmasq");
        };
        let pid = child.id().to_string();
        // `kill` the command, aimed at our child's PID only: no libc/unsafe needed.
        match Command::new("kill").args(["-HUP", &pid]).status() {
            Ok(status) if status.success() => {}
            Ok(status) => panic!("kill -HUP {pid} failed: {status}"),
            Err(e) => panic!("running kill -HUP {pid}: {e}"),
        }
    }

    /// Stops dnsmasq (SIGKILL, then reaps it). Later queries to [`Dnsmasq::addr`] go unanswered.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Errors here mean it already exited; either way it is gone.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What dnsmasq logged so far (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes a hosts file atomically, so dnsmasq never reads a half-written one.
fn write_hosts(path: &Path, entries: &[(&str, IpAddr)]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp)?;
    for (name, ip) in entries {
        writeln!(f, "{ip} {name}")?;
    }
    f.sync_all()?;
    fs::rename(&tmp, path)
}

/// A loopback port free for both UDP and TCP right now.
fn free_port() -> io::Result<u16> {
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = udp.local_addr()?.port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(io::Error::other(
        "no loopback port free for both UDP and TCP",
    ))
}

fn spawn(port: u16, hosts: &Path, log: &Path, local_ttl: u32) -> io::Result<Child> {
    let stderr = fs::File::create(log)?;
    let mut child = Command::new(DNSMASQ)
        .arg("--keep-in-foreground")
        .arg("--conf-file=/dev/null")
        .arg(format!("--port={port}"))
        .arg("--listen-address=127.0.0.1")
        .arg("--bind-interfaces")
        .arg("--no-resolv")
        .arg("--no-hosts")
        .arg(format!("--addn-hosts={}", hosts.display()))
        .arg(format!("--local-ttl={local_ttl}"))
        // Authoritative for everything: unknown names are NXDOMAIN, not REFUSED.
        .arg("--local=/#/")
        .arg("--log-facility=-")
        .arg("--log-queries")
        // An empty pid file path: do not write /var/run/dnsmasq.pid.
        .arg("--pid-file=")
        // As root, dnsmasq would switch to `nobody`, who may not read our temp dir.
        .arg("--user=root")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()?;
    match wait_ready(&mut child, port) {
        Ok(()) => Ok(child),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            let log = fs::read_to_string(log).unwrap_or_default();
            Err(io::Error::new(
                e.kind(),
                format!("{e}; dnsmasq log:\n{log}"),
            ))
        }
    }
}

/// Sends a DNS query until dnsmasq answers anything, bounded by [`START_TIMEOUT`].
fn wait_ready(child: &mut Child, port: u16) -> io::Result<()> {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
    let query = probe_query(0x5eb1);
    let deadline = Instant::now() + START_TIMEOUT;
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Err(io::Error::other(format!("dnsmasq exited early: {status}")));
        }
        // Send errors (ICMP port unreachable from a previous send) just mean "not yet".
        let _ = sock.send_to(&query, (Ipv4Addr::LOCALHOST, port));
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            if n >= 2 && buf[..2] == query[..2] {
                return Ok(());
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("dnsmasq on port {port} did not answer within {START_TIMEOUT:?}"),
    ))
}

/// A minimal DNS query for `ready.probe.` type A, class IN.
fn probe_query(id: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(32);
    q.extend_from_slice(&id.to_be_bytes());
    // Flags: recursion desired; 1 question, 0 other records.
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in ["ready", "probe"] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_and_stops() {
        let mut dns = Dnsmasq::start(&[("a.test", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))], 1);
        let port = dns.addr().port();
        dns.set_hosts(&[("a.test", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)))]);
        dns.stop();
        // The port is free again once the process is gone.
        assert!(UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok());
    }
}
