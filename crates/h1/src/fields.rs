//! Reading the header fields that decide framing and connection handling.

/// Trims optional whitespace (SP / HTAB) around a field value (or a list element).
pub fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    v.get(start..end).unwrap_or_default()
}

/// `Content-Length`: plain decimal digits only (no sign, no list, no spaces inside).
pub(crate) fn content_length(v: &[u8]) -> Option<u64> {
    let v = trim_ows(v);
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// What a `Transfer-Encoding` list says about framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codings {
    /// Exactly `chunked`.
    Chunked,
    /// A valid list ending in `chunked`, with other codings before it (e.g. `gzip, chunked`).
    ChunkedAfterOthers,
    /// A valid list whose last coding is not `chunked`.
    NotChunkedLast,
    /// Empty elements only, `chunked` twice, or a coding that is not a token.
    Invalid,
}

/// Folds one `Transfer-Encoding` field value into `state` (several fields form one list).
/// `state` is `(codings seen, chunked seen, last was chunked)`.
pub(crate) fn fold_codings(v: &[u8], state: &mut (usize, bool, bool)) -> bool {
    for coding in v.split(|&b| b == b',') {
        let coding = trim_ows(coding);
        if coding.is_empty() {
            continue;
        }
        // A coding may carry parameters (`gzip;q=1` is not valid here, but `x;a=b` is):
        // only its name matters for framing.
        let name = coding
            .split(|&b| b == b';')
            .next()
            .map(trim_ows)
            .unwrap_or_default();
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return false;
        }
        if state.1 {
            // Anything after `chunked`, including a second `chunked`, makes the body's
            // end undecidable.
            return false;
        }
        let chunked = name.eq_ignore_ascii_case(b"chunked");
        state.0 += 1;
        state.1 = chunked;
        state.2 = chunked;
    }
    true
}

/// The verdict on a folded coding list.
pub(crate) fn codings_verdict(valid: bool, state: (usize, bool, bool)) -> Codings {
    match (valid, state) {
        (false, _) | (true, (0, _, _)) => Codings::Invalid,
        (true, (1, _, true)) => Codings::Chunked,
        (true, (_, _, true)) => Codings::ChunkedAfterOthers,
        (true, _) => Codings::NotChunkedLast,
    }
}

/// `tchar` (RFC 9110 §5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// The options a message's `Connection` fields carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionTokens {
    /// `close`.
    pub close: bool,
    /// `keep-alive` (HTTP/1.0 persistence).
    pub keep_alive: bool,
    /// `upgrade`.
    pub upgrade: bool,
    /// Some other option: a header field the sender wants removed at this hop.
    pub names_fields: bool,
}

impl ConnectionTokens {
    /// Folds one `Connection` field value in.
    pub(crate) fn fold(&mut self, v: &[u8]) {
        for token in v.split(|&b| b == b',') {
            let token = trim_ows(token);
            if token.is_empty() {
                continue;
            }
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if token.eq_ignore_ascii_case(b"upgrade") {
                self.upgrade = true;
            } else {
                self.names_fields = true;
            }
        }
    }

    /// Whether `name` is listed as an option in these `Connection` values (a field to drop
    /// at this hop). Only worth calling when [`ConnectionTokens::names_fields`] is set.
    pub fn lists<'a>(values: impl IntoIterator<Item = &'a [u8]>, name: &str) -> bool {
        values.into_iter().any(|v| {
            v.split(|&b| b == b',')
                .any(|t| trim_ows(t).eq_ignore_ascii_case(name.as_bytes()))
        })
    }

    /// Whether a message's `Connection` fields (among `headers`) list `name`; false at once
    /// when they name no field (the common case).
    pub fn listed_in(&self, headers: &[httparse::Header<'_>], name: &str) -> bool {
        self.names_fields
            && Self::lists(
                headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case("connection"))
                    .map(|h| h.value),
                name,
            )
    }
}

/// Header fields that describe one connection and never cross a proxy (RFC 9110 §7.6.1),
/// plus `Transfer-Encoding`, which the proxy rewrites for each hop.
pub fn is_hop_by_hop(name: &str) -> bool {
    let n = name.as_bytes();
    match n.len() {
        2 => n.eq_ignore_ascii_case(b"te"),
        7 => n.eq_ignore_ascii_case(b"trailer") || n.eq_ignore_ascii_case(b"upgrade"),
        10 => n.eq_ignore_ascii_case(b"connection") || n.eq_ignore_ascii_case(b"keep-alive"),
        16 => n.eq_ignore_ascii_case(b"proxy-connection"),
        17 => n.eq_ignore_ascii_case(b"transfer-encoding"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_is_plain_digits() {
        assert_eq!(content_length(b"42"), Some(42));
        assert_eq!(content_length(b" 0 "), Some(0));
        for bad in [
            &b""[..],
            b"-1",
            b"+4",
            b"4, 4",
            b"4 4",
            b"0x10",
            b"99999999999999999999",
        ] {
            assert_eq!(content_length(bad), None, "{:?}", bad);
        }
    }

    fn verdict(values: &[&[u8]]) -> Codings {
        let mut state = (0, false, false);
        let valid = values.iter().all(|v| fold_codings(v, &mut state));
        codings_verdict(valid, state)
    }

    #[test]
    fn transfer_codings() {
        assert_eq!(verdict(&[b"chunked"]), Codings::Chunked);
        assert_eq!(verdict(&[b"Chunked"]), Codings::Chunked);
        assert_eq!(verdict(&[b"gzip, chunked"]), Codings::ChunkedAfterOthers);
        assert_eq!(verdict(&[b"gzip", b"chunked"]), Codings::ChunkedAfterOthers);
        assert_eq!(verdict(&[b"chunked, gzip"]), Codings::Invalid);
        assert_eq!(verdict(&[b"chunked", b"chunked"]), Codings::Invalid);
        assert_eq!(verdict(&[b"chunked, identity"]), Codings::Invalid);
        assert_eq!(verdict(&[b"xchunked"]), Codings::NotChunkedLast);
        assert_eq!(verdict(&[b""]), Codings::Invalid);
        assert_eq!(verdict(&[b"chu\"nked"]), Codings::Invalid);
    }

    #[test]
    fn connection_tokens() {
        let mut t = ConnectionTokens::default();
        t.fold(b"keep-alive, Upgrade");
        t.fold(b"x-secret");
        assert!(t.keep_alive && t.upgrade && t.names_fields && !t.close);
        assert!(ConnectionTokens::lists([&b"a, X-Secret"[..]], "x-secret"));
        assert!(!ConnectionTokens::lists([&b"x-secrets"[..]], "x-secret"));
    }

    #[test]
    fn hop_by_hop_names() {
        for n in [
            "Connection",
            "keep-alive",
            "TE",
            "Trailer",
            "Transfer-Encoding",
            "Upgrade",
            "Proxy-Connection",
        ] {
            assert!(is_hop_by_hop(n), "{n}");
        }
        assert!(!is_hop_by_hop("content-length") && !is_hop_by_hop("tea"));
    }
}
