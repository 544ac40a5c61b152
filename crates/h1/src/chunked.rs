//! Finding where a chunked body ends, validating it on the way, without decoding it: the
//! fast path relays chunked bodies as they are.

/// Bytes of chunk extensions per chunk line, and of trailer fields, at most.
const MAX_LINE_EXTRA: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a chunk-size line.
    SizeStart,
    /// In the hex digits.
    Size,
    /// After the digits: whitespace, then `;` or CR.
    SizeWs,
    /// In a chunk extension, until CR.
    Ext,
    /// Expecting LF after the size line's CR.
    SizeLf,
    /// Chunk data left to pass.
    Data,
    /// Expecting CR LF after data.
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// In a trailer field line, until CR.
    Trailer,
    TrailerLf,
    /// Expecting the final LF.
    EndLf,
    /// The body ended.
    Done,
}

/// Scans a chunked body across reads.
#[derive(Debug, Clone)]
pub struct ChunkedScanner {
    state: State,
    /// Chunk size being read, then data left in the chunk.
    size: u64,
    digits: u8,
    line_extra: usize,
    trailers: usize,
    /// Chunk data bytes seen (the decoded body's length).
    data: u64,
}

/// What one call to [`ChunkedScanner::scan`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Bytes of the input that belong to the body.
    pub consumed: usize,
    /// The body ended within those bytes.
    pub done: bool,
}

/// A chunked body that cannot be relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid chunked body: {0}")]
pub struct ChunkedError(pub &'static str);

impl Default for ChunkedScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedScanner {
    /// A scanner at the start of a body.
    pub fn new() -> Self {
        ChunkedScanner {
            state: State::SizeStart,
            size: 0,
            digits: 0,
            line_extra: 0,
            trailers: 0,
            data: 0,
        }
    }

    /// Chunk data bytes seen so far, framing excluded.
    pub fn data_len(&self) -> u64 {
        self.data
    }

    /// Whether the whole body has been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Scans the next bytes of the body.
    pub fn scan(&mut self, bytes: &[u8]) -> Result<Scan, ChunkedError> {
        let mut i = 0;
        while i < bytes.len() {
            if self.state == State::Data {
                let left = bytes.len() - i;
                let take = usize::try_from(self.size).map_or(left, |s| s.min(left));
                i += take;
                self.size -= take as u64;
                self.data += take as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let b = bytes.get(i).copied().unwrap_or_default();
            i += 1;
            self.step(b)?;
            if self.state == State::Done {
                return Ok(Scan {
                    consumed: i,
                    done: true,
                });
            }
        }
        Ok(Scan {
            consumed: i,
            done: self.state == State::Done,
        })
    }

    fn step(&mut self, b: u8) -> Result<(), ChunkedError> {
        let err = |m| Err(ChunkedError(m));
        match self.state {
            State::SizeStart | State::Size => match hex(b) {
                Some(d) => {
                    self.digits += 1;
                    if self.digits > 16 {
                        return err("chunk size too large");
                    }
                    self.size = (self.size << 4) | u64::from(d);
                    self.state = State::Size;
                }
                None if self.state == State::SizeStart => return err("missing chunk size"),
                None => {
                    self.line_extra = 0;
                    self.after_size(b)?;
                }
            },
            State::SizeWs => self.after_size(b)?,
            State::Ext => match b {
                b'\r' => self.state = State::SizeLf,
                b'\t' | b' '..=b'~' | 0x80..=0xFF => {
                    self.line_extra += 1;
                    if self.line_extra > MAX_LINE_EXTRA {
                        return err("chunk extension too long");
                    }
                }
                _ => return err("invalid byte in chunk extension"),
            },
            State::SizeLf => {
                if b != b'\n' {
                    return err("chunk size line not ended by CRLF");
                }
                self.digits = 0;
                if self.size == 0 {
                    self.state = State::TrailerStart;
                } else {
                    self.state = State::Data;
                }
            }
            State::Data => {}
            State::DataCr => {
                if b != b'\r' {
                    return err("chunk data longer than its size");
                }
                self.state = State::DataLf;
            }
            State::DataLf => {
                if b != b'\n' {
                    return err("chunk data not ended by CRLF");
                }
                self.state = State::SizeStart;
            }
            State::TrailerStart => match b {
                b'\r' => self.state = State::EndLf,
                b'\t' | b' ' => return err("obsolete line folding in trailers"),
                _ => {
                    self.state = State::Trailer;
                    self.trailer_byte(b)?;
                }
            },
            State::Trailer => match b {
                b'\r' => self.state = State::TrailerLf,
                _ => self.trailer_byte(b)?,
            },
            State::TrailerLf => {
                if b != b'\n' {
                    return err("trailer line not ended by CRLF");
                }
                self.state = State::TrailerStart;
            }
            State::EndLf => {
                if b != b'\n' {
                    return err("chunked body not ended by CRLF");
                }
                self.state = State::Done;
            }
            State::Done => return err("bytes after the end of the body"),
        }
        Ok(())
    }

    fn after_size(&mut self, b: u8) -> Result<(), ChunkedError> {
        match b {
            b' ' | b'\t' => {
                self.state = State::SizeWs;
                Ok(())
            }
            b';' => {
                self.state = State::Ext;
                Ok(())
            }
            b'\r' => {
                self.state = State::SizeLf;
                Ok(())
            }
            _ => Err(ChunkedError("invalid byte after chunk size")),
        }
    }

    fn trailer_byte(&mut self, b: u8) -> Result<(), ChunkedError> {
        self.trailers += 1;
        if self.trailers > MAX_TRAILERS {
            return Err(ChunkedError("trailers too large"));
        }
        match b {
            b'\t' | b' '..=b'~' | 0x80..=0xFF => Ok(()),
            _ => Err(ChunkedError("invalid byte in trailers")),
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(body: &[u8]) -> Result<Scan, ChunkedError> {
        ChunkedScanner::new().scan(body)
    }

    #[test]
    fn finds_the_end_in_one_read_and_across_reads() {
        let body = b"5\r\nhello\r\n1;ext=\"v\"\r\n!\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let end = body.len() - 4;
        assert_eq!(
            whole(body),
            Ok(Scan {
                consumed: end,
                done: true
            })
        );
        for split in 0..body.len() {
            let mut s = ChunkedScanner::new();
            let (a, b) = body.split_at(split);
            let first = s.scan(a).unwrap();
            let total = if first.done {
                first.consumed
            } else {
                assert_eq!(first.consumed, a.len());
                let second = s.scan(b).unwrap();
                assert!(second.done, "split {split}");
                a.len() + second.consumed
            };
            assert_eq!(total, end, "split {split}");
        }
    }

    #[test]
    fn refuses_malformed_bodies() {
        for bad in [
            &b"zz\r\nhello\r\n0\r\n\r\n"[..],
            b"ffffffffffffffffff\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhello!\r\n0\r\n\r\n",
            b"5 x\r\nhello\r\n0\r\n\r\n",
            b"\r\n",
            b"-1\r\n",
            b"0\r\n folded\r\n\r\n",
            b"0\r\nX: a\nb\r\n\r\n",
            b"5;\x01\r\nhello\r\n",
        ] {
            assert!(whole(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn large_chunks_are_skipped_not_walked() {
        let mut s = ChunkedScanner::new();
        assert!(!s.scan(b"100000\r\n").unwrap().done);
        let data = vec![b'x'; 0x100000];
        assert_eq!(s.scan(&data).unwrap().consumed, data.len());
        assert!(s.scan(b"\r\n0\r\n\r\n").unwrap().done);
    }
}
