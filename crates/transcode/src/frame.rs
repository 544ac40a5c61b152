//! gRPC message framing: a 1-byte flag and a 4-byte big-endian length before each message.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::TranscodeError;

/// The size of a gRPC frame header.
pub const FRAME_HEADER_LEN: usize = 5;

/// Writes a frame header for an uncompressed message of `len` bytes.
pub fn put_frame_header(out: &mut impl BufMut, len: usize) -> Result<(), TranscodeError> {
    let len =
        u32::try_from(len).map_err(|_| TranscodeError::bad("body", "message larger than 4 GiB"))?;
    out.put_u8(0);
    out.put_u32(len);
    Ok(())
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The flag byte: bit 0 = compressed, bit 7 = gRPC-Web trailers.
    pub flags: u8,
    /// The message (or trailer block) bytes.
    pub payload: Bytes,
}

/// Splits a byte stream that arrives in arbitrary chunks into gRPC frames.
///
/// Chunks holding whole frames are sliced without copying; only a frame split across
/// chunks is gathered in an internal buffer.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_message: usize,
}

impl FrameDecoder {
    /// A decoder refusing messages larger than `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            max_message,
        }
    }

    /// Feeds `chunk` and appends every frame it completes to `out`.
    pub fn push(&mut self, mut chunk: Bytes, out: &mut Vec<Frame>) -> Result<(), TranscodeError> {
        if self.buf.is_empty() {
            // Fast path: frames straight out of the chunk.
            while let Some(len) = self.complete_len(&chunk)? {
                let mut frame = chunk.split_to(FRAME_HEADER_LEN + len);
                let flags = frame[0];
                frame.advance(FRAME_HEADER_LEN);
                out.push(Frame {
                    flags,
                    payload: frame,
                });
            }
            self.buf.extend_from_slice(&chunk);
            return Ok(());
        }
        self.buf.extend_from_slice(&chunk);
        while let Some(len) = self.complete_len(&self.buf)? {
            let mut frame = self.buf.split_to(FRAME_HEADER_LEN + len);
            let flags = frame[0];
            frame.advance(FRAME_HEADER_LEN);
            out.push(Frame {
                flags,
                payload: frame.freeze(),
            });
        }
        Ok(())
    }

    /// True when no partial frame is pending (the stream may end here).
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn complete_len(&self, b: &[u8]) -> Result<Option<usize>, TranscodeError> {
        if b.len() < FRAME_HEADER_LEN {
            return Ok(None);
        }
        let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
        if len > self.max_message {
            return Err(TranscodeError::Upstream(format!(
                "message of {len} bytes exceeds the limit of {} bytes",
                self.max_message
            )));
        }
        Ok((b.len() >= FRAME_HEADER_LEN + len).then_some(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(msgs: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for m in msgs {
            put_frame_header(&mut v, m.len()).unwrap();
            v.extend_from_slice(m);
        }
        v
    }

    #[test]
    fn frames_split_at_every_byte() {
        let wire = framed(&[b"hello", b"", b"world!"]);
        for cut in 0..wire.len() {
            let mut d = FrameDecoder::new(1024);
            let mut out = Vec::new();
            d.push(Bytes::copy_from_slice(&wire[..cut]), &mut out)
                .unwrap();
            d.push(Bytes::copy_from_slice(&wire[cut..]), &mut out)
                .unwrap();
            let got: Vec<&[u8]> = out.iter().map(|f| &f.payload[..]).collect();
            assert_eq!(got, vec![&b"hello"[..], b"", b"world!"], "cut at {cut}");
            assert!(d.is_empty());
        }
    }

    #[test]
    fn oversized_messages_are_refused() {
        let wire = framed(&[&[0u8; 100]]);
        let mut d = FrameDecoder::new(10);
        assert!(d.push(Bytes::from(wire), &mut Vec::new()).is_err());
    }
}
