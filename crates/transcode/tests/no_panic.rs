//! Property tests: the template parser, routing with query mapping, JSON decoding and
//! the response side never panic, whatever the input; errors are the client's (4xx)
//! on the request side and the upstream's (502) on the response side.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderMap, Method};
use proptest::prelude::*;
use sekisho_test_support::grpc_server::build_descriptor_set;
use sekisho_transcode::template::Template;
use sekisho_transcode::{BodyFormat, Options, Transcoder};

fn transcoder() -> &'static Transcoder {
    static T: OnceLock<Transcoder> = OnceLock::new();
    T.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grpc");
        let set = build_descriptor_set(&dir, "bookstore.proto");
        Transcoder::new(
            &set,
            &["bookstore.v1.Bookstore".to_string()],
            Options::default(),
        )
        .unwrap()
    })
}

const METHODS: [Method; 4] = [Method::GET, Method::POST, Method::PATCH, Method::DELETE];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn template_parser_never_panics(s in "\\PC{0,40}") {
        let _ = Template::parse(&s);
    }

    #[test]
    fn template_parser_on_template_like_input(
        s in "(/([a-z]{1,3}|\\*|\\*\\*|\\{[a-z.]{0,5}(=[a-z/*{}]{0,6})?\\}?)){0,5}(:[a-z/]{0,3})?"
    ) {
        if let Ok(t) = Template::parse(&s) {
            for v in &t.variables {
                prop_assert!(v.start <= v.end && v.end <= t.segments.len());
            }
        }
    }

    #[test]
    fn routing_and_query_mapping_never_panic(
        m in 0usize..4,
        path in "/v[12]/(shelves|echo|any|fail|files|books:import)(/[a-z0-9%:._~*-]{0,8}){0,5}",
        query in "([a-zA-Z0-9_.]{0,12}(\\[[a-z]{0,3}\\])?=[a-zA-Z0-9%+,:.-]{0,12}&?){0,5}",
    ) {
        if let Some(matched) = transcoder().route(&METHODS[m], &path, Some(&query)) {
            if let Err(e) = matched.encode_request(None, Bytes::new()) {
                prop_assert!(e.is_client_error(), "{e}");
            }
        }
    }

    #[test]
    fn json_bodies_never_panic(body in prop_oneof![
        "\\PC{0,60}",
        "\\{(\"[a-zA-Z_.]{1,10}\": ?(-?[0-9]{1,20}|\"[a-zA-Z0-9:.=/+-]{0,12}\"|true|null|\\[\\]|\\{\\}|\\[1, ?\"x\"\\]),? ?){0,6}\\}",
    ]) {
        for (m, p) in [(Method::POST, "/v1/echo"), (Method::POST, "/v1/books:import"), (Method::POST, "/v1/shelves/1/books")] {
            let matched = transcoder().route(&m, p, None).unwrap();
            if let Err(e) = matched.encode_request(Some("application/json"), Bytes::from(body.clone())) {
                prop_assert!(e.is_client_error(), "{e}");
            }
        }
    }

    #[test]
    fn response_side_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..4)) {
        for (m, p) in [(Method::POST, "/v1/echo"), (Method::GET, "/v1/shelves/1/books"), (Method::GET, "/v1/files/x")] {
            let matched = transcoder().route(&m, p, None).unwrap();
            for format in [BodyFormat::Json, BodyFormat::Protobuf] {
                let mut rt = matched.response(format);
                let mut failed = false;
                for c in &chunks {
                    failed |= rt.push(Bytes::from(c.clone())).is_err();
                }
                let mut t = HeaderMap::new();
                t.insert("grpc-status", "0".parse().unwrap());
                if !failed {
                    let _ = rt.finish(&HeaderMap::new(), Some(&t));
                }
            }
        }
    }
}
