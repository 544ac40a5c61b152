//! Times the transcoder on the benchmark's 10 KB message (bench/transcode.py):
//! `cargo run --release -p sekisho-transcode --example codec_bench -- DESCRIPTORS.pb`.
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Method};
use sekisho_transcode::{BodyFormat, Options, Transcoder};

fn main() {
    let path = std::env::args().nth(1).expect("descriptor set path");
    let set = std::fs::read(path).expect("read descriptor set");
    let t = Transcoder::new(
        &set,
        &["bookstore.v1.Bookstore".to_string()],
        Options::default(),
    )
    .expect("transcoder");
    let mut items = String::new();
    for i in 1..160 {
        if i > 1 {
            items.push(',');
        }
        items.push_str(&format!(
            r#"{{"name":"item-{i:04}-{}","n":{i},"child":{{"name":"c{i}"}}}}"#,
            "x".repeat(24)
        ));
    }
    let labels: Vec<String> = (0..20).map(|i| format!(r#""k{i}":"v{i}""#)).collect();
    let json = format!(
        r#"{{"s":"hello","i32":42,"nested":{{"name":"top","n":7}},"labels":{{{}}},"items":[{}]}}"#,
        labels.join(","),
        items
    );
    let body = Bytes::from(json);
    let n = 20_000;
    let m = t.route(&Method::POST, "/v1/echo", None).expect("route");
    let req = m
        .encode_request(Some("application/json"), body.clone())
        .expect("encode");
    let start = Instant::now();
    for _ in 0..n {
        let m = t.route(&Method::POST, "/v1/echo", None).expect("route");
        let r = m
            .encode_request(Some("application/json"), body.clone())
            .expect("encode");
        std::hint::black_box(r);
    }
    let enc = start.elapsed() / n;
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().expect("value"));
    let start = Instant::now();
    let mut out_len = 0;
    for _ in 0..n {
        let mut resp = m.response(BodyFormat::Json);
        let _ = resp.push(req.body.clone()).expect("push");
        let done = resp
            .finish(&HeaderMap::new(), Some(&trailers))
            .expect("finish");
        out_len = done.body.len();
        std::hint::black_box(done);
    }
    let ren = start.elapsed() / n;
    println!(
        "json {} B, proto {} B, out {} B: encode {:?}, render {:?}",
        body.len(),
        req.body.len(),
        out_len,
        enc,
        ren
    );
}
