//! Response heads, as an upstream sends them.

use httparse::Header;

use crate::fields::{
    codings_verdict, content_length, fold_codings, trim_ows, Codings, ConnectionTokens,
};

/// How a response's body is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body: a response to HEAD, or 1xx, 204, 304.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked (the last transfer coding is `chunked`).
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
}

/// A parsed response head; fields borrow the buffer it was parsed from.
#[derive(Debug)]
pub struct ResponseHead<'h, 'b> {
    /// The status code.
    pub code: u16,
    /// The reason phrase, as sent.
    pub reason: &'b str,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub minor_version: u8,
    /// Every header field, in order.
    pub headers: &'h [Header<'b>],
    /// Length of the head in the buffer, final empty line included.
    pub len: usize,
    /// Body framing.
    pub body: ResponseBody,
    /// What `Connection` says.
    pub connection: ConnectionTokens,
    /// Transfer codings other than `chunked` are applied (they pass through).
    pub coded: bool,
}

impl ResponseHead<'_, '_> {
    /// Whether the upstream keeps the connection open after this response.
    pub fn keep_alive(&self) -> bool {
        let persistent = if self.minor_version == 0 {
            self.connection.keep_alive && !self.connection.close
        } else {
            !self.connection.close
        };
        persistent && self.body != ResponseBody::UntilClose
    }

    /// An interim response (1xx other than 101): a final one follows.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.code) && self.code != 101
    }
}

/// Why a response head cannot be relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// Not a valid HTTP/1.x response head.
    #[error("malformed response head: {0}")]
    Malformed(&'static str),
    /// Framing that cannot be decided safely.
    #[error("ambiguous response framing: {0}")]
    Ambiguous(&'static str),
}

/// Parses a response head from the start of `buf`; `Ok(None)`: incomplete. `to_head`: the
/// request was HEAD (no body whatever the head says).
pub fn parse_response<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
    to_head: bool,
) -> Result<Option<ResponseHead<'h, 'b>>, ResponseError> {
    let mut resp = httparse::Response::new(headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ResponseError::Malformed("too many header fields"))
        }
        Err(_) => return Err(ResponseError::Malformed("invalid syntax")),
    };
    let (Some(code), Some(minor_version)) = (resp.code, resp.version) else {
        return Err(ResponseError::Malformed("incomplete status line"));
    };
    if !(100..=999).contains(&code) {
        return Err(ResponseError::Malformed("invalid status code"));
    }
    let reason = resp.reason.unwrap_or("");
    let headers: &'h [Header<'b>] = resp.headers;
    let mut length = None;
    let mut lengths = 0;
    let mut te = false;
    let mut codings = (0, false, false);
    let mut codings_valid = true;
    let mut connection = ConnectionTokens::default();
    for h in headers {
        let name = h.name.as_bytes();
        match name.len() {
            10 if name.eq_ignore_ascii_case(b"connection") => connection.fold(h.value),
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                let n = content_length(h.value)
                    .ok_or(ResponseError::Ambiguous("invalid Content-Length"))?;
                if lengths > 0 && length != Some(n) {
                    return Err(ResponseError::Ambiguous("conflicting Content-Length"));
                }
                lengths += 1;
                length = Some(n);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                te = true;
                codings_valid &= fold_codings(trim_ows(h.value), &mut codings);
            }
            _ => {}
        }
    }
    let no_body = to_head || (100..200).contains(&code) || code == 204 || code == 304;
    let mut coded = false;
    let body = if no_body {
        ResponseBody::None
    } else if te {
        if length.is_some() {
            // RFC 9112 §6.3: Transfer-Encoding overrides, but a proxy must not pass such a
            // message on: the next hop might honour Content-Length.
            return Err(ResponseError::Ambiguous(
                "both Content-Length and Transfer-Encoding",
            ));
        }
        match codings_verdict(codings_valid, codings) {
            Codings::Chunked => ResponseBody::Chunked,
            Codings::ChunkedAfterOthers => {
                coded = true;
                ResponseBody::Chunked
            }
            Codings::NotChunkedLast => {
                coded = true;
                ResponseBody::UntilClose
            }
            Codings::Invalid => return Err(ResponseError::Ambiguous("invalid Transfer-Encoding")),
        }
    } else {
        match length {
            Some(n) => ResponseBody::Length(n),
            None => ResponseBody::UntilClose,
        }
    };
    Ok(Some(ResponseHead {
        code,
        reason,
        minor_version,
        headers,
        len,
        body,
        connection,
        coded,
    }))
}
