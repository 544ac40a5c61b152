//! The cache against a real dnsmasq on a loopback port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sekisho_discovery::{DnsCache, DnsConfig, DnsError};
use sekisho_test_support::dnsmasq::Dnsmasq;

/// How long an "eventually" condition may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(6);
const POLL: Duration = Duration::from_millis(20);
/// A served-from-memory answer must come back far below any lookup timeout.
const PROMPT: Duration = Duration::from_millis(100);

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn config(server: SocketAddr) -> DnsConfig {
    DnsConfig {
        resolvers: vec![server],
        min_ttl: Duration::from_secs(1),
        max_ttl: Duration::from_secs(60),
        timeout: Duration::from_secs(2),
        max_stale: Duration::from_secs(60),
    }
}

/// How many queries of `qtype` for `name` dnsmasq logged.
fn queries(dns: &Dnsmasq, qtype: &str, name: &str) -> usize {
    let needle = format!("query[{qtype}] {name} ");
    dns.log().lines().filter(|l| l.contains(&needle)).count()
}

/// Resolves `host` until it returns `want`, checking every answer is prompt.
async fn until_answer(cache: &DnsCache, host: &str, want: IpAddr) -> Duration {
    let start = Instant::now();
    loop {
        let t = Instant::now();
        let got = cache.resolve(host).await.expect("resolves");
        assert!(
            t.elapsed() < PROMPT,
            "resolve of a known name waited {:?}",
            t.elapsed()
        );
        if got[..] == [want] {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < DEADLINE,
            "still {got:?}, want {want} after {DEADLINE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test]
async fn resolves_and_second_call_is_a_cache_hit() {
    let dns = Dnsmasq::start(&[("api.test", ip(2))], 60);
    let cache = DnsCache::new(config(dns.addr())).expect("cache");

    let first = cache.resolve("api.test").await.expect("resolves");
    assert_eq!(&first[..], &[ip(2)]);
    let second = cache.resolve("API.test").await.expect("resolves");
    assert_eq!(first, second);

    let stats = cache.stats();
    assert_eq!(
        (stats.misses, stats.hits, stats.lookups),
        (1, 1, 1),
        "{stats:?}"
    );
    assert_eq!(stats.entries, 1);
    assert_eq!(
        queries(&dns, "A", "api.test"),
        1,
        "dnsmasq log:\n{}",
        dns.log()
    );

    let entries = cache.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].host, "api.test");
    assert_eq!(entries[0].ttl, Duration::from_secs(60));
    assert!(entries[0].ttl_left_ms.is_some_and(|ms| ms > 50_000));
    assert_eq!(entries[0].last_error, None);
}

#[tokio::test]
async fn short_ttl_change_is_seen_through_background_refresh() {
    let dns = Dnsmasq::start(&[("svc.test", ip(2))], 1);
    let cache = DnsCache::new(config(dns.addr())).expect("cache");
    assert_eq!(
        &cache.resolve("svc.test").await.expect("resolves")[..],
        &[ip(2)]
    );

    dns.set_hosts(&[("svc.test", ip(3))]);
    let took = until_answer(&cache, "svc.test", ip(3)).await;
    assert!(
        took < Duration::from_secs(3),
        "took {took:?} with a 1 s TTL"
    );

    let stats = cache.stats();
    assert_eq!(stats.misses, 1, "only the first call waited: {stats:?}");
    assert!(stats.refreshes >= 1, "{stats:?}");
}

#[tokio::test]
async fn max_ttl_caps_a_long_server_ttl() {
    let dns = Dnsmasq::start(&[("long.test", ip(2))], 3600);
    let cache = DnsCache::new(DnsConfig {
        min_ttl: Duration::ZERO,
        max_ttl: Duration::from_secs(1),
        ..config(dns.addr())
    })
    .expect("cache");
    assert_eq!(
        &cache.resolve("long.test").await.expect("resolves")[..],
        &[ip(2)]
    );
    assert_eq!(cache.entries()[0].ttl, Duration::from_secs(1));

    dns.set_hosts(&[("long.test", ip(3))]);
    until_answer(&cache, "long.test", ip(3)).await;
}

#[tokio::test]
async fn min_ttl_raises_a_short_server_ttl() {
    let dns = Dnsmasq::start(&[("short.test", ip(2))], 1);
    let cache = DnsCache::new(DnsConfig {
        min_ttl: Duration::from_secs(30),
        ..config(dns.addr())
    })
    .expect("cache");
    cache.resolve("short.test").await.expect("resolves");
    assert_eq!(cache.entries()[0].ttl, Duration::from_secs(30));
}

#[tokio::test]
async fn stopped_server_keeps_serving_the_last_answer() {
    let mut dns = Dnsmasq::start(&[("db.test", ip(2))], 1);
    let cache = DnsCache::new(DnsConfig {
        max_ttl: Duration::from_secs(1),
        ..config(dns.addr())
    })
    .expect("cache");
    assert_eq!(
        &cache.resolve("db.test").await.expect("resolves")[..],
        &[ip(2)]
    );
    dns.stop();

    let start = Instant::now();
    loop {
        let t = Instant::now();
        let got = cache.resolve("db.test").await.expect("stale answer served");
        assert!(
            t.elapsed() < PROMPT,
            "stale resolve waited {:?}",
            t.elapsed()
        );
        assert_eq!(&got[..], &[ip(2)]);
        let stats = cache.stats();
        if stats.stale_served > 0 && stats.lookup_failures > 0 {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "never served stale: {stats:?}");
        tokio::time::sleep(POLL).await;
    }
    let entry = &cache.entries()[0];
    assert!(
        entry
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("db.test")),
        "{entry:?}"
    );
    assert!(entry.failures >= 1);
    assert!(entry.ttl_left_ms.is_some_and(|ms| ms <= 0), "{entry:?}");
}

#[tokio::test]
async fn name_removed_from_dns_keeps_serving_the_last_answer() {
    let dns = Dnsmasq::start(&[("gone.test", ip(2)), ("other.test", ip(4))], 1);
    let cache = DnsCache::new(DnsConfig {
        max_ttl: Duration::from_secs(1),
        ..config(dns.addr())
    })
    .expect("cache");
    cache.resolve("gone.test").await.expect("resolves");

    // NXDOMAIN on refresh: a flapping DNS must not take the cluster down.
    dns.set_hosts(&[("other.test", ip(4))]);
    let start = Instant::now();
    loop {
        let got = cache.resolve("gone.test").await.expect("last answer kept");
        assert_eq!(&got[..], &[ip(2)]);
        let entry = &cache.entries()[0];
        if entry
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("not found"))
        {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "NXDOMAIN never recorded: {entry:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    assert!(cache.stats().lookup_failures >= 1);

    // And once the name is back, the new answer replaces the stale one.
    dns.set_hosts(&[("gone.test", ip(3))]);
    until_answer(&cache, "gone.test", ip(3)).await;
    assert_eq!(cache.entries()[0].last_error, None);
}

#[tokio::test]
async fn unknown_name_is_an_error_naming_the_host_and_cached_briefly() {
    let dns = Dnsmasq::start(&[("api.test", ip(2))], 60);
    let cache = DnsCache::new(config(dns.addr())).expect("cache");

    let err = cache
        .resolve("missing.test")
        .await
        .expect_err("no such name");
    assert!(matches!(err, DnsError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.test"), "{err}");
    assert_eq!(err.host(), Some("missing.test"));
    assert!(!err.is_transient());

    // The negative answer is cached: no lookup storm for a missing name.
    let again = cache
        .resolve("missing.test")
        .await
        .expect_err("still missing");
    assert_eq!(again, err);
    let stats = cache.stats();
    assert_eq!((stats.lookups, stats.negative_hits), (1, 1), "{stats:?}");
}

#[tokio::test]
async fn silent_server_times_out_within_the_bound() {
    // A UDP and a TCP socket on one port that never answer (TCP connects land in the backlog).
    let (udp, _tcp) = loop {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if let Ok(tcp) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            break (udp, tcp);
        }
    };
    let timeout = Duration::from_millis(300);
    let cache = DnsCache::new(DnsConfig {
        timeout,
        ..config(udp.local_addr().expect("addr"))
    })
    .expect("cache");

    let start = Instant::now();
    let err = cache
        .resolve("slow.test")
        .await
        .expect_err("nobody answers");
    let took = start.elapsed();
    assert!(matches!(err, DnsError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("slow.test"), "{err}");
    assert!(
        took >= timeout - Duration::from_millis(50),
        "gave up early: {took:?}"
    );
    // Generous: 2 shared cores; the point is the bound, not the default 5 s.
    assert!(took < timeout + Duration::from_millis(700), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_lookups_share_one_lookup() {
    let dns = Dnsmasq::start(&[("busy.test", ip(2))], 60);
    let cache = DnsCache::new(config(dns.addr())).expect("cache");

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let cache = Arc::clone(&cache);
        tasks.spawn(async move { cache.resolve("busy.test").await });
    }
    while let Some(res) = tasks.join_next().await {
        assert_eq!(&res.expect("task").expect("resolves")[..], &[ip(2)]);
    }
    let stats = cache.stats();
    assert_eq!(stats.lookups, 1, "{stats:?}");
    assert_eq!(stats.hits + stats.misses, 32, "{stats:?}");
    assert_eq!(
        queries(&dns, "A", "busy.test"),
        1,
        "dnsmasq log:\n{}",
        dns.log()
    );
}

#[tokio::test]
async fn refresh_soon_re_resolves_now_at_most_once_a_second() {
    let dns = Dnsmasq::start(&[("pod.test", ip(2))], 3600);
    let cache = DnsCache::new(config(dns.addr())).expect("cache");
    cache.resolve("pod.test").await.expect("resolves");

    dns.set_hosts(&[("pod.test", ip(3))]);
    // Ask on every poll, as a proxy does on each connect failure: the first
    // forced refresh may race dnsmasq's re-read of its hosts file.
    let start = Instant::now();
    loop {
        cache.refresh_soon("pod.test");
        cache.refresh_soon("pod.test");
        if cache.resolve("pod.test").await.expect("resolves")[..] == [ip(3)] {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "refresh_soon never picked up the change"
        );
        tokio::time::sleep(POLL).await;
    }
    // Far sooner than the 48 s refresh-ahead of the clamped 60 s TTL.
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
    // Rate limit: one forced lookup per second, however often it was asked.
    let refreshes = cache.stats().refreshes;
    let allowed = 1 + start.elapsed().as_secs();
    assert!(
        refreshes <= allowed,
        "{refreshes} refreshes in {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn ip_literals_pass_through_without_the_cache() {
    // Nothing listens here; literals must never reach it.
    let cache = DnsCache::new(config(SocketAddr::from(([127, 0, 0, 1], 9)))).expect("cache");
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert_eq!(&cache.resolve("127.0.0.9").await.expect("v4")[..], &[ip(9)]);
    assert_eq!(&cache.resolve("::1").await.expect("v6")[..], &[v6]);
    assert_eq!(
        &cache.resolve("[::1]").await.expect("bracketed v6")[..],
        &[v6]
    );
    cache.refresh_soon("127.0.0.9");
    let stats = cache.stats();
    assert_eq!(
        (stats.lookups, stats.entries, stats.misses),
        (0, 0, 0),
        "{stats:?}"
    );
}
