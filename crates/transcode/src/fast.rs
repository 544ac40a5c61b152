//! Which requests and responses take the direct codec ([`crate::codec`]), and the glue
//! that keeps their bytes meaning exactly what the `DynamicMessage` path would send.
//!
//! A JSON body is encoded by the codec and the path and query fields are appended,
//! encoded as before: protobuf merges concatenated messages, so an appended scalar
//! replaces, an appended message merges and an appended oneof member wins, which is what
//! setting them on the decoded body did. The one difference (a path value equal to the
//! default would be skipped, not replace the body's value) is avoided by declining
//! bodies that name a path-bound field.

use prost::encoding::WireType;
use prost_reflect::{Kind, MessageDescriptor};

use crate::codec::{
    encode_json, encode_plain, encode_serde, patch_len, render_json, Codec, EncodeCx, Fallback,
    PlanId, RenderCx,
};
use crate::frame::FRAME_HEADER_LEN;
use crate::request::{GrpcRequest, Matched};
use crate::rules::{Binding, Body};
use crate::transcoder::Shared;

/// What the codec may do for one binding, decided once when the transcoder is built.
#[derive(Debug, Default)]
pub(crate) struct FastPlans {
    /// The plan of the JSON body's message: the input, or the body field's message.
    body: Option<PlanId>,
    /// `body: "field"`: that field's number.
    body_field: Option<u32>,
    /// Fields of the body's message that path variables set.
    bound: Vec<u32>,
    /// The plan of the response message (bindings without `response_body`).
    pub output: Option<PlanId>,
}

impl FastPlans {
    pub fn new(b: &Binding, codec: &Codec) -> FastPlans {
        let mut p = FastPlans {
            output: match b.response_body {
                None => codec.plan_id(&b.method.output()),
                Some(_) => None,
            },
            ..FastPlans::default()
        };
        // Client streams decode a parsed array element by element: the slow path stays.
        if b.method.is_client_streaming() {
            return p;
        }
        match &b.body {
            Body::None => {}
            Body::Whole => {
                p.body = codec.plan_id(&b.method.input());
                p.bound = b
                    .vars
                    .iter()
                    .filter_map(|v| v.first())
                    .map(|f| f.number())
                    .collect();
            }
            Body::Field(f) => {
                let Kind::Message(m) = f.kind() else {
                    return p;
                };
                // A body field in a oneof would be overridden by an appended query member;
                // the DynamicMessage path sets the body after the query, so it wins there.
                let whole_field_bound = b.vars.iter().any(|v| v.len() == 1 && v[0] == *f);
                if f.is_list() || f.is_map() || f.containing_oneof().is_some() || whole_field_bound
                {
                    return p;
                }
                p.body = codec.plan_id(&m);
                p.body_field = Some(f.number());
                p.bound = b
                    .vars
                    .iter()
                    .filter(|v| v.first() == Some(f))
                    .filter_map(|v| v.get(1))
                    .map(|g| g.number())
                    .collect();
            }
        }
        p
    }
}

/// The framed gRPC request for a JSON body, or `None` to take the `DynamicMessage` path
/// (which then also reports any error).
pub(crate) fn encode_request(m: &Matched<'_>, json: &[u8]) -> Option<GrpcRequest> {
    let fast = &m.binding.fast;
    let id = fast.body?;
    let cx = encode_cx(&m.transcoder.shared);
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + json.len() + 16);
    out.resize(FRAME_HEADER_LEN, 0);
    let rest = match fast.body_field {
        None => {
            encode_json(&cx, id, json, &fast.bound, &mut out).ok()?;
            m.path_fields().ok()?
        }
        Some(number) => {
            prost::encoding::encode_key(number, WireType::LengthDelimited, &mut out);
            let len_at = out.len();
            out.push(0);
            encode_json(&cx, id, json, &fast.bound, &mut out).ok()?;
            patch_len(&mut out, len_at);
            m.unbound_fields().ok()?
        }
    };
    out.extend_from_slice(&rest);
    let len = u32::try_from(out.len() - FRAME_HEADER_LEN).ok()?;
    out[1..FRAME_HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    Some(GrpcRequest {
        body: out.into(),
        messages: 1,
    })
}

fn encode_cx(shared: &Shared) -> EncodeCx<'_> {
    EncodeCx {
        codec: &shared.codec,
        de: &shared.de,
        deny_unknown: shared.opts.reject_unknown_fields,
        case_insensitive_enums: shared.opts.case_insensitive_enums,
    }
}

/// A JSON body encoded by each of the codec's two JSON passes, for the differential
/// tests: `None` where a pass declined.
pub(crate) struct Passes {
    /// The body's message type.
    pub desc: MessageDescriptor,
    pub scanner: Option<Vec<u8>>,
    pub serde: Option<Vec<u8>>,
}

/// One of the codec's JSON passes (`encode_plain`, `encode_serde`).
type JsonPass = fn(&EncodeCx<'_>, PlanId, &str, &[u32], &mut Vec<u8>) -> Result<(), Fallback>;

/// Both passes on `json`; `None` if the binding has no codec plan or the body is not
/// UTF-8.
pub(crate) fn encode_passes(m: &Matched<'_>, json: &[u8]) -> Option<Passes> {
    let fast = &m.binding.fast;
    let id = fast.body?;
    let desc = m.binding.body_message()?;
    let text = std::str::from_utf8(json).ok()?;
    let cx = encode_cx(&m.transcoder.shared);
    let run = |pass: JsonPass| {
        let mut out = Vec::new();
        pass(&cx, id, text, &fast.bound, &mut out)
            .ok()
            .map(|()| out)
    };
    Some(Passes {
        desc,
        scanner: run(encode_plain),
        serde: run(encode_serde),
    })
}

/// The JSON form of a response message of plan `id`, or `None` to take the
/// `DynamicMessage` path.
pub(crate) fn render_response(shared: &Shared, id: PlanId, payload: &[u8]) -> Option<Vec<u8>> {
    let cx = RenderCx {
        codec: &shared.codec,
        ser: &shared.ser,
        emit_defaults: shared.opts.emit_defaults,
        proto_names: shared.opts.use_proto_field_names,
    };
    let mut out = Vec::with_capacity(payload.len() * 2 + 16);
    render_json(&cx, id, payload, &mut out).ok()?;
    Some(out)
}
