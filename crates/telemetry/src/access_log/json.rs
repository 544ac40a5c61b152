//! Minimal JSON value writers for the access log line.
//!
//! Hand-rolled rather than serde: the line has a fixed shape, and writing
//! straight into a reused buffer avoids any intermediate allocation.

use std::cell::Cell;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `s` as a quoted JSON string.
///
/// Escapes what JSON requires (`"`, `\`, U+0000..U+001F) and, so a log line
/// cannot drive a terminal or split a line in a JavaScript viewer, also DEL,
/// the C1 controls U+0080..U+009F and U+2028/U+2029. Everything else is
/// copied as UTF-8 in runs.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        // One table load per byte in the common case; only flagged lead
        // bytes need the closer look below.
        if !NEEDS_CHECK[usize::from(b[i])] {
            i += 1;
            continue;
        }
        let Some((len, cp)) = escape_at(b, i) else {
            i += 1;
            continue;
        };
        out.extend_from_slice(&b[start..i]);
        match cp {
            0x22 => out.extend_from_slice(b"\\\""),
            0x5c => out.extend_from_slice(b"\\\\"),
            0x0a => out.extend_from_slice(b"\\n"),
            0x0d => out.extend_from_slice(b"\\r"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            cp => {
                out.extend_from_slice(b"\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(HEX[((cp >> shift) & 0xf) as usize]);
                }
            }
        }
        i += len;
        start = i;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// Bytes that are, or may start, a sequence to escape.
static NEEDS_CHECK: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = true;
        c += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[0x7f] = true;
    t[0xc2] = true; // U+0080..U+009F
    t[0xe2] = true; // U+2028, U+2029
    t
};

/// The escape starting at `b[i]`: bytes covered and code point.
fn escape_at(b: &[u8], i: usize) -> Option<(usize, u32)> {
    let c = *b.get(i)?;
    match c {
        0x00..=0x1f | b'"' | b'\\' | 0x7f => Some((1, u32::from(c))),
        0xc2 => match b.get(i + 1) {
            Some(&n @ 0x80..=0x9f) => Some((2, u32::from(n))),
            _ => None,
        },
        0xe2 => match (b.get(i + 1), b.get(i + 2)) {
            (Some(0x80), Some(0xa8)) => Some((3, 0x2028)),
            (Some(0x80), Some(0xa9)) => Some((3, 0x2029)),
            _ => None,
        },
        _ => None,
    }
}

/// Writes a socket address as a JSON string; IPv4 by hand (the common case,
/// and `fmt` machinery costs more than the rest of the line), IPv6 via
/// `Display` (no allocation either way).
pub(crate) fn write_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    out.push(b'"');
    match addr {
        SocketAddr::V4(a) => {
            let [o1, o2, o3, o4] = a.ip().octets();
            write_u64(out, u64::from(o1));
            for o in [o2, o3, o4] {
                out.push(b'.');
                write_u64(out, u64::from(o));
            }
            out.push(b':');
            write_u64(out, u64::from(a.port()));
        }
        SocketAddr::V6(a) => {
            // Writing into a Vec cannot fail.
            let _ = write!(out, "{a}");
        }
    }
    out.push(b'"');
}

/// Writes an unsigned integer in decimal.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut pos = tmp.len();
    loop {
        pos -= 1;
        tmp[pos] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[pos..]);
}

/// Writes a duration as seconds with microsecond precision (`0.001234`),
/// using integer math only.
pub(crate) fn write_secs(out: &mut Vec<u8>, d: Duration) {
    write_u64(out, d.as_secs());
    out.push(b'.');
    let micros = d.subsec_micros();
    for div in [100_000, 10_000, 1_000, 100, 10, 1] {
        out.push(b'0' + ((micros / div) % 10) as u8);
    }
}

/// The largest time `YYYY` can show: 9999-12-31T23:59:59Z.
const MAX_SECS: u64 = 253_402_300_799;

thread_local! {
    /// The last second formatted on this thread: `YYYY-MM-DDTHH:MM:SS`.
    /// Log lines arrive in bursts within the same second, so the calendar
    /// math runs about once per second per thread.
    static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
}

/// Writes `t` as a quoted RFC 3339 UTC timestamp with milliseconds,
/// e.g. `"2024-05-01T12:34:56.789Z"`. Times before 1970 print as the epoch.
pub(crate) fn write_time(out: &mut Vec<u8>, t: SystemTime) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs().min(MAX_SECS);
    let text = SECOND.with(|cache| {
        let (cached, text) = cache.get();
        if cached == secs {
            text
        } else {
            let text = format_second(secs);
            cache.set((secs, text));
            text
        }
    });
    out.push(b'"');
    out.extend_from_slice(&text);
    out.push(b'.');
    let ms = since.subsec_millis();
    out.extend_from_slice(&[
        b'0' + (ms / 100) as u8,
        b'0' + (ms / 10 % 10) as u8,
        b'0' + (ms % 10) as u8,
        b'Z',
        b'"',
    ]);
}

fn format_second(secs: u64) -> [u8; 19] {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem / 60 % 60, rem % 60);
    let mut t = *b"0000-00-00T00:00:00";
    let mut put = |at: usize, v: u64, width: usize| {
        let mut v = v;
        for i in (at..at + width).rev() {
            if let Some(slot) = t.get_mut(i) {
                *slot = b'0' + (v % 10) as u8;
            }
            v /= 10;
        }
    };
    put(0, y, 4);
    put(5, m, 2);
    put(8, d, 2);
    put(11, hh, 2);
    put(14, mm, 2);
    put(17, ss, 2);
    t
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
/// Howard Hinnant's `civil_from_days`, restricted to non-negative days.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn string_escaping() {
        assert_eq!(s(|o| write_str(o, "plain")), r#""plain""#);
        assert_eq!(s(|o| write_str(o, "a\"b\\c")), r#""a\"b\\c""#);
        assert_eq!(
            s(|o| write_str(o, "\n\r\t\u{8}\u{c}\u{0}\u{1b}[31m\u{7f}")),
            r#""\n\r\t\b\f\u0000\u001b[31m\u007f""#
        );
        assert_eq!(s(|o| write_str(o, "\u{85}x\u{9f}")), r#""\u0085x\u009f""#);
        assert_eq!(
            s(|o| write_str(o, "a\u{2028}b\u{2029}")),
            r#""a\u2028b\u2029""#
        );
        // Other non-ASCII passes through untouched.
        assert_eq!(
            s(|o| write_str(o, "関所 é \u{a0} \u{2027}")),
            "\"関所 é \u{a0} \u{2027}\""
        );
    }

    #[test]
    fn escaped_strings_parse_back() {
        let inputs = ["", "\"", "\\\\", "x\u{1}y", "\u{10ffff}", "ü\u{80}\u{2028}"];
        for input in inputs {
            let out = s(|o| write_str(o, input));
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, input);
        }
    }

    #[test]
    fn addresses() {
        for a in [
            "127.0.0.1:8080",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "[::1]:9102",
        ] {
            assert_eq!(s(|o| write_addr(o, a.parse().unwrap())), format!("\"{a}\""));
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(s(|o| write_u64(o, 0)), "0");
        assert_eq!(s(|o| write_u64(o, u64::MAX)), u64::MAX.to_string());
        assert_eq!(
            s(|o| write_secs(o, Duration::from_micros(1_234))),
            "0.001234"
        );
        assert_eq!(
            s(|o| write_secs(o, Duration::new(12, 5_000_999))),
            "12.005000"
        );
    }

    #[test]
    fn rfc3339_times() {
        let at = |secs, ms| UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(ms);
        assert_eq!(
            s(|o| write_time(o, at(0, 0))),
            r#""1970-01-01T00:00:00.000Z""#
        );
        assert_eq!(
            s(|o| write_time(o, at(951_782_400, 7))),
            r#""2000-02-29T00:00:00.007Z""#
        );
        assert_eq!(
            s(|o| write_time(o, at(1_714_566_896, 789))),
            r#""2024-05-01T12:34:56.789Z""#
        );
        // Cached second, new milliseconds.
        assert_eq!(
            s(|o| write_time(o, at(1_714_566_896, 5))),
            r#""2024-05-01T12:34:56.005Z""#
        );
        assert_eq!(
            s(|o| write_time(o, at(4_102_444_799, 999))),
            r#""2099-12-31T23:59:59.999Z""#
        );
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(
            s(|o| write_time(o, before)),
            r#""1970-01-01T00:00:00.000Z""#
        );
    }

    #[test]
    fn calendar_matches_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }
}
