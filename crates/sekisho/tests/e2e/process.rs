//! The `sekisho serve` process: SIGTERM drains (readiness off first, every accepted request
//! completes, exit 0 within the drain timeout) and SIGHUP reloads.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sekisho_test_support::client::HttpClient;
use sekisho_test_support::upstream::{Reply, Upstream};
use sekisho_test_support::{eventually, free_addr};

/// A `sekisho serve` child process on a config file in a temp dir; killed on drop.
pub(crate) struct Serve {
    child: Child,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl Serve {
    pub(crate) fn start(yaml: &str, args: &[&str]) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sekisho.yaml");
        std::fs::write(&path, yaml).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sekisho"))
            .arg("serve")
            .arg("-c")
            .arg(&path)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Serve {
            child,
            _dir: dir,
            path,
        }
    }

    pub(crate) fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    }

    fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn yaml(
    listen: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    up: std::net::SocketAddr,
    tag: &str,
) -> String {
    format!(
        r#"
admin: {{ listen: "{admin}" }}
access_log: {{ path: "off" }}
listeners: [{{ name: public, listen: "{listen}" }}]
routes:
  - name: all
    match: {{ path_prefix: / }}
    cluster: svc
    response_headers: {{ set: {{ x-tag: "{tag}" }} }}
clusters: [{{ name: svc, endpoints: ["{up}"] }}]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_every_accepted_request() {
    let up = Upstream::start("slow", |_| {
        Reply::text("done").delay(Duration::from_millis(800))
    })
    .await;
    let (listen, admin) = (free_addr(), free_addr());
    let mut serve = Serve::start(
        &yaml(listen, admin, up.addr(), "a"),
        &["--drain-timeout", "10s", "--drain-delay", "500ms"],
    );
    let c = HttpClient::http1();
    assert!(
        eventually(Duration::from_secs(10), || async {
            c.try_send(crate::common::get(&format!("http://{admin}/readyz"), &[]))
                .await
                .is_ok()
        })
        .await
    );

    let mut inflight = Vec::new();
    for _ in 0..10 {
        let url = format!("http://{listen}/work");
        inflight.push(tokio::spawn(async move {
            HttpClient::http1()
                .try_send(crate::common::get(&url, &[]))
                .await
        }));
    }
    // Let the requests reach the upstream, then ask the process to stop.
    assert!(eventually(Duration::from_secs(5), || async { up.count() == 10 }).await);
    serve.signal("TERM");
    // During the drain delay the process reports unready but still serves.
    let unready = eventually(Duration::from_millis(450), || async {
        matches!(c.try_send(crate::common::get(&format!("http://{admin}/readyz"), &[])).await, Ok(r) if r.status == 503)
    })
    .await;
    assert!(unready, "/readyz turns 503 when draining starts");
    for t in inflight {
        let r = t.await.unwrap().expect("in-flight request completed");
        assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "done"));
    }
    assert_eq!(
        serve.wait_exit(Duration::from_secs(10)),
        Some(0),
        "exit 0 within the drain timeout"
    );
    assert!(
        tokio::net::TcpStream::connect(listen).await.is_err(),
        "listener closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_keeps_serving_on_a_bad_file() {
    let up = Upstream::named("svc").await;
    let (listen, admin) = (free_addr(), free_addr());
    let serve = Serve::start(
        &yaml(listen, admin, up.addr(), "one"),
        &["--watch-interval", "0s"],
    );
    let c = HttpClient::http1();
    let tag = |c: HttpClient| async move {
        c.try_send(crate::common::get(&format!("http://{listen}/"), &[]))
            .await
            .map(|r| r.header("x-tag").to_string())
    };
    assert!(
        eventually(Duration::from_secs(10), || {
            let c = c.clone();
            async move { tag(c).await.is_ok_and(|t| t == "one") }
        })
        .await
    );
    std::fs::write(&serve.path, yaml(listen, admin, up.addr(), "two")).unwrap();
    serve.signal("HUP");
    assert!(
        eventually(Duration::from_secs(10), || {
            let c = c.clone();
            async move { tag(c).await.is_ok_and(|t| t == "two") }
        })
        .await
    );
    std::fs::write(&serve.path, "routes: [oops\n").unwrap();
    serve.signal("HUP");
    let counted = eventually(Duration::from_secs(10), || async {
        let m = c
            .try_send(crate::common::get(&format!("http://{admin}/metrics"), &[]))
            .await;
        m.is_ok_and(|m| {
            m.text()
                .contains("sekisho_config_reloads_total{result=\"failure\"} 1")
        })
    })
    .await;
    assert!(counted, "the bad file is counted as a failed reload");
    assert_eq!(
        tag(c.clone()).await.unwrap(),
        "two",
        "still serving the last good config"
    );
}

/// Binary upgrade under load: a new process takes the listening sockets, the old one
/// drains and exits, and no request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_handover_under_load_fails_no_request() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    let up = Upstream::start("svc", |_| Reply::text("ok").delay(Duration::from_millis(5))).await;
    let (listen, admin) = (free_addr(), free_addr());
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("upgrade.sock");
    let sock_arg = sock.to_str().unwrap().to_string();
    let mut old = Serve::start(
        &yaml(listen, admin, up.addr(), "old"),
        &["--upgrade-socket", &sock_arg],
    );
    let c = HttpClient::http1();
    assert!(
        eventually(Duration::from_secs(10), || async {
            c.try_send(crate::common::get(&format!("http://{listen}/"), &[]))
                .await
                .is_ok()
        })
        .await
    );

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        clients.push(tokio::spawn(async move {
            let c = HttpClient::http1();
            for _ in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match c
                    .try_send(crate::common::get(&format!("http://{listen}/"), &[]))
                    .await
                {
                    Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    other => {
                        eprintln!("failed: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The new process (a different config, to tell the two apart) takes over.
    let new = Serve::start(
        &yaml(listen, admin, up.addr(), "new"),
        &["--upgrade-socket", &sock_arg, "--take-over"],
    );
    assert_eq!(
        old.wait_exit(Duration::from_secs(20)),
        Some(0),
        "old process drained and exited"
    );
    let served_by_new = eventually(Duration::from_secs(10), || async {
        matches!(c.try_send(crate::common::get(&format!("http://{listen}/"), &[])).await, Ok(r) if r.header("x-tag") == "new")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in clients {
        t.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("binary handover under load: {ok} ok, {failed} failed");
    assert!(served_by_new, "the new process serves");
    assert_eq!(failed, 0, "0 failed requests across the handover ({ok} ok)");
    assert!(ok > 100);
    // The new process can itself be upgraded: it listens on the upgrade socket.
    assert!(sock.exists());
    drop(new);
}
