//! The checks of the `h1` fuzz target, shared with its replay test
//! (`crates/h1/tests/fuzz_replay.rs` includes this file).
//!
//! For any bytes: the request and response parsers and the chunked scanner never panic;
//! a parsed head never claims more bytes than it was given and parses the same from
//! exactly its own bytes; the chunked scanner finds the same end however the input is
//! split across reads.

use sekisho_h1::{parse_request, parse_response, ChunkedScanner, Scan, EMPTY_HEADER, MAX_HEADERS};

pub fn check(data: &[u8]) {
    let mut h = [EMPTY_HEADER; MAX_HEADERS];
    if let Ok(Some(head)) = parse_request(data, &mut h) {
        assert!(head.len <= data.len());
        let (len, body, host) = (head.len, head.body, head.host.map(<[u8]>::to_vec));
        let mut h2 = [EMPTY_HEADER; MAX_HEADERS];
        let again = parse_request(data.get(..len).unwrap_or_default(), &mut h2)
            .expect("a head parses from its own bytes")
            .expect("complete");
        assert_eq!(
            (again.len, again.body, again.host.map(<[u8]>::to_vec)),
            (len, body, host)
        );
    }
    for to_head in [false, true] {
        let mut h = [EMPTY_HEADER; MAX_HEADERS];
        if let Ok(Some(resp)) = parse_response(data, &mut h, to_head) {
            assert!(resp.len <= data.len());
            assert!((100..=999).contains(&resp.code));
        }
    }
    let whole = ChunkedScanner::new().scan(data);
    let split = data.len() / 3;
    let mut s = ChunkedScanner::new();
    let parts: Result<Scan, _> = s
        .scan(data.get(..split).unwrap_or_default())
        .and_then(|first| {
            if first.done {
                return Ok(first);
            }
            let second = s.scan(data.get(split..).unwrap_or_default())?;
            Ok(Scan {
                consumed: split + second.consumed,
                done: second.done,
            })
        });
    match (whole, parts) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the end does not depend on how reads split"),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("split changed the verdict: {a:?} vs {b:?}"),
    }
}
