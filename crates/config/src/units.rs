//! Human-readable durations (`250ms`, `1m30s`) and sizes (`64KiB`, `1MB`).

use std::time::Duration;

/// What the duration error message offers as examples.
const DURATION_FORMS: &str = "expected e.g. 250ms, 3s, 1m30s";
/// What the size error message offers as examples.
const SIZE_FORMS: &str =
    "expected bytes like 512, or 64KiB, 1MiB, 1GiB (1024-based), or 1KB, 1MB, 1GB (1000-based)";

/// A duration or size that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Not of the form `<number><unit>...`.
    #[error("invalid duration {0:?} ({DURATION_FORMS})")]
    Duration(String),
    /// Larger than the gateway can represent.
    #[error("duration {0:?} is too large")]
    DurationTooLarge(String),
    /// Not of the form `<number>[unit]`.
    #[error("invalid size {0:?} ({SIZE_FORMS})")]
    Size(String),
    /// Larger than 2^64 - 1 bytes.
    #[error("size {0:?} is too large")]
    SizeTooLarge(String),
}

/// Duration units, longest name first so `ms` is not read as `m` + `s`.
const DURATION_UNITS: &[(&str, u128)] = &[
    ("ms", 1_000_000),
    ("us", 1_000),
    ("µs", 1_000),
    ("ns", 1),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
];

/// Parses `500us`, `250ms`, `3s`, `1.5s`, `1m30s`, `1h` (units `h m s ms us ns`, summed).
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let bad = || UnitError::Duration(text.to_string());
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (number, tail) = rest.split_at(num_len);
        let (unit, scale) = DURATION_UNITS
            .iter()
            .find(|(u, _)| tail.starts_with(u))
            .ok_or_else(bad)?;
        let nanos = scaled(number, *scale).ok_or_else(bad)?;
        total = total
            .checked_add(nanos)
            .ok_or_else(|| UnitError::DurationTooLarge(text.to_string()))?;
        rest = &tail[unit.len()..];
    }
    let nanos = u64::try_from(total).map_err(|_| UnitError::DurationTooLarge(text.to_string()))?;
    Ok(Duration::from_nanos(nanos))
}

/// `number` (digits, optionally `.digits`) times `scale`, truncated; None if malformed.
fn scaled(number: &str, scale: u128) -> Option<u128> {
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if int.is_empty() || int.len() > 20 || frac.contains('.') || number.ends_with('.') {
        return None;
    }
    let mut value = int.parse::<u128>().ok()?.checked_mul(scale)?;
    let mut unit = scale;
    for d in frac.chars().take(18) {
        unit /= 10;
        value = value.checked_add(u128::from(d.to_digit(10)?) * unit)?;
    }
    Some(value)
}

/// Size units; a bare number is bytes.
const SIZE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
];

/// Parses `512`, `512B`, `64KiB`, `1MiB`, `1GiB` (1024-based) and `1KB`, `1MB`, `1GB` (1000-based).
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let bad = || UnitError::Size(text.to_string());
    let t = text.trim();
    let num_len = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(num_len);
    if number.is_empty() {
        return Err(bad());
    }
    let unit = unit.trim_start();
    let scale = if unit.is_empty() {
        1
    } else {
        SIZE_UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, s)| *s)
            .ok_or_else(bad)?
    };
    let n: u64 = number
        .parse()
        .map_err(|_| UnitError::SizeTooLarge(text.to_string()))?;
    n.checked_mul(scale)
        .ok_or_else(|| UnitError::SizeTooLarge(text.to_string()))
}

/// Formats a duration so that [`parse_duration`] reads it back: `1m30s`, `250ms`, `0s`.
pub fn format_duration(d: Duration) -> String {
    let mut nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, scale) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        let n = nanos / scale;
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
            nanos %= scale;
        }
    }
    out
}

/// Formats a size in the largest 1024-based unit that divides it exactly, else bytes.
pub fn format_size(bytes: u64) -> String {
    for (unit, scale) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= scale && bytes % scale == 0 {
            return format!("{}{unit}", bytes / scale);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = |s: &str| parse_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(ok("500us"), Duration::from_micros(500));
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("3s"), Duration::from_secs(3));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("1m"), Duration::from_secs(60));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("0.25ms"), Duration::from_micros(250));
    }

    #[test]
    fn bad_durations_name_the_forms() {
        for s in [
            "3x", "3", "", "s", "1.s", ".5s", "1..5s", "1m30", "-1s", "1 s",
        ] {
            assert!(parse_duration(s).is_err(), "{s:?} parsed");
        }
        assert_eq!(
            parse_duration("3x").err().map(|e| e.to_string()),
            Some("invalid duration \"3x\" (expected e.g. 250ms, 3s, 1m30s)".to_string())
        );
        assert!(matches!(
            parse_duration("99999999999999999h"),
            Err(UnitError::DurationTooLarge(_))
        ));
    }

    #[test]
    fn sizes() {
        let ok = |s: &str| parse_size(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(ok("512"), 512);
        assert_eq!(ok("512B"), 512);
        assert_eq!(ok("64KiB"), 65536);
        assert_eq!(ok("1MiB"), 1 << 20);
        assert_eq!(ok("1GiB"), 1 << 30);
        assert_eq!(ok("1KB"), 1000);
        assert_eq!(ok("1MB"), 1_000_000);
        assert_eq!(ok("1GB"), 1_000_000_000);
        assert_eq!(ok("2 MiB"), 2 << 20);
    }

    #[test]
    fn bad_sizes() {
        for s in ["", "KiB", "1kib", "1.5MiB", "-1", "1 x", "1Mb"] {
            assert!(parse_size(s).is_err(), "{s:?} parsed");
        }
        assert!(matches!(
            parse_size("99999999999GiB"),
            Err(UnitError::SizeTooLarge(_))
        ));
        assert!(parse_size("1x")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("64KiB"));
    }

    #[test]
    fn formats_round_trip() {
        for s in ["1m30s", "250ms", "1h", "1s500ms", "500us", "0s"] {
            let d = parse_duration(s).unwrap_or_default();
            assert_eq!(format_duration(d), s);
        }
        assert_eq!(format_size(65536), "64KiB");
        assert_eq!(format_size(1 << 20), "1MiB");
        assert_eq!(format_size(1000), "1000");
    }
}
