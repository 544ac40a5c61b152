//! The response side: gRPC frames (in any chunking) and the final status become the
//! HTTP response body and status.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use prost::Message as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};

use crate::codec::PlanId;
use crate::error::TranscodeError;
use crate::fast;
use crate::frame::{Frame, FrameDecoder};
use crate::request::{BodyFormat, HttpBodyMsg};
use crate::rules::{is_http_body, Binding};
use crate::status::GrpcStatus;
use crate::transcoder::{Shared, StreamFormat};

/// The end of a transcoded response.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The HTTP status (for a stream whose head was already sent, 200 even on error).
    pub status: StatusCode,
    /// The `Content-Type` of the response.
    pub content_type: String,
    /// The bytes still to write: the whole body for unary calls; the closing part
    /// (`]`, an error element) for streams.
    pub body: Bytes,
    /// The gRPC status the call ended with.
    pub grpc: GrpcStatus,
}

/// Turns one call's gRPC response into the HTTP response, incrementally.
///
/// Feed body chunks to [`push`](Self::push) as they arrive, then call
/// [`finish`](Self::finish) with the response headers and trailers. Unary calls produce
/// their body at `finish` (the HTTP status depends on `grpc-status`); streams produce
/// bytes from `push` as soon as a message is complete.
#[derive(Debug)]
pub struct ResponseTranscoder {
    shared: Arc<Shared>,
    output: MessageDescriptor,
    response_body: Option<FieldDescriptor>,
    format: BodyFormat,
    streaming: bool,
    http_body: bool,
    decoder: FrameDecoder,
    frames: Vec<Frame>,
    /// Messages rendered so far.
    count: usize,
    /// The unary body, once its message arrived.
    unary: Option<Bytes>,
    content_type: String,
    /// The fast codec's plan for the rendered message, if it has one.
    plan: Option<PlanId>,
}

impl ResponseTranscoder {
    pub(crate) fn new(shared: Arc<Shared>, binding: &Binding, format: BodyFormat) -> Self {
        let output = binding.method.output();
        let target = match binding.response_body.as_ref().map(|f| f.kind()) {
            Some(Kind::Message(m)) => m,
            _ => output.clone(),
        };
        let http_body = is_http_body(&target);
        let streaming = binding.method.is_server_streaming();
        let content_type = match (streaming, format, shared.opts.stream_format) {
            (_, BodyFormat::Protobuf, _) => BodyFormat::Protobuf.content_type(),
            (true, _, StreamFormat::Ndjson) => "application/x-ndjson",
            (true, _, StreamFormat::Sse) => "text/event-stream",
            _ => BodyFormat::Json.content_type(),
        };
        ResponseTranscoder {
            decoder: FrameDecoder::new(shared.opts.max_message_bytes),
            shared,
            output,
            response_body: binding.response_body.clone(),
            format,
            streaming,
            http_body,
            frames: Vec::new(),
            count: 0,
            unary: None,
            content_type: content_type.to_owned(),
            plan: binding.fast.output,
        }
    }

    /// The same transcoder on the `DynamicMessage` path only (the differential tests'
    /// reference).
    pub(crate) fn without_fast_codec(mut self) -> Self {
        self.plan = None;
        self
    }

    /// True if the response is a stream (write the head at the first bytes from `push`).
    pub fn is_streaming(&self) -> bool {
        self.streaming
    }

    /// The response `Content-Type`: final once `push` returned bytes (an `HttpBody`
    /// stream takes it from its first message) or after `finish`.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// Feeds one chunk of the gRPC response body. For streams, returns the bytes to write
    /// now (`None` while no message is complete); for unary calls always `None`.
    ///
    /// Errors are the upstream's (502): bad frames, compressed messages, undecodable bytes.
    pub fn push(&mut self, chunk: Bytes) -> Result<Option<Bytes>, TranscodeError> {
        let mut frames = std::mem::take(&mut self.frames);
        self.decoder.push(chunk, &mut frames)?;
        let mut out = BytesMut::new();
        let mut result = Ok(());
        for frame in frames.drain(..) {
            if let Err(e) = self.message(frame, &mut out) {
                result = Err(e);
                break;
            }
        }
        self.frames = frames;
        result?;
        Ok((!out.is_empty()).then(|| out.freeze()))
    }

    fn message(&mut self, frame: Frame, out: &mut BytesMut) -> Result<(), TranscodeError> {
        if frame.flags & 1 != 0 {
            return Err(TranscodeError::Upstream(
                "compressed message, but no encoding was offered".into(),
            ));
        }
        let first = self.count == 0;
        self.count += 1;
        if !self.streaming {
            if !first {
                return Err(TranscodeError::Upstream(
                    "more than one message in a unary response".into(),
                ));
            }
            let body = self.render(frame.payload)?;
            self.unary = Some(body);
            return Ok(());
        }
        let body = self.render(frame.payload)?;
        if self.http_body || self.format == BodyFormat::Protobuf {
            if self.format == BodyFormat::Protobuf && !self.http_body {
                // Length-delimited messages, as protobuf's writeDelimitedTo.
                prost::encoding::encode_varint(body.len() as u64, out);
            }
            out.put_slice(&body);
            return Ok(());
        }
        match self.shared.opts.stream_format {
            StreamFormat::JsonArray => {
                out.put_u8(if first { b'[' } else { b',' });
                out.put_slice(&body);
            }
            StreamFormat::Ndjson => {
                out.put_slice(&body);
                out.put_u8(b'\n');
            }
            StreamFormat::Sse => {
                out.put_slice(b"data: ");
                out.put_slice(&body);
                out.put_slice(b"\n\n");
            }
        }
        Ok(())
    }

    /// One message in the client's format.
    fn render(&mut self, payload: Bytes) -> Result<Bytes, TranscodeError> {
        let bad =
            |e: prost::DecodeError| TranscodeError::Upstream(format!("undecodable message: {e}"));
        if self.http_body {
            let msg = match &self.response_body {
                None => HttpBodyMsg::decode(payload).map_err(bad)?,
                Some(f) => {
                    let full = DynamicMessage::decode(self.output.clone(), payload).map_err(bad)?;
                    let inner = match full.get_field(f).as_ref() {
                        prost_reflect::Value::Message(m) => m.encode_to_vec(),
                        _ => Vec::new(),
                    };
                    HttpBodyMsg::decode(inner.as_slice()).map_err(bad)?
                }
            };
            if self.count == 1 && !msg.content_type.is_empty() {
                self.content_type = msg.content_type;
            }
            return Ok(msg.data);
        }
        match (self.format, &self.response_body) {
            (BodyFormat::Protobuf, None) => Ok(payload), // no decode at all
            (BodyFormat::Protobuf, Some(f)) => {
                let full = DynamicMessage::decode(self.output.clone(), payload).map_err(bad)?;
                Ok(match full.get_field(f).as_ref() {
                    prost_reflect::Value::Message(m) if !f.is_list() && !f.is_map() => {
                        m.encode_to_vec().into()
                    }
                    // A scalar or repeated field has no message of its own: send a message
                    // holding just that field.
                    v => {
                        let mut only = DynamicMessage::new(self.output.clone());
                        only.set_field(f, v.clone());
                        only.encode_to_vec().into()
                    }
                })
            }
            (BodyFormat::Json, None) if self.plan.is_some() => {
                let fast = self
                    .plan
                    .and_then(|id| fast::render_response(&self.shared, id, &payload));
                match fast {
                    Some(json) => Ok(json.into()),
                    None => self.render_dynamic(payload, None),
                }
            }
            (BodyFormat::Json, rb) => {
                let rb = rb.clone();
                self.render_dynamic(payload, rb.as_ref())
            }
        }
    }

    /// One message as JSON through `DynamicMessage` (every case the codec declines).
    fn render_dynamic(
        &self,
        payload: Bytes,
        rb: Option<&FieldDescriptor>,
    ) -> Result<Bytes, TranscodeError> {
        let bad =
            |e: prost::DecodeError| TranscodeError::Upstream(format!("undecodable message: {e}"));
        let msg = DynamicMessage::decode(self.output.clone(), payload).map_err(bad)?;
        let ser = &self.shared.ser;
        let mut buf = Vec::with_capacity(128);
        let json_err =
            |e: serde_json::Error| TranscodeError::Upstream(format!("cannot write JSON: {e}"));
        match rb {
            None => msg
                .serialize_with_options(&mut serde_json::Serializer::new(&mut buf), ser)
                .map_err(json_err)?,
            Some(f) => match msg.get_field(f).as_ref() {
                prost_reflect::Value::Message(m) if !f.is_list() && !f.is_map() => m
                    .serialize_with_options(&mut serde_json::Serializer::new(&mut buf), ser)
                    .map_err(json_err)?,
                _ => {
                    // Render the parent and keep the field's value (rare path).
                    let v = msg
                        .serialize_with_options(serde_json::value::Serializer, ser)
                        .map_err(json_err)?;
                    let key = if self.shared.opts.use_proto_field_names {
                        f.name()
                    } else {
                        f.json_name()
                    };
                    let field = v.get(key).cloned().unwrap_or_else(|| default_json(f));
                    serde_json::to_writer(&mut buf, &field).map_err(json_err)?;
                }
            },
        }
        Ok(buf.into())
    }

    /// Ends the response: `headers` are the gRPC response headers, `trailers` its
    /// trailers (`None` for a trailers-only response, whose status is in `headers`).
    pub fn finish(
        &mut self,
        headers: &HeaderMap,
        trailers: Option<&HeaderMap>,
    ) -> Result<Finished, TranscodeError> {
        let grpc = GrpcStatus::from_headers(headers, trailers);
        if !self.decoder.is_empty() {
            return Err(TranscodeError::Upstream(
                "response ended inside a message".into(),
            ));
        }
        let started = self.streaming && self.count > 0;
        if !grpc.is_ok() {
            let body = self.error_body(&grpc);
            if started {
                return Ok(self.stream_error(grpc, body));
            }
            let content_type = self.format.content_type().to_owned();
            self.content_type.clone_from(&content_type);
            return Ok(Finished {
                status: grpc.http_status(),
                content_type,
                body: body.into(),
                grpc,
            });
        }
        let body = if self.streaming {
            self.stream_end(started)
        } else {
            self.unary.take().ok_or_else(|| {
                TranscodeError::Upstream("OK status without a response message".into())
            })?
        };
        Ok(Finished {
            status: StatusCode::OK,
            content_type: self.content_type.clone(),
            body,
            grpc,
        })
    }

    fn error_body(&self, grpc: &GrpcStatus) -> Vec<u8> {
        match self.format {
            BodyFormat::Json => grpc.to_json(&self.shared.pool, &self.shared.ser),
            BodyFormat::Protobuf => grpc.to_proto(),
        }
    }

    fn stream_end(&self, started: bool) -> Bytes {
        let json_array = self.format == BodyFormat::Json
            && !self.http_body
            && self.shared.opts.stream_format == StreamFormat::JsonArray;
        match (json_array, started) {
            (true, true) => Bytes::from_static(b"]"),
            (true, false) => Bytes::from_static(b"[]"),
            _ => Bytes::new(),
        }
    }

    /// An error after messages were sent: the head is gone, so the error is a last
    /// element of the stream (`{"error": {...}}`, as grpc-gateway writes it).
    fn stream_error(&self, grpc: GrpcStatus, body: Vec<u8>) -> Finished {
        let mut out = Vec::with_capacity(body.len() + 16);
        let json = self.format == BodyFormat::Json && !self.http_body;
        if json {
            match self.shared.opts.stream_format {
                StreamFormat::JsonArray => out.extend_from_slice(b",{\"error\":"),
                StreamFormat::Ndjson => out.extend_from_slice(b"{\"error\":"),
                StreamFormat::Sse => out.extend_from_slice(b"event: error\ndata: {\"error\":"),
            }
            out.extend_from_slice(&body);
            out.push(b'}');
            out.extend_from_slice(match self.shared.opts.stream_format {
                StreamFormat::JsonArray => b"]",
                StreamFormat::Ndjson => b"\n",
                StreamFormat::Sse => b"\n\n",
            });
        }
        Finished {
            status: StatusCode::OK,
            content_type: self.content_type.clone(),
            body: out.into(),
            grpc,
        }
    }
}

fn default_json(f: &FieldDescriptor) -> serde_json::Value {
    if f.is_map() {
        serde_json::Value::Object(Default::default())
    } else if f.is_list() {
        serde_json::Value::Array(Vec::new())
    } else {
        serde_json::Value::Null
    }
}
