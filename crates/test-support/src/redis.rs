//! A real `redis-server` on a loopback port, without persistence.
//!
//! ```no_run
//! use sekisho_test_support::redis::Redis;
//!
//! let mut redis = Redis::start();
//! let url = redis.url(); // redis://127.0.0.1:PORT
//! redis.pause(); // SIGSTOP: connects succeed, nothing answers (a "slow" Redis)
//! redis.resume();
//! redis.stop(); // killed: connections are refused
//! ```

use std::net::SocketAddr;

use process::{ServerProcess, Spec};

/// A running redis-server; dropping it kills the process (only the one it started).
#[derive(Debug)]
pub struct Redis {
    inner: ServerProcess,
}

impl Redis {
    /// Starts redis-server on a free loopback port and waits until it answers `PING`.
    ///
    /// # Panics
    /// When redis-server is missing or does not come up (the message says `scripts/test.sh`
    /// installs it).
    pub fn start() -> Self {
        let inner = ServerProcess::start(&Spec {
            binary: "redis-server",
            package: "redis-server",
            args: &|port| {
                vec![
                    "--port".into(),
                    port.to_string(),
                    "--bind".into(),
                    "127.0.0.1".into(),
                    "--save".into(),
                    String::new(),
                    "--appendonly".into(),
                    "no".into(),
                ]
            },
            probe: b"PING\r\n",
            expect: b"+PONG",
        });
        Self { inner }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr()
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }

    /// Kills it; later connections are refused.
    pub fn stop(&mut self) {
        self.inner.stop();
    }

    /// Freezes it (SIGSTOP): connections are accepted by the kernel but never answered.
    pub fn pause(&self) {
        self.inner.signal("-STOP");
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&self) {
        self.inner.signal("-CONT");
    }
}

pub(crate) mod process {
    //! Shared plumbing of the real-server harnesses (this one and [`crate::memcached`]):
    //! find the binary, start it on a free loopback port, wait until it answers a probe, signal and kill it by PID.

    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, SocketAddr, TcpStream};
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// How long a server may take to answer its first probe.
    const START_TIMEOUT: Duration = Duration::from_secs(10);
    /// Port collisions between our probe and the server's bind are retried.
    const START_ATTEMPTS: usize = 5;

    pub(crate) struct Spec<'a> {
        pub binary: &'static str,
        pub package: &'static str,
        pub args: &'a dyn Fn(u16) -> Vec<String>,
        pub probe: &'static [u8],
        pub expect: &'static [u8],
    }

    #[derive(Debug)]
    pub(crate) struct ServerProcess {
        child: Option<Child>,
        addr: SocketAddr,
        name: &'static str,
    }

    pub(crate) fn is_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
    }

    fn find(binary: &str) -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain([
                "/usr/sbin".into(),
                "/usr/bin".into(),
                "/usr/local/bin".into(),
            ])
            .map(|d| d.join(binary))
            .find(|p| p.is_file())
    }

    fn answers(addr: SocketAddr, probe: &[u8], expect: &[u8]) -> bool {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        if s.write_all(probe).is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(n) => buf[..n].starts_with(expect),
            Err(_) => false,
        }
    }

    impl ServerProcess {
        pub(crate) fn start(spec: &Spec<'_>) -> Self {
            let Some(bin) = find(spec.binary) else {
                panic!(
                    "{} is missing: these tests need a real {}; scripts/test.sh installs it \
                     (apt-get install {})",
                    spec.binary, spec.binary, spec.package
                );
            };
            let mut last = String::new();
            for _ in 0..START_ATTEMPTS {
                let addr = crate::free_addr();
                let mut child = Command::new(&bin)
                    .args((spec.args)(addr.port()))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
                let deadline = Instant::now() + START_TIMEOUT;
                loop {
                    if answers(addr, spec.probe, spec.expect) {
                        return Self {
                            child: Some(child),
                            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port())),
                            name: spec.binary,
                        };
                    }
                    if let Ok(Some(status)) = child.try_wait() {
                        let mut err = String::new();
                        if let Some(mut e) = child.stderr.take() {
                            let _ = e.read_to_string(&mut err);
                        }
                        last = format!("{} exited with {status}: {err}", spec.binary);
                        break;
                    }
                    if Instant::now() >= deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        last = format!("{} did not answer within {START_TIMEOUT:?}", spec.binary);
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            panic!("starting {} for the test failed: {last}", spec.binary);
        }

        pub(crate) fn addr(&self) -> SocketAddr {
            self.addr
        }

        pub(crate) fn signal(&self, sig: &str) {
            let Some(child) = &self.child else {
                panic!("signal {sig} to a stopped {}", self.name);
            };
            let pid = child.id().to_string();
            match Command::new("kill").args([sig, &pid]).status() {
                Ok(s) if s.success() => {}
                other => panic!("kill {sig} {pid}: {other:?}"),
            }
        }

        pub(crate) fn stop(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    impl Drop for ServerProcess {
        fn drop(&mut self) {
            self.stop();
        }
    }
}
