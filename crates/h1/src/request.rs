//! Request heads.

use httparse::Header;

use crate::error::HeadError;
use crate::fields::{codings_verdict, content_length, fold_codings, Codings, ConnectionTokens};
use crate::target::check_origin_form;

/// How a request's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body (no `Content-Length`, no `Transfer-Encoding`, or `Content-Length: 0`).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Other transfer codings before `chunked` (e.g. `gzip, chunked`).
    CodedChunked,
}

/// The request target's form (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`, checked byte by byte.
    Origin {
        /// Index of `?` in the target, if there is a query.
        query: Option<usize>,
    },
    /// `http://host/path` (proxies' form), `*`, or `host:port` (CONNECT): not checked here.
    Other,
}

/// A parsed request head; fields borrow the buffer it was parsed from.
#[derive(Debug)]
pub struct RequestHead<'h, 'b> {
    /// The method, as sent (a token).
    pub method: &'b str,
    /// The request target, as sent.
    pub target: &'b str,
    /// Its form.
    pub form: TargetForm,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub minor_version: u8,
    /// Every header field, in order.
    pub headers: &'h [Header<'b>],
    /// Length of the head in the buffer, final empty line included.
    pub len: usize,
    /// Body framing.
    pub body: BodyKind,
    /// The one `Host` value (trimmed), if present.
    pub host: Option<&'b [u8]>,
    /// What `Connection` says.
    pub connection: ConnectionTokens,
    /// An `Upgrade` field is present.
    pub upgrade: bool,
    /// An `Expect` field is present (e.g. `100-continue`).
    pub expect: bool,
}

impl<'b> RequestHead<'_, 'b> {
    /// The path part of an origin-form target (the whole target otherwise).
    pub fn path(&self) -> &'b str {
        match self.form {
            TargetForm::Origin { query: Some(q) } => self.target.get(..q).unwrap_or(self.target),
            _ => self.target,
        }
    }

    /// The query of an origin-form target, without `?`.
    pub fn query(&self) -> Option<&'b str> {
        match self.form {
            TargetForm::Origin { query: Some(q) } => self.target.get(q + 1..),
            _ => None,
        }
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Whether the client wants the connection kept after this exchange.
    pub fn keep_alive(&self) -> bool {
        if self.minor_version == 0 {
            self.connection.keep_alive && !self.connection.close
        } else {
            !self.connection.close
        }
    }
}

/// Parses a request head from the start of `buf`. `Ok(None)`: incomplete, read more (the
/// caller bounds the head's size). Leading empty lines before the request line are skipped
/// (RFC 9112 §2.2).
pub fn parse_request<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
) -> Result<Option<RequestHead<'h, 'b>>, HeadError> {
    let mut req = httparse::Request::new(headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HeadError::from_httparse(e)),
    };
    let (Some(method), Some(target), Some(minor_version)) = (req.method, req.path, req.version)
    else {
        return Err(HeadError::Malformed("incomplete request line"));
    };
    let headers: &'h [Header<'b>] = req.headers;
    let form = if target.starts_with('/') {
        TargetForm::Origin {
            query: check_origin_form(target.as_bytes()).map_err(HeadError::Malformed)?,
        }
    } else {
        TargetForm::Other
    };

    let mut host = None;
    let mut hosts = 0;
    let mut length = None;
    let mut lengths = 0;
    let mut codings = (0, false, false);
    let mut codings_valid = true;
    let mut te = false;
    let mut connection = ConnectionTokens::default();
    let mut upgrade = false;
    let mut expect = false;
    for h in headers {
        let name = h.name.as_bytes();
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                hosts += 1;
                host = Some(crate::fields::trim_ows(h.value));
            }
            6 if name.eq_ignore_ascii_case(b"expect") => expect = true,
            7 if name.eq_ignore_ascii_case(b"upgrade") => upgrade = true,
            10 if name.eq_ignore_ascii_case(b"connection") => connection.fold(h.value),
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                lengths += 1;
                length = Some(
                    content_length(h.value)
                        .ok_or(HeadError::Ambiguous("invalid Content-Length"))?,
                );
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                te = true;
                codings_valid &= fold_codings(h.value, &mut codings);
            }
            _ => {}
        }
    }
    if hosts > 1 {
        return Err(HeadError::Ambiguous("more than one Host header"));
    }
    if lengths > 1 {
        return Err(HeadError::Ambiguous("more than one Content-Length"));
    }
    if te && length.is_some() {
        return Err(HeadError::Ambiguous(
            "both Content-Length and Transfer-Encoding",
        ));
    }
    let body = if te {
        if minor_version == 0 {
            // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding is faulty framing.
            return Err(HeadError::Ambiguous("Transfer-Encoding on HTTP/1.0"));
        }
        match codings_verdict(codings_valid, codings) {
            Codings::Chunked => BodyKind::Chunked,
            Codings::ChunkedAfterOthers => BodyKind::CodedChunked,
            // A request whose last coding is not chunked has no determinable length.
            Codings::NotChunkedLast | Codings::Invalid => {
                return Err(HeadError::Ambiguous("invalid Transfer-Encoding"))
            }
        }
    } else {
        match length {
            Some(0) | None => BodyKind::None,
            Some(n) => BodyKind::Length(n),
        }
    };
    if host.is_none() && minor_version == 1 {
        return Err(HeadError::MissingHost);
    }
    Ok(Some(RequestHead {
        method,
        target,
        form,
        minor_version,
        headers,
        len,
        body,
        host,
        connection,
        upgrade,
        expect,
    }))
}
