//! Request and response heads: what is accepted, what is refused, and property tests that
//! no input panics.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use sekisho_h1::{
    parse_request, parse_response, BodyKind, HeadError, ResponseBody, TargetForm, EMPTY_HEADER,
    MAX_HEADERS,
};

fn req(raw: &[u8]) -> Result<Option<(BodyKind, usize)>, HeadError> {
    let mut h = [EMPTY_HEADER; MAX_HEADERS];
    parse_request(raw, &mut h).map(|o| o.map(|r| (r.body, r.len)))
}

#[test]
fn plain_requests() {
    let raw = b"GET /a?b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nrest";
    let mut h = [EMPTY_HEADER; MAX_HEADERS];
    let r = parse_request(raw, &mut h).unwrap().unwrap();
    assert_eq!(r.len, raw.len() - 4);
    assert_eq!((r.path(), r.query()), ("/a", Some("b")));
    assert!(!r.keep_alive());
    assert_eq!(r.body, BodyKind::None);
    assert_eq!(
        req(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n").unwrap(),
        Some((BodyKind::Length(5), 47))
    );
    assert_eq!(
        req(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .map(|r| r.0),
        Some(BodyKind::Chunked)
    );
    assert_eq!(
        req(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
            .unwrap()
            .map(|r| r.0),
        Some(BodyKind::CodedChunked)
    );
    // Incomplete heads ask for more.
    assert_eq!(req(b"GET / HTTP/1.1\r\nHost: h\r\n").unwrap(), None);
    assert_eq!(req(b"GET / HT").unwrap(), None);
    // HTTP/1.0 needs no Host and is not persistent by default.
    let mut h = [EMPTY_HEADER; MAX_HEADERS];
    let r = parse_request(b"GET / HTTP/1.0\r\n\r\n", &mut h)
        .unwrap()
        .unwrap();
    assert!(!r.keep_alive());
    let mut h = [EMPTY_HEADER; MAX_HEADERS];
    let r = parse_request(b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", &mut h)
        .unwrap()
        .unwrap();
    assert_eq!(r.form, TargetForm::Other);
}

#[test]
fn smuggling_vectors_are_refused() {
    let vectors: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4, 5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +4\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-Bad: a\0b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX\x01Bad: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n",
        b"GET /a#b HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /a<b HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: t\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"G\x01T / HTTP/1.1\r\nHost: t\r\n\r\n",
    ];
    for v in vectors {
        assert!(
            req(v).is_err(),
            "accepted: {:?}",
            String::from_utf8_lossy(v)
        );
    }
    let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
    let raw = format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n");
    assert_eq!(req(raw.as_bytes()), Err(HeadError::TooManyHeaders));
}

fn resp(raw: &[u8], to_head: bool) -> Option<ResponseBody> {
    let mut h = [EMPTY_HEADER; MAX_HEADERS];
    parse_response(raw, &mut h, to_head)
        .ok()
        .flatten()
        .map(|r| r.body)
}

#[test]
fn response_framing() {
    assert_eq!(
        resp(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", false),
        Some(ResponseBody::Length(3))
    );
    assert_eq!(
        resp(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true),
        Some(ResponseBody::None)
    );
    assert_eq!(
        resp(b"HTTP/1.1 204 No Content\r\n\r\n", false),
        Some(ResponseBody::None)
    );
    assert_eq!(
        resp(
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
            false
        ),
        Some(ResponseBody::None)
    );
    assert_eq!(
        resp(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            false
        ),
        Some(ResponseBody::Chunked)
    );
    assert_eq!(
        resp(b"HTTP/1.0 200 OK\r\n\r\n", false),
        Some(ResponseBody::UntilClose)
    );
    // Identical duplicate lengths are one length; different ones or CL with TE are refused.
    assert_eq!(
        resp(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
            false
        ),
        Some(ResponseBody::Length(3))
    );
    assert_eq!(
        resp(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            false
        ),
        None
    );
    assert_eq!(
        resp(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            false
        ),
        None
    );
    let mut h = [EMPTY_HEADER; MAX_HEADERS];
    let r = parse_response(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        &mut h,
        false,
    )
    .unwrap()
    .unwrap();
    assert!(!r.keep_alive());
    let mut h = [EMPTY_HEADER; MAX_HEADERS];
    let r = parse_response(b"HTTP/1.1 100 Continue\r\n\r\n", &mut h, false)
        .unwrap()
        .unwrap();
    assert!(r.is_interim());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_input_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut h = [EMPTY_HEADER; MAX_HEADERS];
        let _ = parse_request(&bytes, &mut h);
        let mut h = [EMPTY_HEADER; MAX_HEADERS];
        let _ = parse_response(&bytes, &mut h, false);
        let _ = sekisho_h1::ChunkedScanner::new().scan(&bytes);
    }

    #[test]
    fn mutated_heads_never_panic(pos in 0usize..80, byte in any::<u8>()) {
        let mut raw = b"POST /v1/a?b=c HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX: y\r\n\r\nabc".to_vec();
        if let Some(b) = raw.get_mut(pos) { *b = byte; }
        let mut h = [EMPTY_HEADER; MAX_HEADERS];
        if let Ok(Some(r)) = parse_request(&raw, &mut h) {
            prop_assert!(r.len <= raw.len());
        }
    }
}
