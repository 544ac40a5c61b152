//! Lowercase hex, for ids on the request path (no allocation).

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lowercase hex into `out`, which must be twice as long.
pub(crate) fn encode_into(bytes: &[u8], out: &mut [u8]) {
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
}

/// Decodes lowercase hex into `out` (half as long as `hex`); `None` on any
/// other character, uppercase included (W3C trace context wants lowercase).
pub(crate) fn decode_lower<const N: usize>(hex: &[u8]) -> Option<[u8; N]> {
    if hex.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *o = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_uppercase() {
        let mut out = [0u8; 6];
        encode_into(&[0x00, 0xab, 0xf1], &mut out);
        assert_eq!(&out, b"00abf1");
        assert_eq!(decode_lower::<3>(b"00abf1"), Some([0x00, 0xab, 0xf1]));
        assert_eq!(decode_lower::<3>(b"00ABF1"), None);
        assert_eq!(decode_lower::<3>(b"00abf"), None);
        assert_eq!(decode_lower::<1>(b"g0"), None);
    }
}
