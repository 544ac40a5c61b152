//! Hot reload: under steady load, 50 reloads alternating two configs and an invalid config
//! in the middle lose no request; listeners are added, removed and re-certified without a
//! restart; the file watcher and `POST /reload` apply changes and report errors.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sekisho_gateway::{Gateway, ReloadSource};
use sekisho_test_support::client::{tls_get, HttpClient};
use sekisho_test_support::tls::TestCa;
use sekisho_test_support::upstream::Upstream;
use sekisho_test_support::{eventually, free_addr};

fn config(version: &str, up: std::net::SocketAddr, listen: &str, extra: &str) -> String {
    format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
access_log: {{ path: "off" }}
listeners:
  - {{ name: public, listen: "{listen}" }}
{extra}
routes:
  - name: api
    match: {{ path_prefix: / }}
    cluster: svc
    response_headers: {{ set: {{ x-config: "{version}" }} }}
clusters: [{{ name: svc, endpoints: ["{up}"] }}]
"#
    )
}

async fn start_from_file(
    yaml: &str,
    watch: Option<Duration>,
) -> (Gateway, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sekisho.yaml");
    std::fs::write(&path, yaml).unwrap();
    let config = sekisho_config::load_file(&path).unwrap();
    let gw = Gateway::start_with(
        config,
        ReloadSource {
            path: Some(path.clone()),
            watch_interval: watch,
        },
    )
    .await
    .unwrap();
    (gw, dir, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_reloads_under_load_fail_no_request() {
    let up = Upstream::named("svc").await;
    let listen = free_addr().to_string();
    let (gw, _dir, path) = start_from_file(&config("a", up.addr(), &listen, ""), None).await;
    let addr = gw.listener_addr("public").unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let seen_b = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failed, seen_b) = (stop.clone(), ok.clone(), failed.clone(), seen_b.clone());
        clients.push(tokio::spawn(async move {
            let c = HttpClient::http1();
            // Bounded: stops with the flag, and after 20,000 requests at most.
            for _ in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let req = crate::common::get(&format!("http://{addr}/x"), &[]);
                match c.try_send(req).await {
                    Ok(r) if r.status == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        if r.header("x-config") == "b" {
                            seen_b.store(true, Ordering::Relaxed);
                        }
                    }
                    Ok(r) => {
                        eprintln!("unexpected status {}: {}", r.status, r.text());
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("request failed: {e}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for i in 0..50 {
        let version = if i % 2 == 0 { "b" } else { "a" };
        std::fs::write(&path, config(version, up.addr(), &listen, "")).unwrap();
        gw.reload_file()
            .await
            .unwrap_or_else(|e| panic!("reload {i}: {e}"));
        if i == 25 {
            // An invalid config in the middle: rejected, the running one keeps serving.
            std::fs::write(&path, "listeners: [{ name: public, listen: nowhere }]\n").unwrap();
            let err = gw
                .reload_file()
                .await
                .expect_err("invalid config must be rejected");
            assert!(err.to_string().contains("line 1"), "{err}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!(
        "reloads under load: {ok} ok, {failed} failed, upstream connections {}",
        up.connections()
    );
    assert_eq!(failed, 0, "0 failed requests across 50 reloads ({ok} ok)");
    assert!(ok > 200, "load was running ({ok} requests)");
    assert!(
        seen_b.load(Ordering::Relaxed),
        "the reloaded config took effect"
    );
    let status = gw.reload_status();
    assert_eq!((status.reloads, status.failures), (50, 1));
    // The cluster's definition never changed: its pool was kept, not rebuilt 50 times.
    assert!(
        up.connections() <= 8,
        "pool kept across reloads: {} upstream connections",
        up.connections()
    );
    gw.shutdown(Duration::from_secs(5), Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_are_added_removed_and_recertified_by_reload() {
    let up = Upstream::named("svc").await;
    let ca = TestCa::new();
    let a = ca.leaf("a", &["a.test"]);
    let b = ca.leaf("b", &["b.test"]);
    let listen = free_addr().to_string();
    let tls_listen = free_addr();
    let extra_listen = free_addr();
    let with_tls = |leaf: &sekisho_test_support::tls::Leaf, extra: bool| {
        let mut s = format!(
            "  - {{ name: secure, listen: \"{tls_listen}\", tls: {{ certs: [{{ cert: \"{}\", key: \"{}\" }}] }} }}\n",
            leaf.cert.display(),
            leaf.key.display()
        );
        if extra {
            s.push_str(&format!(
                "  - {{ name: extra, listen: \"{extra_listen}\" }}\n"
            ));
        }
        s
    };
    let (gw, _dir, path) =
        start_from_file(&config("a", up.addr(), &listen, &with_tls(&a, false)), None).await;
    let client = ca.client_config(&[b"http/1.1"]);
    assert!(tls_get(tls_listen, client.clone(), "a.test", "/")
        .await
        .is_ok());
    assert!(
        tls_get(tls_listen, client.clone(), "b.test", "/")
            .await
            .is_err(),
        "serves cert a only"
    );

    // New certificate on the same listener, and a new listener.
    std::fs::write(&path, config("a", up.addr(), &listen, &with_tls(&b, true))).unwrap();
    gw.reload_file().await.unwrap();
    assert!(
        tls_get(tls_listen, client.clone(), "b.test", "/")
            .await
            .is_ok(),
        "new certificate served"
    );
    let c = HttpClient::http1();
    assert_eq!(
        c.get(extra_listen, "/").await.status,
        200,
        "added listener serves"
    );

    // The extra listener goes away.
    std::fs::write(&path, config("a", up.addr(), &listen, &with_tls(&b, false))).unwrap();
    gw.reload_file().await.unwrap();
    let closed = eventually(Duration::from_secs(5), || async {
        tokio::net::TcpStream::connect(extra_listen).await.is_err()
    })
    .await;
    assert!(closed, "removed listener stops accepting");
    assert_eq!(gw.listener_addr("extra"), None);
    // A listener whose port is taken rejects the whole reload, and nothing changes.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = squatter.local_addr().unwrap().to_string();
    std::fs::write(&path, config("z", up.addr(), &taken, &with_tls(&b, false))).unwrap();
    let err = gw.reload_file().await.expect_err("port in use");
    assert!(err.to_string().contains("cannot bind"), "{err}");
    let r = c.get(gw.listener_addr("public").unwrap(), "/").await;
    assert_eq!(r.header("x-config"), "a", "old config still serving");
    gw.shutdown(Duration::from_secs(5), Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_watch_and_admin_reload_report_errors() {
    let up = Upstream::named("svc").await;
    let listen = free_addr().to_string();
    let (gw, _dir, path) = start_from_file(
        &config("a", up.addr(), &listen, ""),
        Some(Duration::from_millis(200)),
    )
    .await;
    let addr = gw.listener_addr("public").unwrap();
    let admin = gw.admin_addr().unwrap();
    let c = HttpClient::http1();

    // Editing the file is enough.
    std::fs::write(&path, config("watched", up.addr(), &listen, "")).unwrap();
    let applied = eventually(Duration::from_secs(10), || async {
        c.get(addr, "/").await.header("x-config") == "watched"
    })
    .await;
    assert!(applied, "file change applied by the watcher");

    // A broken file: the watcher rejects it, the old config keeps serving, and /config and
    // the metrics say why.
    std::fs::write(
        &path,
        config("broken", up.addr(), &listen, "").replace("timeout_unused", "") + "bogus_key: 1\n",
    )
    .unwrap();
    let rejected = eventually(Duration::from_secs(10), || async {
        c.get(admin, "/config").await.json()["reload"]["failures"].as_u64() == Some(1)
    })
    .await;
    assert!(rejected, "watcher counted the rejected file");
    let status = c.get(admin, "/config").await.json();
    let last = status["reload"]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        last.contains("bogus_key") && last.contains("line"),
        "{status}"
    );
    assert_eq!(c.get(addr, "/").await.header("x-config"), "watched");
    let metrics = c.get(admin, "/metrics").await.text();
    assert!(
        metrics.contains("sekisho_config_reloads_total{result=\"failure\"} 1"),
        "{metrics}"
    );

    // POST /reload: 422 with the errors while the file is broken, 200 once fixed.
    let post = |body: &'static str| {
        crate::common::request("POST", &format!("http://{admin}/reload"), &[], body)
    };
    let r = c.send(post("")).await;
    assert_eq!(r.status, 422);
    assert!(r.json()["errors"][0]
        .as_str()
        .unwrap_or_default()
        .contains("bogus_key"));
    std::fs::write(&path, config("posted", up.addr(), &listen, "")).unwrap();
    let r = c.send(post("")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(c.get(addr, "/").await.header("x-config"), "posted");
    gw.shutdown(Duration::from_secs(5), Duration::ZERO).await;
}

/// A certificate rewritten in place (e.g. by cert-manager) is served without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_files_are_watched() {
    let up = Upstream::named("svc").await;
    let ca = TestCa::new();
    let a = ca.leaf("a", &["a.test"]);
    let b = ca.leaf("b", &["b.test"]);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.pem"), dir.path().join("tls.key"));
    std::fs::write(&cert, &a.cert_pem).unwrap();
    std::fs::write(&key, &a.key_pem).unwrap();
    let tls_listen = free_addr();
    let extra = format!(
        "  - {{ name: secure, listen: \"{tls_listen}\", tls: {{ certs: [{{ cert: \"{}\", key: \"{}\" }}] }} }}\n",
        cert.display(),
        key.display()
    );
    let listen = free_addr().to_string();
    let (gw, _cfg_dir, _path) = start_from_file(
        &config("a", up.addr(), &listen, &extra),
        Some(Duration::from_millis(200)),
    )
    .await;
    let client = ca.client_config(&[b"http/1.1"]);
    assert!(tls_get(tls_listen, client.clone(), "a.test", "/")
        .await
        .is_ok());
    std::fs::write(&key, &b.key_pem).unwrap();
    std::fs::write(&cert, &b.cert_pem).unwrap();
    let renewed = eventually(Duration::from_secs(10), || async {
        tls_get(tls_listen, client.clone(), "b.test", "/")
            .await
            .is_ok()
    })
    .await;
    assert!(renewed, "the rewritten certificate is served");
    gw.shutdown(Duration::from_secs(5), Duration::ZERO).await;
}
