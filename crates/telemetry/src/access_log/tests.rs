//! Sink tests: files, flushing, drops.

use std::io::{self, Write};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::entry::tests::sample;
use super::*;

/// A `Write` into shared memory, optionally blocking on its first write
/// until the test opens the gate.
struct Shared {
    out: Arc<Mutex<Vec<u8>>>,
    gate: Option<mpsc::Receiver<()>>,
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(gate) = self.gate.take() {
            let _ = gate.recv();
        }
        self.out.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn lines(out: &Mutex<Vec<u8>>) -> Vec<serde_json::Value> {
    let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn file_target_appends_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    std::fs::write(&path, "existing\n").unwrap();
    let target = AccessLogTarget::File(path.clone());
    let log = AccessLog::open(&target, AccessLogOptions::default()).unwrap();
    let mut e = sample();
    for status in [200, 404, 503] {
        e.status = status;
        log.log(&e);
    }
    log.flush().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut it = text.lines();
    assert_eq!(it.next(), Some("existing"));
    let statuses: Vec<u64> = it
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["status"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(statuses, vec![200, 404, 503]);
    log.close();
}

#[test]
fn open_error_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("access.log");
    let err = AccessLog::open(
        &AccessLogTarget::File(path.clone()),
        AccessLogOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(&err, AccessLogError::Open { path: p, .. } if *p == path));
    assert!(err.to_string().contains("missing-dir"));
}

#[test]
fn lines_are_flushed_by_the_interval_and_on_close() {
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = Shared {
        out: Arc::clone(&out),
        gate: None,
    };
    let opts = AccessLogOptions {
        flush_interval: Duration::from_millis(20),
        ..AccessLogOptions::default()
    };
    let log = AccessLog::to_writer(Box::new(sink), opts).unwrap();
    log.log(&sample());
    // No flush call: the interval must push the buffered line out.
    let deadline = Instant::now() + Duration::from_secs(5);
    while lines(&out).is_empty() {
        assert!(Instant::now() < deadline, "line never flushed");
        std::thread::sleep(Duration::from_millis(5));
    }
    log.log(&sample());
    log.close();
    assert_eq!(lines(&out).len(), 2);
}

#[test]
fn full_queue_drops_and_counts_instead_of_blocking() {
    let out = Arc::new(Mutex::new(Vec::new()));
    let (open_gate, gate) = mpsc::channel();
    let sink = Shared {
        out: Arc::clone(&out),
        gate: Some(gate),
    };
    let dropped = Arc::new(Counter::new());
    let opts = AccessLogOptions {
        queue_lines: 1,
        buffer_bytes: 0, // every line reaches the (blocked) sink at once
        dropped: Some(Arc::clone(&dropped)),
        ..AccessLogOptions::default()
    };
    let log = AccessLog::to_writer(Box::new(sink), opts).unwrap();
    let start = Instant::now();
    for _ in 0..10 {
        log.log(&sample());
    }
    assert!(start.elapsed() < Duration::from_secs(1), "log() blocked");
    // At most one line in the blocked write and one in the queue.
    assert!(log.dropped() >= 8, "dropped {}", log.dropped());
    assert_eq!(dropped.get(), log.dropped());
    open_gate.send(()).unwrap();
    log.flush().unwrap();
    assert_eq!(lines(&out).len() as u64 + log.dropped(), 10);
}

#[test]
fn many_threads_lose_nothing_with_room_in_the_queue() {
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = Shared {
        out: Arc::clone(&out),
        gate: None,
    };
    let opts = AccessLogOptions {
        queue_lines: 4096,
        ..AccessLogOptions::default()
    };
    let log = Arc::new(AccessLog::to_writer(Box::new(sink), opts).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let id = format!("thread-{t}");
                let mut e = sample();
                e.request_id = &id;
                for i in 0..500 {
                    e.size = i;
                    log.log(&e);
                    if i % 100 == 0 {
                        // Let the writer catch up so the queue never fills.
                        log.flush().unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    log.flush().unwrap();
    let all = lines(&out);
    assert_eq!(all.len() as u64 + log.dropped(), 2000);
    assert_eq!(log.dropped(), 0);
}

#[test]
fn off_writes_nothing() {
    let log = AccessLog::open(&AccessLogTarget::Off, AccessLogOptions::default()).unwrap();
    assert!(!log.is_enabled());
    log.log(&sample());
    log.flush().unwrap();
    assert_eq!(log.dropped(), 0);
}

#[test]
fn log_with_writes_a_caller_formatted_line() {
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = Shared {
        out: out.clone(),
        gate: None,
    };
    let log = AccessLog::to_writer(Box::new(sink), AccessLogOptions::default()).unwrap();
    log.log_with(|buf| buf.extend_from_slice(b"{\"chocon_req\":\"abc\"}\n"));
    log.flush().unwrap();
    assert_eq!(lines(&out), vec![serde_json::json!({"chocon_req": "abc"})]);
}
