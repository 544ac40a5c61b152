//! Request path normalization, done once before matching; the upstream receives
//! the result, so what the gateway checked is what the service sees.
//!
//! Rules (see DESIGN.md, "Path normalization"):
//! - percent-encoded *unreserved* characters (ALPHA DIGIT `-._~`) are decoded, so
//!   `%2e%2e` becomes `..` and is then resolved like a literal `..`;
//! - every other escape stays encoded, its hex uppercased (`%2f` becomes `%2F`);
//! - `.` and `..` segments are removed (RFC 3986 `remove_dot_segments`; `..` above
//!   the root stays at the root) and duplicate slashes merged;
//! - `%2F` and `%5C` are never separators: they stay encoded and set
//!   [`NormalizedPath::encoded_separator`] so the gateway can refuse them;
//! - anything a server behind us might read differently is an error ([`PathError`]).

use std::borrow::Cow;

/// A normalized request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPath<'a> {
    /// The normalized path; borrowed from the input when it needed no change.
    pub path: Cow<'a, str>,
    /// The path holds an encoded separator (`%2F` or `%5C`). It stays encoded,
    /// never a separator; the gateway answers 400 unless the route allows it.
    pub encoded_separator: bool,
}

/// Why a request path was refused. Every variant is the client's fault (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/` (this includes `*` and the empty string).
    #[error("path does not start with '/'")]
    NotAbsolute,
    /// A raw control byte (0x00-0x1F, 0x7F).
    #[error("path contains a control byte")]
    ControlByte,
    /// A percent-encoded control byte, `%00` included.
    #[error("path contains an encoded control byte (e.g. %00)")]
    EncodedControl,
    /// A `%` not followed by two hex digits.
    #[error("bad percent-encoding in path")]
    BadPercentEncoding,
    /// A raw backslash, which some servers read as a separator.
    #[error("path contains a raw backslash")]
    Backslash,
    /// A dot-segment carrying parameters (`..;`, `.;x`, `%2e%2e;`), which some
    /// servers (Tomcat, Jetty) read as a plain `..`.
    #[error("dot-segment carries parameters (e.g. '..;')")]
    DotSegmentParams,
}

/// Normalizes a request path (the query already split off by the caller).
///
/// Returns the input borrowed, without allocating, when it is already normal
/// (the common case).
pub fn normalize_path(raw: &str) -> Result<NormalizedPath<'_>, PathError> {
    if let Some(encoded_separator) = already_normal(raw) {
        return Ok(NormalizedPath {
            path: Cow::Borrowed(raw),
            encoded_separator,
        });
    }
    normalize_slow(raw)
}

/// The fast path: `Some(encoded_separator)` when `raw` needs no change. Anything
/// unusual returns `None` and the slow path decides (and reports errors).
fn already_normal(raw: &str) -> Option<bool> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return None;
    }
    let mut encoded_separator = false;
    let mut seg_start = 1;
    let mut i = 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'/' => {
                if i == seg_start {
                    return None; // "//"
                }
                seg_start = i + 1;
            }
            b'.' if i == seg_start && dot_segment_risk(bytes.get(i + 1..).unwrap_or_default()) => {
                return None;
            }
            b'%' => {
                let hi = upper_hex_value(*bytes.get(i + 1)?)?;
                let lo = upper_hex_value(*bytes.get(i + 2)?)?;
                let v = (hi << 4) | lo;
                if is_unreserved(v) || is_control(v) {
                    return None;
                }
                encoded_separator |= is_separator(v);
                i += 3;
                continue;
            }
            b'\\' => return None,
            _ if is_control(b) => return None,
            _ => {}
        }
        i += 1;
    }
    Some(encoded_separator)
}

/// After a segment's leading `.`: could this be `.`, `..` or a dot-segment with
/// parameters? Then take the slow path. (An encoded dot, `%2E`, takes it anyway:
/// every escape of an unreserved character does.)
fn dot_segment_risk(after_dot: &[u8]) -> bool {
    let rest = after_dot.strip_prefix(b".").unwrap_or(after_dot);
    matches!(rest.first(), None | Some(b'/' | b';')) || rest.starts_with(b"%3B")
}

fn normalize_slow(raw: &str) -> Result<NormalizedPath<'static>, PathError> {
    let rest = raw.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
    // Invariant: `out` ends with '/' after every processed segment.
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    out.push(b'/');
    let mut encoded_separator = false;
    let mut last_is_normal = false;
    for seg in rest.as_bytes().split(|&b| b == b'/') {
        let start = out.len();
        decode_segment(seg, &mut out, &mut encoded_separator)?;
        last_is_normal = false;
        match classify(out.get(start..).unwrap_or_default()) {
            Segment::Empty => {}
            Segment::Dot => out.truncate(start),
            Segment::DotDot => {
                out.truncate(start);
                pop_segment(&mut out);
            }
            Segment::DotParams => return Err(PathError::DotSegmentParams),
            Segment::Normal => {
                out.push(b'/');
                last_is_normal = true;
            }
        }
    }
    if last_is_normal {
        out.pop();
    }
    // Only whole UTF-8 input runs and ASCII were copied, so this cannot fail;
    // map the impossible error rather than panic.
    let path = String::from_utf8(out).map_err(|_| PathError::BadPercentEncoding)?;
    Ok(NormalizedPath {
        path: Cow::Owned(path),
        encoded_separator,
    })
}

/// Appends `seg` to `out`, decoding unreserved escapes and uppercasing the rest.
fn decode_segment(
    seg: &[u8],
    out: &mut Vec<u8>,
    encoded_separator: &mut bool,
) -> Result<(), PathError> {
    let mut i = 0;
    while let Some(&b) = seg.get(i) {
        match b {
            b'%' => {
                let hex = |j: usize| seg.get(j).copied().and_then(hex_value);
                let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                    return Err(PathError::BadPercentEncoding);
                };
                let v = (hi << 4) | lo;
                if is_control(v) {
                    return Err(PathError::EncodedControl);
                }
                if is_unreserved(v) {
                    out.push(v);
                } else {
                    *encoded_separator |= is_separator(v);
                    out.extend_from_slice(&[b'%', hex_digit(hi), hex_digit(lo)]);
                }
                i += 3;
            }
            b'\\' => return Err(PathError::Backslash),
            _ if is_control(b) => return Err(PathError::ControlByte),
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(())
}

enum Segment {
    Empty,
    Dot,
    DotDot,
    DotParams,
    Normal,
}

/// Classifies a decoded segment. `%3B` (an encoded `;`) counts as a parameter
/// too: a server that decodes before splitting parameters would see `..;`.
fn classify(seg: &[u8]) -> Segment {
    match seg {
        b"" => Segment::Empty,
        b"." => Segment::Dot,
        b".." => Segment::DotDot,
        _ => {
            let params = |after: &[u8]| after.starts_with(b";") || after.starts_with(b"%3B");
            let after_dots = seg.strip_prefix(b"..").or_else(|| seg.strip_prefix(b"."));
            match after_dots {
                Some(after) if params(after) => Segment::DotParams,
                _ => Segment::Normal,
            }
        }
    }
}

/// Removes the last segment of `out` (which ends with '/'), staying at the root.
fn pop_segment(out: &mut Vec<u8>) {
    let without_slash = out.len().saturating_sub(1);
    let prev = out
        .get(..without_slash)
        .and_then(|s| s.iter().rposition(|&b| b == b'/'));
    if let Some(p) = prev {
        out.truncate(p + 1);
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

fn is_separator(b: u8) -> bool {
    b == b'/' || b == b'\\'
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Like [`hex_value`] but only for the canonical (uppercase) form.
fn upper_hex_value(b: u8) -> Option<u8> {
    if b.is_ascii_lowercase() {
        None
    } else {
        hex_value(b)
    }
}

fn hex_digit(n: u8) -> u8 {
    if n < 10 {
        b'0' + n
    } else {
        b'A' + (n - 10)
    }
}

#[cfg(test)]
mod tests;
