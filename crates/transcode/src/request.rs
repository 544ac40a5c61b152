//! The request side: a matched rule plus the HTTP request's parts become one or more
//! framed gRPC messages.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MethodDescriptor};

use crate::error::TranscodeError;
use crate::fast;
use crate::fields::{resolve, set_path_var, set_text};
use crate::frame::{put_frame_header, FRAME_HEADER_LEN};
use crate::json;
use crate::response::ResponseTranscoder;
use crate::rules::{is_http_body, Binding, Body};
use crate::transcoder::Transcoder;

/// The wire format of an HTTP body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// proto3 JSON (`application/json`).
    Json,
    /// Binary protobuf (`application/x-protobuf`, `application/protobuf`).
    Protobuf,
}

impl BodyFormat {
    /// The format of a request body by its `Content-Type` (parameters ignored); no
    /// content type means JSON. Anything else is 415.
    pub fn from_content_type(content_type: Option<&str>) -> Result<BodyFormat, TranscodeError> {
        let Some(ct) = content_type else {
            return Ok(BodyFormat::Json);
        };
        let media = ct.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("application/json")
            || media.len() > 5 && media[media.len() - 5..].eq_ignore_ascii_case("+json")
        {
            Ok(BodyFormat::Json)
        } else if media.eq_ignore_ascii_case("application/x-protobuf")
            || media.eq_ignore_ascii_case("application/protobuf")
            || media.eq_ignore_ascii_case("application/vnd.google.protobuf")
        {
            Ok(BodyFormat::Protobuf)
        } else {
            Err(TranscodeError::UnsupportedMediaType(ct.to_owned()))
        }
    }

    /// The response format: protobuf when `Accept` asks for it or the request was
    /// protobuf; JSON otherwise.
    pub fn for_response(content_type: Option<&str>, accept: Option<&str>) -> BodyFormat {
        let is_proto = |s: &str| {
            s.split(',').any(|m| {
                matches!(
                    BodyFormat::from_content_type(Some(m)),
                    Ok(BodyFormat::Protobuf)
                )
            })
        };
        if accept.is_some_and(is_proto) || content_type.is_some_and(is_proto) {
            BodyFormat::Protobuf
        } else {
            BodyFormat::Json
        }
    }

    /// The `Content-Type` this format is sent with.
    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Json => "application/json",
            BodyFormat::Protobuf => "application/x-protobuf",
        }
    }
}

/// A request matched to a gRPC method by [`Transcoder::route`].
#[derive(Debug, Clone)]
pub struct Matched<'a> {
    pub(crate) transcoder: &'a Transcoder,
    pub(crate) binding: &'a Binding,
    pub(crate) path: &'a str,
    /// Bytes of `:verb` at the end of `path` (0 without a verb).
    pub(crate) verb_len: usize,
    pub(crate) query: Option<&'a str>,
}

/// The gRPC request to send: `:path` [`Matched::grpc_path`], `content-type: application/grpc`.
#[derive(Debug, Clone)]
pub struct GrpcRequest {
    /// The framed message(s): one for unary calls, one per element for client streams.
    pub body: Bytes,
    /// How many messages `body` holds.
    pub messages: usize,
}

/// `google.api.HttpBody`, hand-declared for the raw-body fast path.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HttpBodyMsg {
    #[prost(string, tag = "1")]
    pub content_type: String,
    #[prost(bytes = "bytes", tag = "2")]
    pub data: Bytes,
}

impl<'a> Matched<'a> {
    /// The gRPC `:path`, `/pkg.Service/Method`.
    pub fn grpc_path(&self) -> &'a str {
        &self.binding.grpc_path
    }

    /// The gRPC method.
    pub fn method(&self) -> &'a MethodDescriptor {
        &self.binding.method
    }

    /// True if the response is a stream of messages.
    pub fn is_server_streaming(&self) -> bool {
        self.binding.method.is_server_streaming()
    }

    /// True if the request is a stream of messages (a JSON array in the body).
    pub fn is_client_streaming(&self) -> bool {
        self.binding.method.is_client_streaming()
    }

    /// The transcoder for the response of this call; `format` usually comes from
    /// [`BodyFormat::for_response`].
    pub fn response(&self, format: BodyFormat) -> ResponseTranscoder {
        ResponseTranscoder::new(self.transcoder.shared.clone(), self.binding, format)
    }

    /// Builds the gRPC request from the request's `Content-Type` and its whole body.
    ///
    /// Errors are the client's (400 naming the field, or 415).
    pub fn encode_request(
        &self,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<GrpcRequest, TranscodeError> {
        self.encode(content_type, body, true)
    }

    /// [`Self::encode_request`], with or without the fast codec (`fast: false` is the
    /// reference the differential tests compare against).
    pub(crate) fn encode(
        &self,
        content_type: Option<&str>,
        body: Bytes,
        fast: bool,
    ) -> Result<GrpcRequest, TranscodeError> {
        let b = self.binding;
        let input = b.method.input();
        let body_target = b.body_message();
        // HttpBody takes any content type: the bytes are the payload.
        if body_target.as_ref().is_some_and(is_http_body) {
            let raw = HttpBodyMsg {
                content_type: content_type
                    .unwrap_or("application/octet-stream")
                    .to_owned(),
                data: body,
            }
            .encode_to_vec();
            let rest = self.unbound_fields()?;
            return Ok(match &b.body {
                Body::Field(f) => one_frame(Some((f, &raw)), &[], &rest),
                _ => one_frame(None, &raw, &rest),
            });
        }
        let format = if matches!(b.body, Body::None) {
            BodyFormat::Json
        } else {
            BodyFormat::from_content_type(content_type)?
        };
        if self.is_client_streaming() && format == BodyFormat::Json {
            return self.encode_stream(&body);
        }
        match (&b.body, format) {
            (Body::None, _) => Ok(one_frame(None, &[], &self.unbound_fields()?)),
            // Binary bodies are never decoded: protobuf merges concatenated messages, so
            // the path and query fields are appended and win over the body's.
            (Body::Whole, BodyFormat::Protobuf) => Ok(one_frame(None, &body, &self.path_fields()?)),
            (Body::Field(f), BodyFormat::Protobuf) => {
                if !matches!(f.kind(), Kind::Message(_)) || f.is_list() || f.is_map() {
                    return Err(TranscodeError::bad(
                        f.name(),
                        "a binary body can only carry a singular message field",
                    ));
                }
                Ok(one_frame(Some((f, &body)), &[], &self.unbound_fields()?))
            }
            (Body::Whole, BodyFormat::Json) => {
                if let Some(req) = fast.then(|| fast::encode_request(self, &body)).flatten() {
                    return Ok(req);
                }
                let mut msg = json::decode(&input, &body, &self.transcoder.shared)?;
                self.apply_path(&mut msg)?;
                Ok(one_frame(None, &[], &msg.encode_to_vec()))
            }
            (Body::Field(f), BodyFormat::Json) => {
                if let Some(req) = fast.then(|| fast::encode_request(self, &body)).flatten() {
                    return Ok(req);
                }
                let mut msg = DynamicMessage::new(input);
                self.apply_query(&mut msg)?;
                set_body_field(&mut msg, f, &body, self)?;
                // Path variables may point inside the body field (`{book.id}`): they win.
                self.apply_path(&mut msg)?;
                Ok(one_frame(None, &[], &msg.encode_to_vec()))
            }
        }
    }

    /// A client stream: a JSON array of messages (or one object), path and query
    /// fields applied to each.
    fn encode_stream(&self, body: &[u8]) -> Result<GrpcRequest, TranscodeError> {
        let shared = &self.transcoder.shared;
        let input = self.binding.method.input();
        let v: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
            serde_json::Value::Array(Vec::new())
        } else {
            serde_json::from_slice(body)
                .map_err(|e| TranscodeError::bad("body", format!("invalid JSON: {e}")))?
        };
        let items = match v {
            serde_json::Value::Array(items) => items,
            other => vec![other],
        };
        let mut out = BytesMut::new();
        let messages = items.len();
        for (i, item) in items.into_iter().enumerate() {
            let mut msg = json::decode_value(&input, item, shared).map_err(|e| match e {
                TranscodeError::BadRequest { field, reason } if field == "body" => {
                    TranscodeError::bad(format!("[{i}]"), reason)
                }
                TranscodeError::BadRequest { field, reason } => {
                    TranscodeError::bad(format!("[{i}].{field}"), reason)
                }
                e => e,
            })?;
            if !matches!(self.binding.body, Body::Whole) {
                self.apply_query(&mut msg)?;
            }
            self.apply_path(&mut msg)?;
            put_frame_header(&mut out, msg.encoded_len())?;
            msg.encode_raw(&mut out);
        }
        Ok(GrpcRequest {
            body: out.freeze(),
            messages,
        })
    }

    /// The path-bound fields alone, encoded.
    pub(crate) fn path_fields(&self) -> Result<Vec<u8>, TranscodeError> {
        if self.binding.vars.is_empty() {
            return Ok(Vec::new());
        }
        let mut msg = DynamicMessage::new(self.binding.method.input());
        self.apply_path(&mut msg)?;
        Ok(msg.encode_to_vec())
    }

    /// Path and query fields, as a message.
    fn unbound_message(&self) -> Result<DynamicMessage, TranscodeError> {
        let mut msg = DynamicMessage::new(self.binding.method.input());
        self.apply_query(&mut msg)?;
        self.apply_path(&mut msg)?;
        Ok(msg)
    }

    pub(crate) fn unbound_fields(&self) -> Result<Vec<u8>, TranscodeError> {
        if self.binding.vars.is_empty() && self.query.is_none_or(str::is_empty) {
            return Ok(Vec::new());
        }
        Ok(self.unbound_message()?.encode_to_vec())
    }

    /// Sets every path variable's captured text.
    pub(crate) fn apply_path(&self, msg: &mut DynamicMessage) -> Result<(), TranscodeError> {
        let b = self.binding;
        if b.vars.is_empty() {
            return Ok(());
        }
        let ci = self.transcoder.shared.opts.case_insensitive_enums;
        let rest = &self.path[1..self.path.len() - self.verb_len];
        for (var, fields) in b.template.variables.iter().zip(&b.vars) {
            let multi = b.template.ends_with_multi() && var.end == b.template.segments.len();
            let raw = segments(rest, var.start, if multi { usize::MAX } else { var.end });
            let text = if var.end - var.start == 1 && !multi {
                percent_encoding::percent_decode_str(raw).decode_utf8_lossy()
            } else {
                decode_keep_slash(raw)
            };
            set_path_var(msg, fields, &text, ci)?;
        }
        Ok(())
    }

    /// Sets every query parameter that names a field not bound by the path or body.
    pub(crate) fn apply_query(&self, msg: &mut DynamicMessage) -> Result<(), TranscodeError> {
        let Some(query) = self.query else {
            return Ok(());
        };
        let shared = &self.transcoder.shared;
        let input = self.binding.method.input();
        for pair in query.split('&') {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = form_decode(k);
            let value = form_decode(v);
            let target = match resolve(&input, &key) {
                Ok(Some(t)) => t,
                Ok(None) if shared.opts.reject_unknown_fields => {
                    return Err(TranscodeError::bad(
                        key.into_owned(),
                        "unknown query parameter",
                    ))
                }
                Ok(None) => continue,
                Err(reason) => return Err(TranscodeError::bad(key.into_owned(), reason)),
            };
            if self.is_bound(&target.path) {
                continue;
            }
            // Named as the client wrote it (`pageSize` or `page_size`), not by proto name.
            set_text(msg, &target, &value, shared.opts.case_insensitive_enums)
                .map_err(|reason| TranscodeError::bad(key.into_owned(), reason))?;
        }
        Ok(())
    }

    /// True if the field path is (inside) a path variable or the body field.
    fn is_bound(&self, path: &[FieldDescriptor]) -> bool {
        let b = self.binding;
        match &b.body {
            Body::Whole => return true,
            Body::Field(f) if path.first() == Some(f) => return true,
            _ => {}
        }
        b.vars
            .iter()
            .any(|v| path.starts_with(v) || v.starts_with(path))
    }
}

/// Decodes a body bound to one field (`body: "field"`) and sets it.
fn set_body_field(
    msg: &mut DynamicMessage,
    f: &FieldDescriptor,
    body: &[u8],
    m: &Matched<'_>,
) -> Result<(), TranscodeError> {
    let shared = &m.transcoder.shared;
    if let (Kind::Message(desc), false, false) = (f.kind(), f.is_list(), f.is_map()) {
        let sub = json::decode(&desc, body, shared).map_err(|e| prefix(e, f.name()))?;
        msg.set_field(f, prost_reflect::Value::Message(sub));
        return Ok(());
    }
    // Scalars, lists and maps: decode `{"field": body}` as the parent message.
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| TranscodeError::bad(f.name(), format!("invalid JSON: {e}")))?;
    let mut one = serde_json::Map::new();
    one.insert(f.name().to_owned(), v);
    let parent = json::decode_value(
        &m.binding.method.input(),
        serde_json::Value::Object(one),
        shared,
    )?;
    if let Some(v) = parent.get_field_by_name(f.name()) {
        msg.set_field(f, v.into_owned());
    }
    Ok(())
}

fn prefix(e: TranscodeError, name: &str) -> TranscodeError {
    match e {
        TranscodeError::BadRequest { field, reason } if field == "body" => {
            TranscodeError::bad(name, reason)
        }
        TranscodeError::BadRequest { field, reason } => {
            TranscodeError::bad(format!("{name}.{field}"), reason)
        }
        e => e,
    }
}

/// One gRPC frame holding `head` (raw message bytes), then `field` as a length-delimited
/// field, then `tail`: concatenation is merge in protobuf.
fn one_frame(field: Option<(&FieldDescriptor, &[u8])>, head: &[u8], tail: &[u8]) -> GrpcRequest {
    let mut key = [0u8; 20];
    let mut key_len = 0;
    if let Some((f, bytes)) = field {
        let mut k = &mut key[..];
        prost::encoding::encode_key(
            f.number(),
            prost::encoding::WireType::LengthDelimited,
            &mut k,
        );
        prost::encoding::encode_varint(bytes.len() as u64, &mut k);
        key_len = 20 - k.len();
    }
    let field_bytes = field.map_or(&[][..], |(_, b)| b);
    let len = head.len() + key_len + field_bytes.len() + tail.len();
    let mut out = BytesMut::with_capacity(FRAME_HEADER_LEN + len);
    // A u32 overflow cannot happen here: HTTP bodies are bounded far below 4 GiB upstream.
    out.put_u8(0);
    out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    out.put_slice(head);
    out.put_slice(&key[..key_len]);
    out.put_slice(field_bytes);
    out.put_slice(tail);
    GrpcRequest {
        body: out.freeze(),
        messages: 1,
    }
}

/// Segments `start..end` of `rest` (the path without its leading '/').
fn segments(rest: &str, start: usize, end: usize) -> &str {
    let mut from = 0;
    let mut idx = 0;
    let bytes = rest.as_bytes();
    let mut to = rest.len();
    if start > 0 {
        from = rest.len();
    }
    for (i, &c) in bytes.iter().enumerate() {
        if c == b'/' {
            idx += 1;
            if idx == start {
                from = i + 1;
            }
            if idx == end {
                to = i;
                break;
            }
        }
    }
    if from > to {
        return "";
    }
    &rest[from..to]
}

/// Percent-decodes all but `%2F` (a multi-segment capture keeps encoded slashes encoded).
fn decode_keep_slash(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for (i, part) in s.split("%2F").enumerate() {
        for (j, p) in part.split("%2f").enumerate() {
            if i > 0 && j == 0 {
                out.push_str("%2F");
            } else if j > 0 {
                out.push_str("%2f");
            }
            out.push_str(&percent_encoding::percent_decode_str(p).decode_utf8_lossy());
        }
    }
    Cow::Owned(out)
}

/// `application/x-www-form-urlencoded` decoding: '+' is a space.
fn form_decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    let spaced = s.replace('+', " ");
    Cow::Owned(
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_ranges() {
        assert_eq!(segments("v1/shelves/1/books/2", 1, 5), "shelves/1/books/2");
        assert_eq!(segments("v1/shelves/1/books/2", 2, 3), "1");
        assert_eq!(segments("v1/a/b/c", 1, usize::MAX), "a/b/c");
        assert_eq!(segments("v1", 1, usize::MAX), "");
        assert_eq!(segments("x", 0, 1), "x");
    }

    #[test]
    fn decoding_keeps_encoded_slashes_in_multi_segment_captures() {
        assert_eq!(decode_keep_slash("a%20b/c%2Fd%2fe"), "a b/c%2Fd%2fe");
        assert_eq!(form_decode("a+b%3D"), "a b=");
    }

    #[test]
    fn content_types() {
        assert_eq!(
            BodyFormat::from_content_type(Some("application/json; charset=utf-8")).unwrap(),
            BodyFormat::Json
        );
        assert_eq!(
            BodyFormat::from_content_type(Some("application/x-protobuf")).unwrap(),
            BodyFormat::Protobuf
        );
        assert!(BodyFormat::from_content_type(Some("text/plain")).is_err());
        assert_eq!(
            BodyFormat::for_response(None, Some("application/protobuf")),
            BodyFormat::Protobuf
        );
        assert_eq!(
            BodyFormat::for_response(Some("application/json"), Some("*/*")),
            BodyFormat::Json
        );
    }
}
