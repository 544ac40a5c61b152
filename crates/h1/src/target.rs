//! The request target's bytes, checked with the `http` crate's tables (the general
//! pipeline parses targets with it), except that a fragment is refused, not dropped: it
//! never belongs in a request (RFC 9112 §3.2).

const VALID: u8 = 1;
const QUERY: u8 = 2;
const INVALID: u8 = 0;

const fn path_map() -> [u8; 256] {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = match i as u8 {
            b'?' => QUERY,
            0x21 | 0x24..=0x3B | 0x3D | 0x40..=0x5F | 0x61..=0x7A | 0x7C | 0x7E => VALID,
            // Sent unencoded by some clients (JSON in paths); `http` accepts them too.
            b'"' | b'{' | b'}' => VALID,
            // UTF-8 (httparse already checked the target is valid UTF-8).
            0x80..=0xFF => VALID,
            _ => INVALID,
        };
        i += 1;
    }
    t
}

const fn query_map() -> [u8; 256] {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = match i as u8 {
            0x21 | 0x24..=0x3B | 0x3D | 0x3F..=0x7E => VALID,
            0x80..=0xFF => VALID,
            _ => INVALID,
        };
        i += 1;
    }
    t
}

static PATH: [u8; 256] = path_map();
static QUERY_CHARS: [u8; 256] = query_map();

/// Checks an origin-form target (`/path?query`); returns where the query starts (the
/// index of `?`), if any.
pub(crate) fn check_origin_form(target: &[u8]) -> Result<Option<usize>, &'static str> {
    if target.len() >= usize::from(u16::MAX) {
        return Err("request target too long");
    }
    let mut query = None;
    for (i, &b) in target.iter().enumerate() {
        match query {
            None => match PATH[usize::from(b)] {
                VALID => {}
                QUERY => query = Some(i),
                _ => return Err("invalid byte in the request path"),
            },
            Some(_) => {
                if QUERY_CHARS[usize::from(b)] != VALID {
                    return Err("invalid byte in the query");
                }
            }
        }
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::check_origin_form;

    #[test]
    fn origin_form_bytes() {
        assert_eq!(check_origin_form(b"/a/b"), Ok(None));
        assert_eq!(check_origin_form(b"/a?b=c&d=/?"), Ok(Some(2)));
        assert_eq!(check_origin_form(b"/{\"a\":1}|~"), Ok(None));
        assert_eq!(check_origin_form("/caf\u{e9}".as_bytes()), Ok(None));
        for bad in [
            &b"/a#frag"[..],
            b"/a<b",
            b"/a>b",
            b"/a`b",
            b"/a?b\"c",
            b"/a?b#c",
        ] {
            assert!(check_origin_form(bad).is_err(), "{:?}", bad);
        }
        assert_eq!(
            check_origin_form(b"/a?`"),
            Ok(Some(2)),
            "backtick is fine in a query"
        );
    }
}
