//! gRPC-Web to gRPC: content types, the trailer frame, and the `-text` (base64) variant.
//!
//! gRPC-Web data frames are gRPC frames, so request bodies pass through (after base64
//! decoding for `-text`); the response's trailers become a last frame with flag `0x80`.
//! The gateway does the I/O; this module says what changes on the way:
//!
//! - request: [`WebMode::from_content_type`], [`upstream_request_headers`], the body through
//!   [`TextDecoder`] for `-text`;
//! - response: [`web_response_headers`], then each upstream chunk through
//!   [`WebEncoder::data`] and the trailers through [`WebEncoder::trailers`].

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::error::TranscodeError;

/// The flag of the trailer frame.
pub const TRAILER_FLAG: u8 = 0x80;

/// What kind of gRPC-Web a content type asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebMode {
    /// `application/grpc-web[+proto]`: binary frames.
    Binary,
    /// `application/grpc-web-text[+proto]`: base64 of the frames.
    Text,
}

impl WebMode {
    /// The mode for a request `Content-Type`, `None` if it is not gRPC-Web.
    pub fn from_content_type(ct: &str) -> Option<WebMode> {
        let media = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        // The subtype may carry a message format (`+proto`, `+json`); nothing else may
        // follow, so `application/grpc-webfoo` is not gRPC-Web.
        let is = |base: &str| {
            media
                .strip_prefix(base)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('+'))
        };
        if is("application/grpc-web-text") {
            Some(WebMode::Text)
        } else if is("application/grpc-web") {
            Some(WebMode::Binary)
        } else {
            None
        }
    }

    /// The response content type.
    pub fn content_type(self) -> &'static str {
        match self {
            WebMode::Binary => "application/grpc-web+proto",
            WebMode::Text => "application/grpc-web-text+proto",
        }
    }
}

/// Headers a browser's script must be allowed to read: the status of a trailers-only
/// response arrives in headers, and CORS hides every non-simple response header.
pub const EXPOSED_HEADERS: &str = "grpc-status, grpc-message, grpc-status-details-bin";

/// Turns the client's gRPC-Web request headers into the upstream's gRPC ones: gRPC content
/// type, `te: trailers` (gRPC servers require it), and no `content-length`, which `-text`
/// decoding changes and gRPC does not need.
pub fn upstream_request_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    headers.remove(header::CONTENT_LENGTH);
    // The client asked for gRPC-Web; the upstream answers gRPC regardless.
    headers.remove(header::ACCEPT);
}

/// Turns the upstream's gRPC response headers into gRPC-Web ones for `mode`: its content
/// type, no `content-length` (the trailer frame and base64 change the size), and the gRPC
/// status headers exposed to scripts (appended to any list the route already sets).
pub fn web_response_headers(headers: &mut HeaderMap, mode: WebMode) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(mode.content_type()),
    );
    headers.remove(header::CONTENT_LENGTH);
    let expose = match headers.get(header::ACCESS_CONTROL_EXPOSE_HEADERS) {
        Some(v) if !v.is_empty() => {
            let mut joined = v.as_bytes().to_vec();
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(EXPOSED_HEADERS.as_bytes());
            HeaderValue::from_bytes(&joined)
                .unwrap_or_else(|_| HeaderValue::from_static(EXPOSED_HEADERS))
        }
        _ => HeaderValue::from_static(EXPOSED_HEADERS),
    };
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, expose);
}

/// Encodes a gRPC response body as gRPC-Web for one response.
///
/// Data passes through (binary) or is base64-encoded chunk by chunk (`-text`): each
/// chunk is padded on its own, which the protocol allows, so a streamed message reaches
/// the client as soon as it arrives instead of waiting for bytes to fill a 3-byte group.
#[derive(Debug, Clone, Copy)]
pub struct WebEncoder {
    mode: WebMode,
}

impl WebEncoder {
    /// An encoder for `mode`.
    pub fn new(mode: WebMode) -> Self {
        WebEncoder { mode }
    }

    /// The bytes to send for a chunk of the upstream's body.
    pub fn data(&self, chunk: Bytes) -> Bytes {
        match self.mode {
            WebMode::Binary => chunk,
            WebMode::Text => text_encode(&chunk),
        }
    }

    /// The last bytes of the body: the trailer frame. `trailers` is `None` when the
    /// upstream ended its body without any, which gRPC forbids: the client then gets
    /// `INTERNAL`, so it never mistakes a cut-off answer for success.
    pub fn trailers(&self, trailers: Option<&HeaderMap>) -> Bytes {
        let frame = match trailers {
            Some(t) => trailer_frame(t),
            None => {
                let mut t = HeaderMap::new();
                t.insert(
                    HeaderName::from_static("grpc-status"),
                    HeaderValue::from_static("13"),
                );
                t.insert(
                    HeaderName::from_static("grpc-message"),
                    HeaderValue::from_static("upstream ended the response without trailers"),
                );
                trailer_frame(&t)
            }
        };
        self.data(frame)
    }
}

/// The trailer frame for a gRPC-Web response: `name: value\r\n` lines, lowercase names.
pub fn trailer_frame(trailers: &HeaderMap) -> Bytes {
    let mut block = Vec::new();
    for (name, value) in trailers {
        block.extend_from_slice(name.as_str().as_bytes());
        block.extend_from_slice(b":");
        block.extend_from_slice(value.as_bytes());
        block.extend_from_slice(b"\r\n");
    }
    let mut out = BytesMut::with_capacity(5 + block.len());
    out.put_u8(TRAILER_FLAG);
    out.put_u32(u32::try_from(block.len()).unwrap_or(u32::MAX));
    out.put_slice(&block);
    out.freeze()
}

/// Parses a trailer frame's payload back into headers (for gRPC-Web clients and tests).
pub fn parse_trailers(block: &[u8]) -> Result<HeaderMap, TranscodeError> {
    let mut h = HeaderMap::new();
    for line in block.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let pos = line
            .iter()
            .position(|b| *b == b':')
            .ok_or_else(|| TranscodeError::Upstream("trailer line without ':'".into()))?;
        let name = http::HeaderName::from_bytes(&line[..pos])
            .map_err(|e| TranscodeError::Upstream(format!("bad trailer name: {e}")))?;
        let value = http::HeaderValue::from_bytes(line[pos + 1..].trim_ascii())
            .map_err(|e| TranscodeError::Upstream(format!("bad trailer value: {e}")))?;
        h.append(name, value);
    }
    Ok(h)
}

/// Base64-encodes response bytes for `-text` clients (each chunk padded on its own,
/// which the gRPC-Web protocol allows).
pub fn text_encode(bytes: &[u8]) -> Bytes {
    base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .into()
}

/// Decodes a `-text` request body that arrives in chunks: complete 4-character groups
/// are decoded as they come, the rest waits for the next chunk.
#[derive(Debug, Default)]
pub struct TextDecoder {
    pending: Vec<u8>,
}

impl TextDecoder {
    /// Feeds base64 text; returns the bytes decoded so far.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Bytes, TranscodeError> {
        self.pending
            .extend(chunk.iter().copied().filter(|b| !b.is_ascii_whitespace()));
        let whole = self.pending.len() / 4 * 4;
        let mut out = Vec::with_capacity(whole / 4 * 3);
        // Padding may appear inside the stream (one padded group per sender chunk).
        for group in self.pending[..whole].chunks(4) {
            base64::engine::general_purpose::STANDARD
                .decode_vec(group, &mut out)
                .map_err(|e| {
                    TranscodeError::bad("body", format!("invalid grpc-web-text base64: {e}"))
                })?;
        }
        self.pending.drain(..whole);
        Ok(out.into())
    }

    /// True when no partial group is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_frames_round_trip() {
        let mut t = HeaderMap::new();
        t.insert("grpc-status", "5".parse().unwrap());
        t.insert("grpc-message", "not found".parse().unwrap());
        let f = trailer_frame(&t);
        assert_eq!(f[0], TRAILER_FLAG);
        let parsed = parse_trailers(&f[5..]).unwrap();
        assert_eq!(parsed, t);
    }

    #[test]
    fn text_decodes_across_chunks_and_padding() {
        let a = text_encode(b"\0\0\0\0\x01x");
        let b = text_encode(b"yz");
        let all = [a.as_ref(), b.as_ref()].concat();
        for cut in 0..all.len() {
            let mut d = TextDecoder::default();
            let mut got = d.push(&all[..cut]).unwrap().to_vec();
            got.extend_from_slice(&d.push(&all[cut..]).unwrap());
            assert_eq!(got, b"\0\0\0\0\x01xyz", "cut {cut}");
            assert!(d.is_empty());
        }
        assert_eq!(
            WebMode::from_content_type("application/grpc-web-text"),
            Some(WebMode::Text)
        );
        assert_eq!(
            WebMode::from_content_type("application/grpc-web+proto"),
            Some(WebMode::Binary)
        );
        assert_eq!(WebMode::from_content_type("application/grpc"), None);
        assert_eq!(
            WebMode::from_content_type("Application/GRPC-Web; charset=utf-8"),
            Some(WebMode::Binary)
        );
        assert_eq!(WebMode::from_content_type("application/grpc-webx"), None);
        assert_eq!(
            WebMode::from_content_type("application/grpc-web-text+proto"),
            Some(WebMode::Text)
        );
    }

    #[test]
    fn request_headers_become_grpc() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "application/grpc-web-text".parse().unwrap(),
        );
        h.insert(header::CONTENT_LENGTH, "12".parse().unwrap());
        h.insert(header::ACCEPT, "application/grpc-web-text".parse().unwrap());
        h.insert("x-user-id", "u1".parse().unwrap());
        upstream_request_headers(&mut h);
        assert_eq!(h[header::CONTENT_TYPE], "application/grpc");
        assert_eq!(h[header::TE], "trailers");
        assert!(!h.contains_key(header::CONTENT_LENGTH) && !h.contains_key(header::ACCEPT));
        assert_eq!(h["x-user-id"], "u1", "metadata is kept");
    }

    #[test]
    fn response_headers_expose_the_status() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "application/grpc".parse().unwrap());
        h.insert(header::CONTENT_LENGTH, "7".parse().unwrap());
        web_response_headers(&mut h, WebMode::Text);
        assert_eq!(h[header::CONTENT_TYPE], "application/grpc-web-text+proto");
        assert!(!h.contains_key(header::CONTENT_LENGTH));
        assert_eq!(h[header::ACCESS_CONTROL_EXPOSE_HEADERS], EXPOSED_HEADERS);

        let mut h = HeaderMap::new();
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            "x-a".parse().unwrap(),
        );
        web_response_headers(&mut h, WebMode::Binary);
        assert_eq!(h[header::CONTENT_TYPE], "application/grpc-web+proto");
        assert_eq!(
            h[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap(),
            format!("x-a, {EXPOSED_HEADERS}")
        );
    }

    #[test]
    fn encoder_frames_data_and_trailers() {
        let bin = WebEncoder::new(WebMode::Binary);
        assert_eq!(
            &bin.data(Bytes::from_static(b"\0\0\0\0\x01x"))[..],
            b"\0\0\0\0\x01x"
        );
        let mut t = HeaderMap::new();
        t.insert("grpc-status", "0".parse().unwrap());
        assert_eq!(
            &bin.trailers(Some(&t))[..],
            b"\x80\0\0\0\x0fgrpc-status:0\r\n"
        );

        // Missing trailers: INTERNAL, never a silent success.
        let missing = bin.trailers(None);
        let parsed = parse_trailers(&missing[5..]).unwrap();
        assert_eq!(parsed["grpc-status"], "13");

        // -text: every piece is valid base64 on its own; concatenated they decode back.
        let text = WebEncoder::new(WebMode::Text);
        let mut wire = text.data(Bytes::from_static(b"\0\0\0\0\x01x")).to_vec();
        wire.extend_from_slice(&text.trailers(Some(&t)));
        let mut d = TextDecoder::default();
        let raw = d.push(&wire).unwrap();
        assert!(d.is_empty());
        assert_eq!(&raw[..6], b"\0\0\0\0\x01x");
        assert_eq!(&raw[6..], b"\x80\0\0\0\x0fgrpc-status:0\r\n");
    }
}
