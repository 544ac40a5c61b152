//! HTTP/1.1 wire format for the gateway's fast path: strict head parsing, body framing
//! (Content-Length, chunked) and head writing. Pure: no I/O, no allocation while parsing.
//!
//! The gateway's fast path proxies plain HTTP/1.1 exchanges without building `http`
//! types: it parses a head here, edits it while copying it into the upstream's head, and
//! relays bodies by the framing found here. Anything this crate does not classify as plain
//! (absolute-form targets, HTTP/1.0, upgrades, `Expect`, transfer codings other than a lone
//! `chunked`) is reported so the caller can hand the connection to the general pipeline.
//!
//! Parsing is stricter than RFC 9112 requires wherever two implementations could read a
//! message differently (request smuggling): `Content-Length` with `Transfer-Encoding`, more
//! than one `Content-Length` or `Host`, a `Content-Length` that is not plain digits,
//! obsolete line folding, control bytes, fragments in the target.
//!
//! ```
//! let buf = b"GET /v1/items/1?x=2 HTTP/1.1\r\nHost: api.example.com\r\n\r\n";
//! let mut headers = [sekisho_h1::EMPTY_HEADER; sekisho_h1::MAX_HEADERS];
//! let head = sekisho_h1::parse_request(buf, &mut headers).unwrap().unwrap();
//! assert_eq!(head.method, "GET");
//! assert_eq!(head.path(), "/v1/items/1");
//! assert_eq!(head.query(), Some("x=2"));
//! assert_eq!(head.host, Some(&b"api.example.com"[..]));
//! assert_eq!(head.body, sekisho_h1::BodyKind::None);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod chunked;
mod error;
mod fields;
mod request;
mod response;
mod target;
pub mod write;

pub use chunked::{ChunkedError, ChunkedScanner, Scan};
pub use error::HeadError;
pub use fields::{is_hop_by_hop, trim_ows, ConnectionTokens};
pub use httparse::{Header, EMPTY_HEADER};
pub use request::{parse_request, BodyKind, RequestHead, TargetForm};
pub use response::{parse_response, ResponseBody, ResponseError, ResponseHead};

/// Headers per message at most; more is answered 431 (requests) or 502 (responses).
pub const MAX_HEADERS: usize = 128;
