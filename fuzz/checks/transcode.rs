//! The checks of the transcode fuzz targets, shared with their replay test
//! (`crates/transcode/tests/fuzz_replay.rs` includes this file), so a saved input is
//! checked the same way under `cargo test` as under the fuzzer.
//!
//! The descriptor set is the test service's (`crates/transcode/tests/grpc/bookstore.proto`),
//! built with protoc once per process: nothing committed can go stale.

// Each fuzz target uses one of the checks.
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;

use bytes::Bytes;
use http::Method;
use sekisho_transcode::frame::FrameDecoder;
use sekisho_transcode::template::{Segment, Template};
use sekisho_transcode::{Options, Transcoder};

/// Two transcoders over the test service: default options, and the strict ones
/// (unknown fields rejected, enums in any case, proto names).
pub fn transcoders() -> &'static [Transcoder; 2] {
    static T: OnceLock<[Transcoder; 2]> = OnceLock::new();
    T.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(super::REPO_ROOT)
            .join("crates/transcode/tests/grpc");
        let set = sekisho_test_support::grpc_server::build_descriptor_set(&dir, "bookstore.proto");
        let services = ["bookstore.v1.Bookstore".to_string()];
        let strict = Options {
            reject_unknown_fields: true,
            case_insensitive_enums: true,
            use_proto_field_names: true,
            ..Options::default()
        };
        [
            Transcoder::new(&set, &services, Options::default()).expect("test descriptors load"),
            Transcoder::new(&set, &services, strict).expect("test descriptors load"),
        ]
    })
}

/// `transcode_template`: any text either parses into a consistent template or is refused.
pub fn check_template(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(t) = Template::parse(&text) else {
        return;
    };
    assert!(
        text.starts_with('/'),
        "{text:?} parsed without a leading '/'"
    );
    let multi = t.segments.iter().filter(|s| **s == Segment::Multi).count();
    assert!(multi <= 1, "{text:?}: {multi} '**' segments");
    if multi == 1 {
        assert!(t.ends_with_multi(), "{text:?}: '**' before the end");
    }
    let mut last_end = 0;
    for v in &t.variables {
        assert!(
            v.start <= v.end && v.end <= t.segments.len(),
            "{text:?}: {v:?}"
        );
        assert!(v.start >= last_end, "{text:?}: overlapping variables");
        assert!(
            !v.field_path.is_empty(),
            "{text:?}: a variable without a field"
        );
        last_end = v.end;
    }
}

const METHODS: [Method; 6] = [
    Method::GET,
    Method::POST,
    Method::PATCH,
    Method::DELETE,
    Method::PUT,
    Method::HEAD,
];

/// `transcode_query`: byte 0 picks the method and options, then `path \0 query`. Routing
/// never panics, and mapping path and query values into the request fails only as the
/// client's error (a 4xx), never the gateway's.
pub fn check_query(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let t = &transcoders()[usize::from(sel >> 7)];
    let method = &METHODS[usize::from(sel & 0x7f) % METHODS.len()];
    let mut parts = rest.splitn(2, |b| *b == 0);
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let query = parts.next().map(String::from_utf8_lossy);
    let Some(matched) = t.route(method, &path, query.as_deref()) else {
        return;
    };
    match matched.encode_request(None, Bytes::new()) {
        Ok(req) => assert_framed(&req.body),
        Err(e) => assert!(
            e.is_client_error(),
            "{path:?}?{query:?}: not the client's: {e}"
        ),
    }
}

/// Routes with a JSON body: `body: "*"`, `body: "field"`, a client stream, HttpBody, and
/// the auto mapping.
const BODY_ROUTES: [(Method, &str); 7] = [
    (Method::POST, "/v1/echo"),
    (Method::POST, "/v1/shelves/1/books"),
    (Method::PATCH, "/v1/shelves/1/books/2"),
    (Method::POST, "/v1/shelves/1/books/2:publish"),
    (Method::POST, "/v1/books:import"),
    (Method::POST, "/v1/files/f"),
    (Method::POST, "/bookstore.v1.Bookstore/Ping"),
];

/// `transcode_json`: byte 0 picks the route and options, the rest is the JSON body. Any
/// body is either refused as the client's error or becomes well-framed gRPC.
pub fn check_json(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let t = &transcoders()[usize::from(sel >> 7)];
    let (method, path) = &BODY_ROUTES[usize::from(sel & 0x7f) % BODY_ROUTES.len()];
    let matched = t.route(method, path, None).expect("the body routes exist");
    match matched.encode_request(Some("application/json"), Bytes::copy_from_slice(body)) {
        Ok(req) => assert_framed(&req.body),
        Err(e) => assert!(e.is_client_error(), "{path}: not the client's: {e}"),
    }
}

/// The gRPC body is whole frames, none compressed.
fn assert_framed(body: &Bytes) {
    let mut frames = Vec::new();
    let mut d = FrameDecoder::new(usize::MAX);
    d.push(body.clone(), &mut frames).expect("frames decode");
    assert!(d.is_empty(), "a partial frame in the gRPC body");
    assert!(
        frames.iter().all(|f| f.flags == 0),
        "unexpected frame flags"
    );
}

/// Transcoders for all 16 combinations of the message-mapping options (bit 0: reject
/// unknown fields, 1: case-insensitive enums, 2: proto field names, 3: emit defaults).
pub fn all_options() -> &'static [Transcoder] {
    static T: OnceLock<Vec<Transcoder>> = OnceLock::new();
    T.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(super::REPO_ROOT)
            .join("crates/transcode/tests/grpc");
        let set = sekisho_test_support::grpc_server::build_descriptor_set(&dir, "bookstore.proto");
        let services = ["bookstore.v1.Bookstore".to_string()];
        (0..16u8)
            .map(|bits| {
                let opts = Options {
                    reject_unknown_fields: bits & 1 != 0,
                    case_insensitive_enums: bits & 2 != 0,
                    use_proto_field_names: bits & 4 != 0,
                    emit_defaults: bits & 8 != 0,
                    ..Options::default()
                };
                Transcoder::new(&set, &services, opts).expect("test descriptors load")
            })
            .collect()
    })
}

/// Requests with a JSON body the fast codec encodes: `body: "*"` (with and without a path
/// variable), the auto mapping, `body: "field"` with path, query and nested path fields.
const DIFF_REQUESTS: [(Method, &str, Option<&str>); 6] = [
    (Method::POST, "/v1/echo", None),
    (Method::POST, "/bookstore.v1.Bookstore/Ping", None),
    (
        Method::POST,
        "/v1/shelves/1/books",
        Some("request_id=r&book.title=t"),
    ),
    (
        Method::PATCH,
        "/v1/shelves/1/books/2",
        Some("updateMask=title,author"),
    ),
    (Method::POST, "/v1/shelves/1/books/2:publish", None),
    (Method::POST, "/v1/shelves/0/books", Some("requestId=0")),
];

/// Responses the fast codec renders: `Everything` (every field kind), `Book`, `Shelf`.
const DIFF_RESPONSES: [(Method, &str); 3] = [
    (Method::POST, "/v1/echo"),
    (Method::GET, "/v1/shelves/1/books/2"),
    (Method::GET, "/v1/shelves/1"),
];

/// `transcode_differential`: byte 0 picks the options (low 4 bits), the direction
/// (bit 4) and the route (high 3 bits); the rest is a JSON request body or a response
/// message's wire bytes. The fast codec and the `DynamicMessage` path must agree: the
/// same request message, the same JSON, the same error.
pub fn check_differential(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let t = &all_options()[usize::from(sel & 0x0f)];
    let route = usize::from(sel >> 5);
    let r = if sel & 0x10 == 0 {
        let (method, path, query) = &DIFF_REQUESTS[route % DIFF_REQUESTS.len()];
        let ct = Some("application/json");
        sekisho_transcode::differential::check_scanner(t, method, path, rest).and_then(|_| {
            sekisho_transcode::differential::check_request(t, method, path, *query, ct, rest)
        })
    } else {
        let (method, path) = &DIFF_RESPONSES[route % DIFF_RESPONSES.len()];
        sekisho_transcode::differential::check_response(t, method, path, rest)
    };
    if let Err(e) = r {
        panic!("fast codec and DynamicMessage path disagree: {e}");
    }
}
