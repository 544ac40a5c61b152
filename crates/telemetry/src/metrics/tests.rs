//! Registry tests: the rendered text is parsed back line by line.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use super::*;

/// One parsed sample line.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses Prometheus text: checks every line is a valid HELP/TYPE/sample
/// line, that each family has one HELP and one TYPE before its samples, and
/// returns the samples and the TYPE of each family.
fn parse(text: &str) -> (Vec<Sample>, HashMap<String, String>) {
    assert!(text.is_empty() || text.ends_with('\n'));
    let mut samples = Vec::new();
    let mut types = HashMap::new();
    let mut helps = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert!(
                helps.insert(name.to_owned(), help.to_owned()).is_none(),
                "dup HELP {name}"
            );
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap();
            assert!(helps.contains_key(name), "TYPE before HELP for {name}");
            assert!(
                types.insert(name.to_owned(), ty.to_owned()).is_none(),
                "dup TYPE {name}"
            );
        } else {
            samples.push(parse_sample(line));
        }
    }
    for s in &samples {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suf| {
                s.name
                    .strip_suffix(suf)
                    .filter(|b| types.get(*b).map(String::as_str) == Some("histogram"))
            })
            .unwrap_or(&s.name);
        assert!(types.contains_key(base), "sample {} without TYPE", s.name);
    }
    (samples, types)
}

fn parse_sample(line: &str) -> Sample {
    let name_end = line.find(['{', ' ']).unwrap();
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let end;
        loop {
            let mut key = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            assert_eq!(chars.next().map(|x| x.1), Some('"'), "{line}");
            let mut val = String::new();
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => match chars.next().map(|x| x.1) {
                        Some('\\') => val.push('\\'),
                        Some('"') => val.push('"'),
                        Some('n') => val.push('\n'),
                        other => panic!("bad escape {other:?} in {line}"),
                    },
                    '"' => break,
                    '\n' => panic!("raw newline"),
                    c => val.push(c),
                }
            }
            labels.insert(key, val);
            match chars.next() {
                Some((_, ',')) => continue,
                Some((i, '}')) => {
                    end = i + 1;
                    break;
                }
                other => panic!("unexpected {other:?} in {line}"),
            }
        }
        rest = &r[end..];
    }
    let value = rest.strip_prefix(' ').unwrap();
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap(),
    };
    Sample {
        name,
        labels,
        value,
    }
}

fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = find(samples, name, labels);
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0].value
}

fn render(r: &Registry) -> String {
    let mut out = String::new();
    r.render(&mut out);
    out
}

#[test]
fn request_metrics_render_and_parse_back() {
    let r = Registry::new();
    let m = r.request_metrics("payments", "payment");
    m.record(200, Duration::from_micros(400), 10, 100);
    m.record(200, Duration::from_millis(2), 0, 50);
    m.record(503, Duration::from_millis(30), 0, 0);
    m.record(422, Duration::from_secs(20), 5, 0);
    let text = render(&r);
    let (s, types) = parse(&text);

    assert_eq!(types["sekisho_requests_total"], "counter");
    assert_eq!(types["sekisho_request_duration_seconds"], "histogram");
    let l = [("route", "payments"), ("cluster", "payment")];
    let code = |c| [l[0], l[1], ("code", c)];
    assert_eq!(value(&s, "sekisho_requests_total", &code("200")), 2.0);
    assert_eq!(value(&s, "sekisho_requests_total", &code("503")), 1.0);
    assert_eq!(value(&s, "sekisho_requests_total", &code("422")), 1.0);
    assert!(find(&s, "sekisho_requests_total", &code("404")).is_empty());
    assert_eq!(value(&s, "sekisho_request_bytes_total", &l), 15.0);
    assert_eq!(value(&s, "sekisho_response_bytes_total", &l), 150.0);

    // Buckets: cumulative, ascending le, ending with +Inf == _count.
    let buckets = find(&s, "sekisho_request_duration_seconds_bucket", &l);
    assert_eq!(buckets.len(), LATENCY_BUCKETS.len() + 1);
    let les: Vec<f64> = buckets.iter().map(|b| le(b)).collect();
    assert!(les.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(les.last(), Some(&f64::INFINITY));
    let counts: Vec<f64> = buckets.iter().map(|b| b.value).collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]));
    let at = |x: f64| buckets[les.iter().position(|v| *v == x).unwrap()].value;
    assert_eq!(at(0.0005), 1.0);
    assert_eq!(at(0.0025), 2.0);
    assert_eq!(at(0.05), 3.0);
    assert_eq!(at(10.0), 3.0);
    assert_eq!(at(f64::INFINITY), 4.0);
    assert_eq!(value(&s, "sekisho_request_duration_seconds_count", &l), 4.0);
    let sum = value(&s, "sekisho_request_duration_seconds_sum", &l);
    assert!((sum - 20.0324).abs() < 1e-9, "{sum}");
}

fn le(s: &Sample) -> f64 {
    match s.labels["le"].as_str() {
        "+Inf" => f64::INFINITY,
        v => v.parse().unwrap(),
    }
}

#[test]
fn same_labels_same_handle() {
    let r = Registry::new();
    let a = r.request_metrics("a", "c");
    assert!(Arc::ptr_eq(&a, &r.request_metrics("a", "c")));
    assert!(!Arc::ptr_eq(&a, &r.request_metrics("a", "d")));
    let c = r.counter("sekisho_x_total", "X.", &[("k", "v")]).unwrap();
    assert!(Arc::ptr_eq(
        &c,
        &r.counter("sekisho_x_total", "X.", &[("k", "v")]).unwrap()
    ));
    let h = r.histogram("sekisho_h", "H.", &[1.0], &[]).unwrap();
    assert!(Arc::ptr_eq(
        &h,
        &r.histogram("sekisho_h", "H.", &[1.0], &[]).unwrap()
    ));
}

#[test]
fn prune_drops_only_unused_handles() {
    let r = Registry::new();
    let kept = r.request_metrics("kept", "c");
    drop(r.request_metrics("gone", "c"));
    assert_eq!(r.prune_unused_request_metrics(), 1);
    kept.record(200, Duration::ZERO, 0, 0);
    let text = render(&r);
    assert!(text.contains("route=\"kept\""));
    assert!(!text.contains("route=\"gone\""));
}

#[test]
fn label_values_are_escaped() {
    let r = Registry::new();
    let nasty = "a\"b\\c\nd";
    r.request_metrics(nasty, "c")
        .record(200, Duration::ZERO, 0, 0);
    r.gauge("sekisho_g", "Help with \\ and\nnewline.", &[("v", nasty)])
        .unwrap()
        .set(-3);
    let text = render(&r);
    assert!(text.contains(r#"route="a\"b\\c\nd""#), "{text}");
    assert!(
        text.contains("# HELP sekisho_g Help with \\\\ and\\nnewline.\n"),
        "{text}"
    );
    let (s, _) = parse(&text);
    assert_eq!(value(&s, "sekisho_g", &[("v", nasty)]), -3.0);
    assert_eq!(
        value(&s, "sekisho_requests_total", &[("route", nasty)]),
        1.0
    );
}

#[test]
fn family_registration_errors() {
    let r = Registry::new();
    r.counter("sekisho_a_total", "", &[("x", "1")]).unwrap();
    assert_eq!(
        r.gauge("sekisho_a_total", "", &[("x", "1")]).unwrap_err(),
        MetricsError::KindMismatch("sekisho_a_total".into())
    );
    assert_eq!(
        r.counter("sekisho_a_total", "", &[("y", "1")]).unwrap_err(),
        MetricsError::LabelNamesMismatch("sekisho_a_total".into())
    );
    assert!(matches!(
        r.counter("bad-name", "", &[]),
        Err(MetricsError::InvalidName(_))
    ));
    assert!(matches!(
        r.counter("sekisho_b_total", "", &[("bad-label", "1")]),
        Err(MetricsError::InvalidLabelName { .. })
    ));
    assert!(matches!(
        r.histogram("sekisho_h", "", &[1.0], &[("le", "1")]),
        Err(MetricsError::InvalidLabelName { .. })
    ));
    r.histogram("sekisho_h", "", &[1.0], &[]).unwrap();
    assert_eq!(
        r.histogram("sekisho_h", "", &[2.0], &[]).unwrap_err(),
        MetricsError::BucketsMismatch("sekisho_h".into())
    );
    assert!(matches!(
        r.counter("sekisho_requests_total", "", &[]),
        Err(MetricsError::KindMismatch(_))
    ));
}

#[test]
fn collectors_share_families_without_duplicate_headers() {
    let r = Registry::new();
    r.gauge(
        "sekisho_pool_connections",
        "Pooled connections.",
        &[("cluster", "static")],
    )
    .unwrap()
    .set(2);
    for cluster in ["a", "b"] {
        r.register_collector(Arc::new(move |w: &mut MetricWriter| {
            w.gauge(
                "sekisho_pool_connections",
                "Pooled connections.",
                &[("cluster", cluster)],
                5.0,
            );
            w.counter(
                "sekisho_dns_lookups_total",
                "DNS lookups.",
                &[("cluster", cluster)],
                7,
            );
        }));
    }
    let text = render(&r);
    let (s, types) = parse(&text); // asserts no duplicate HELP/TYPE
    assert_eq!(types["sekisho_pool_connections"], "gauge");
    assert_eq!(find(&s, "sekisho_pool_connections", &[]).len(), 3);
    assert_eq!(
        value(&s, "sekisho_dns_lookups_total", &[("cluster", "b")]),
        7.0
    );
    // A family's samples are contiguous.
    let names: Vec<&str> = s.iter().map(|x| x.name.as_str()).collect();
    let mut seen = Vec::new();
    for n in names {
        if seen.last() != Some(&n) {
            assert!(!seen.contains(&n), "{n} not contiguous");
            seen.push(n);
        }
    }
}

#[test]
fn concurrent_recording_is_exact() {
    let r = Arc::new(Registry::new());
    let threads = 8;
    let per_thread = 20_000u64;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let r = Arc::clone(&r);
            std::thread::spawn(move || {
                // Each thread resolves its own handle: they must be the same.
                let m = r.request_metrics("r", "c");
                let g = r.gauge("sekisho_inflight", "In flight.", &[]).unwrap();
                for i in 0..per_thread {
                    g.inc();
                    let status = [200, 404, 418, 503][(i as usize + t) % 4];
                    m.record(status, Duration::from_micros(i % 3000), 1, 2);
                    g.dec();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let total = threads as u64 * per_thread;
    let (s, _) = parse(&render(&r));
    let per_code = (total / 4) as f64;
    for code in ["200", "404", "418", "503"] {
        assert_eq!(
            value(&s, "sekisho_requests_total", &[("code", code)]),
            per_code
        );
    }
    assert_eq!(
        value(&s, "sekisho_request_duration_seconds_count", &[]),
        total as f64
    );
    assert_eq!(value(&s, "sekisho_request_bytes_total", &[]), total as f64);
    assert_eq!(
        value(&s, "sekisho_response_bytes_total", &[]),
        2.0 * total as f64
    );
    assert_eq!(value(&s, "sekisho_inflight", &[]), 0.0);
    // Sum of i % 3000 microseconds, exact in f64 at this size.
    let per: u64 = (0..per_thread).map(|i| i % 3000).sum();
    let sum = value(&s, "sekisho_request_duration_seconds_sum", &[]);
    assert!(
        (sum - (per * threads as u64) as f64 / 1e6).abs() < 1e-6,
        "{sum}"
    );
}
