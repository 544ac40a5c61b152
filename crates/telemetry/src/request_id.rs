//! Request ids: generated ones, and validation of a client's `X-Request-Id`.
//!
//! A generated id is 32 lowercase hex characters (128 bits): a random 64-bit
//! prefix chosen once per process, then a process-wide counter passed through
//! a bijective mixer. So ids never repeat within a process, differ between
//! processes with overwhelming probability, do not reveal the request rate,
//! and cost one atomic add, with no syscall and no allocation.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::hex;

/// Longest client-supplied id accepted.
pub const MAX_LEN: usize = 128;

/// Length of a generated id.
pub const GENERATED_LEN: usize = 32;

/// A request id, stored inline (no allocation).
#[derive(Clone, Copy)]
pub struct RequestId {
    len: u8,
    buf: [u8; MAX_LEN],
}

/// Why a client's request id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRequestId {
    /// The header was empty.
    #[error("request id is empty")]
    Empty,
    /// Longer than [`MAX_LEN`] bytes.
    #[error("request id is {0} bytes, more than {MAX_LEN}")]
    TooLong(usize),
    /// A byte that is not visible ASCII, or is a space or a quote.
    #[error("request id has a forbidden byte at {0}")]
    ForbiddenByte(usize),
}

struct Seed {
    prefix: u64,
    offset: u64,
}

static SEED: OnceLock<Seed> = OnceLock::new();
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new unique id.
pub fn new_request_id() -> RequestId {
    let seed = SEED.get_or_init(|| Seed {
        prefix: fastrand::u64(..),
        offset: fastrand::u64(..),
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let low = mix(n.wrapping_add(seed.offset));
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&seed.prefix.to_be_bytes());
    raw[8..].copy_from_slice(&low.to_be_bytes());
    let mut buf = [0u8; MAX_LEN];
    hex::encode_into(&raw, &mut buf[..GENERATED_LEN]);
    RequestId {
        len: GENERATED_LEN as u8,
        buf,
    }
}

/// The splitmix64 finalizer: a bijection on `u64`, so distinct counters give
/// distinct outputs, and consecutive ones look unrelated.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl RequestId {
    /// Accepts a client's id: 1 to 128 bytes of visible ASCII (`!`..=`~`)
    /// other than `"` and `'`, so it is safe in logs and headers as is.
    pub fn from_client(value: &[u8]) -> Result<Self, InvalidRequestId> {
        if value.is_empty() {
            return Err(InvalidRequestId::Empty);
        }
        if value.len() > MAX_LEN {
            return Err(InvalidRequestId::TooLong(value.len()));
        }
        if let Some(at) = value
            .iter()
            .position(|b| !b.is_ascii_graphic() || *b == b'"' || *b == b'\'')
        {
            return Err(InvalidRequestId::ForbiddenByte(at));
        }
        let mut buf = [0u8; MAX_LEN];
        buf[..value.len()].copy_from_slice(value);
        Ok(Self {
            len: value.len() as u8,
            buf,
        })
    }

    /// The client's id when present and valid, otherwise a new one.
    pub fn from_header_or_new(value: Option<&[u8]>) -> Self {
        value
            .and_then(|v| Self::from_client(v).ok())
            .unwrap_or_else(new_request_id)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored, so this never falls back.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The id as bytes (ASCII), e.g. for a header value.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or_default()
    }
}

impl AsRef<str> for RequestId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequestId").field(&self.as_str()).finish()
    }
}

impl PartialEq for RequestId {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for RequestId {}

impl std::hash::Hash for RequestId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_ids_are_32_lowercase_hex_and_unique() {
        let ids: Vec<RequestId> = (0..10_000).map(|_| new_request_id()).collect();
        for id in &ids {
            assert_eq!(id.as_str().len(), GENERATED_LEN);
            assert!(id
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }
        let set: HashSet<&str> = ids.iter().map(RequestId::as_str).collect();
        assert_eq!(set.len(), ids.len());
        // Same process prefix, unrelated-looking tails.
        assert_eq!(ids[0].as_str()[..16], ids[1].as_str()[..16]);
        assert_ne!(ids[0].as_str()[16..30], ids[1].as_str()[16..30]);
    }

    #[test]
    fn unique_across_threads() {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| (0..5_000).map(|_| new_request_id()).collect::<Vec<_>>())
            })
            .collect();
        let mut set = HashSet::new();
        for t in threads {
            for id in t.join().unwrap() {
                assert!(set.insert(id));
            }
        }
        assert_eq!(set.len(), 20_000);
    }

    #[test]
    fn client_ids() {
        let ok = RequestId::from_client(b"abc-123_XYZ:/=+.~!").unwrap();
        assert_eq!(ok.as_str(), "abc-123_XYZ:/=+.~!");
        assert_eq!(ok.to_string(), "abc-123_XYZ:/=+.~!");
        assert!(RequestId::from_client(&[b'x'; MAX_LEN]).is_ok());
        assert_eq!(
            RequestId::from_client(&[b'x'; MAX_LEN + 1]),
            Err(InvalidRequestId::TooLong(MAX_LEN + 1))
        );
        assert_eq!(RequestId::from_client(b""), Err(InvalidRequestId::Empty));
        for (bad, at) in [
            (&b"a b"[..], 1),
            (b"a\"b", 1),
            (b"'", 0),
            (b"ab\t", 2),
            (b"a\x7f", 1),
            (b"\xc3\xa9", 0),
            (b"x\n", 1),
        ] {
            assert_eq!(
                RequestId::from_client(bad),
                Err(InvalidRequestId::ForbiddenByte(at)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn header_or_new() {
        assert_eq!(
            RequestId::from_header_or_new(Some(b"given")).as_str(),
            "given"
        );
        assert_eq!(
            RequestId::from_header_or_new(Some(b"bad id"))
                .as_str()
                .len(),
            GENERATED_LEN
        );
        assert_eq!(
            RequestId::from_header_or_new(None).as_str().len(),
            GENERATED_LEN
        );
    }

    #[test]
    fn mixer_is_not_identity_and_differs_per_input() {
        assert_ne!(mix(1), 1);
        assert_ne!(mix(1), mix(2));
    }
}
