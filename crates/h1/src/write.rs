//! Writing heads and chunk framing into a byte buffer.

/// Appends `name: value\r\n`.
#[inline]
pub fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.reserve(name.len() + value.len() + 4);
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `HTTP/1.1 <code> <reason>\r\n`.
pub fn status_line(out: &mut Vec<u8>, code: u16, reason: &[u8]) {
    out.extend_from_slice(b"HTTP/1.1 ");
    decimal(out, u64::from(code));
    out.push(b' ');
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal.
pub fn decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
}

/// The size line that starts a chunk of `len` bytes (`len` in hex, CRLF).
pub fn chunk_size_line(len: usize) -> ([u8; 18], usize) {
    let mut line = [0u8; 18];
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut n = len;
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b"0123456789abcdef"[n & 0xf];
        }
        n >>= 4;
        if n == 0 || i == 0 {
            break;
        }
    }
    let hex = digits.get(i..).unwrap_or_default();
    let end = hex.len() + 2;
    if let Some(dst) = line.get_mut(..hex.len()) {
        dst.copy_from_slice(hex);
    }
    if let Some(dst) = line.get_mut(hex.len()..end) {
        dst.copy_from_slice(b"\r\n");
    }
    (line, end)
}

/// The last chunk and the end of a chunked body without trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let mut out = Vec::new();
        status_line(&mut out, 204, b"No Content");
        header(&mut out, b"x-a", b"1");
        decimal(&mut out, 0);
        decimal(&mut out, 18_446_744_073_709_551_615);
        assert_eq!(
            out,
            b"HTTP/1.1 204 No Content\r\nx-a: 1\r\n018446744073709551615".to_vec()
        );
        let (l, n) = chunk_size_line(0x1a2b);
        assert_eq!(&l[..n], b"1a2b\r\n");
        let (l, n) = chunk_size_line(0);
        assert_eq!(&l[..n], b"0\r\n");
        let (l, n) = chunk_size_line(usize::MAX);
        assert_eq!(&l[..n], b"ffffffffffffffff\r\n");
    }
}
