//! Differential checks of the fast codec against the `DynamicMessage` path, shared by
//! the property tests and the fuzz targets: both must give the same answer on any input.
//!
//! Requests are compared by meaning (both gRPC bodies decoded and printed as JSON): the
//! codec writes fields in the body's order and appends path fields, which is the same
//! message in different bytes. Responses are compared byte for byte, except that objects
//! of map fields may be in any order (prost-reflect keeps maps in a `HashMap`).

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions, Value};

use crate::frame::{put_frame_header, FrameDecoder};
use crate::request::{BodyFormat, Matched};
use crate::transcoder::Transcoder;

/// Routes `method path?query` and encodes `body` both ways; `Err` describes a difference.
/// A path no rule matches is not a difference. `Ok(true)`: the fast codec made the
/// request itself (`false`: it declined and the `DynamicMessage` path did).
pub fn check_request(
    t: &Transcoder,
    method: &Method,
    path: &str,
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<bool, String> {
    let Some(m) = t.route(method, path, query) else {
        return Ok(false);
    };
    let taken = crate::fast::encode_request(&m, body).is_some();
    let fast = m.encode(content_type, Bytes::copy_from_slice(body), true);
    let slow = m.encode(content_type, Bytes::copy_from_slice(body), false);
    match (fast, slow) {
        (Ok(a), Ok(b)) => {
            let input = m.method().input();
            let (a, b) = (
                frames_as_json(&input, &a.body)?,
                frames_as_json(&input, &b.body)?,
            );
            if a == b {
                Ok(taken)
            } else {
                Err(format!("request differs:\n fast {a:?}\n slow {b:?}"))
            }
        }
        (Err(a), Err(b)) if a.to_string() == b.to_string() => Ok(taken),
        (a, b) => Err(format!("request outcome differs: fast {a:?}, slow {b:?}")),
    }
}

/// Routes `method path` and encodes a JSON `body` with the codec's two passes, the
/// scanner and the serde_json pass: where the scanner takes a body it must write the
/// serde_json pass's bytes exactly. `Ok(true)`: the scanner took it.
pub fn check_scanner(
    t: &Transcoder,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Result<bool, String> {
    let Some(m) = t.route(method, path, None) else {
        return Ok(false);
    };
    let Some(p) = crate::fast::encode_passes(&m, body) else {
        return Ok(false);
    };
    match (p.scanner, p.serde) {
        (None, _) => Ok(false),
        (Some(a), Some(b)) if a == b => Ok(true),
        // A delegated message with a map (google.protobuf.Struct) is written from
        // prost-reflect's `HashMap`, in no set order: equal meaning is equal there.
        (Some(a), Some(b)) if same_message(&p.desc, &a, &b) => Ok(true),
        (a, b) => Err(format!(
            "the scanner and the serde_json pass differ on {}:\n scanner {a:?}\n serde   {b:?}",
            String::from_utf8_lossy(body)
        )),
    }
}

/// Routes `method path` and renders `payload` (one response message) as JSON both ways;
/// `Ok(true)` if the fast codec rendered it.
pub fn check_response(
    t: &Transcoder,
    method: &Method,
    path: &str,
    payload: &[u8],
) -> Result<bool, String> {
    let Some(m) = t.route(method, path, None) else {
        return Ok(false);
    };
    let taken = m
        .binding
        .fast
        .output
        .and_then(|id| crate::fast::render_response(&t.shared, id, payload))
        .is_some();
    let fast = respond(&m, payload, true);
    let slow = respond(&m, payload, false);
    match (fast, slow) {
        (Ok(a), Ok(b)) if a == b => Ok(taken),
        (Ok(a), Ok(b)) => {
            // Equal up to the order of map entries is equal; anything else is not.
            let msg = DynamicMessage::decode(m.method().output(), payload)
                .map_err(|e| format!("slow path rendered an undecodable message: {e}"))?;
            let same = serde_json::from_slice::<serde_json::Value>(&a).ok()
                == serde_json::from_slice::<serde_json::Value>(&b).ok();
            if same && has_map_entries(&msg) {
                Ok(taken)
            } else {
                Err(format!(
                    "response differs:\n fast {}\n slow {}",
                    String::from_utf8_lossy(&a),
                    String::from_utf8_lossy(&b)
                ))
            }
        }
        (Err(a), Err(b)) if a == b => Ok(taken),
        (a, b) => Err(format!("response outcome differs: fast {a:?}, slow {b:?}")),
    }
}

fn respond(m: &Matched<'_>, payload: &[u8], fast: bool) -> Result<Vec<u8>, String> {
    let mut rt = m.response(BodyFormat::Json);
    if !fast {
        rt = rt.without_fast_codec();
    }
    let mut framed = bytes::BytesMut::new();
    put_frame_header(&mut framed, payload.len()).map_err(|e| e.to_string())?;
    framed.extend_from_slice(payload);
    let mut out = Vec::new();
    if let Some(b) = rt.push(framed.freeze()).map_err(|e| e.to_string())? {
        out.extend_from_slice(&b);
    }
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let done = rt
        .finish(&HeaderMap::new(), Some(&trailers))
        .map_err(|e| e.to_string())?;
    out.extend_from_slice(&done.body);
    Ok(out)
}

/// Every frame of a gRPC body, decoded as `desc` and printed as JSON (defaults skipped).
fn frames_as_json(
    desc: &MessageDescriptor,
    body: &Bytes,
) -> Result<Vec<serde_json::Value>, String> {
    let mut frames = Vec::new();
    let mut d = FrameDecoder::new(usize::MAX);
    d.push(body.clone(), &mut frames)
        .map_err(|e| e.to_string())?;
    let opts = SerializeOptions::new().stringify_64_bit_integers(true);
    frames
        .into_iter()
        .map(|f| {
            let msg = DynamicMessage::decode(desc.clone(), f.payload)
                .map_err(|e| format!("an encoded request does not decode: {e}"))?;
            msg.serialize_with_options(serde_json::value::Serializer, &opts)
                .map_err(|e| e.to_string())
        })
        .collect()
}

fn same_message(desc: &MessageDescriptor, a: &[u8], b: &[u8]) -> bool {
    let opts = SerializeOptions::new();
    let json = |bytes: &[u8]| {
        DynamicMessage::decode(desc.clone(), bytes)
            .ok()
            .and_then(|m| {
                m.serialize_with_options(serde_json::value::Serializer, &opts)
                    .ok()
            })
    };
    matches!((json(a), json(b)), (Some(x), Some(y)) if x == y)
}

fn has_map_entries(msg: &DynamicMessage) -> bool {
    fn value(v: &Value) -> bool {
        match v {
            Value::Map(m) => !m.is_empty(),
            Value::Message(m) => has_map_entries(m),
            Value::List(l) => l.iter().any(value),
            _ => false,
        }
    }
    msg.fields().any(|(_, v)| value(v))
}
