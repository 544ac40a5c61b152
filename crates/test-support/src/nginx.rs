//! A real nginx, started on a loopback port with a config the test writes.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running nginx (master_process off, one worker); killed by PID on drop.
pub struct Nginx {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// Where the test script installs nginx (Debian's nginx-light).
pub const NGINX: &str = "/usr/sbin/nginx";

impl Nginx {
    /// Starts nginx with `server_body` inside a `server { listen ...; }` block.
    pub async fn start(server_body: &str) -> Nginx {
        Self::start_with("", server_body).await
    }

    /// Starts nginx serving HTTPS with HTTP/2 and HTTP/1.1 (ALPN) with this certificate.
    pub async fn start_tls(
        cert: &std::path::Path,
        key: &std::path::Path,
        server_body: &str,
    ) -> Nginx {
        let body = format!(
            "    ssl_certificate {};\n    ssl_certificate_key {};\n{server_body}",
            cert.display(),
            key.display()
        );
        Self::start_with(" ssl http2", &body).await
    }

    async fn start_with(listen_options: &str, server_body: &str) -> Nginx {
        assert!(
            std::path::Path::new(NGINX).exists(),
            "{NGINX} is missing: run the README's test command (scripts/test.sh installs nginx-light)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = crate::free_addr();
        let d = dir.path().display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  default_type text/plain;\n\
             \x20 server {{\n    listen {addr}{listen_options};\n{server_body}\n  }}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("write nginx.conf");
        let child = Command::new(NGINX)
            .arg("-c")
            .arg(&path)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nginx");
        let ready = crate::eventually(Duration::from_secs(10), || async {
            tokio::net::TcpStream::connect(addr).await.is_ok()
        })
        .await;
        assert!(ready, "nginx did not start listening on {addr}");
        Nginx {
            child,
            addr,
            _dir: dir,
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
