//! gRPC-Web to gRPC: content types, the trailer frame, and the `-text` (base64) variant.
//!
//! gRPC-Web data frames are gRPC frames, so request bodies pass through (after base64
//! decoding for `-text`); the response's trailers become a last frame with flag `0x80`.

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderMap;

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
        if media.starts_with("application/grpc-web-text") {
            Some(WebMode::Text)
        } else if media.starts_with("application/grpc-web") {
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
    }
}
