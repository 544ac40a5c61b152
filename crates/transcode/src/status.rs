//! gRPC status to HTTP: the status table Envoy and grpc-gateway share, and the error
//! body (`google.rpc.Status`, with `details` decoded through the descriptor pool).

use base64::Engine as _;
use http::{HeaderMap, StatusCode};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

use crate::fields::decode_base64;

/// gRPC status code names, indexed by code.
pub const GRPC_CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// HTTP status per gRPC code, as in Envoy's `grpc_json_transcoder` and grpc-gateway's
/// `HTTPStatusFromCode` (499 is the client-closed-request status both use for CANCELLED).
const HTTP_FOR_GRPC: [u16; 17] = [
    200, // OK
    499, // CANCELLED
    500, // UNKNOWN
    400, // INVALID_ARGUMENT
    504, // DEADLINE_EXCEEDED
    404, // NOT_FOUND
    409, // ALREADY_EXISTS
    403, // PERMISSION_DENIED
    429, // RESOURCE_EXHAUSTED
    400, // FAILED_PRECONDITION
    409, // ABORTED
    400, // OUT_OF_RANGE
    501, // UNIMPLEMENTED
    500, // INTERNAL
    503, // UNAVAILABLE
    500, // DATA_LOSS
    401, // UNAUTHENTICATED
];

/// The HTTP status for a gRPC status code; unknown codes are 500.
pub fn http_status_for_grpc(code: u32) -> StatusCode {
    HTTP_FOR_GRPC
        .get(code as usize)
        .and_then(|s| StatusCode::from_u16(*s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The gRPC status a response ended with (from trailers, or headers when trailers-only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcStatus {
    /// The code; `None` if the upstream sent no `grpc-status` at all.
    pub code: Option<u32>,
    /// `grpc-message`, percent-decoded.
    pub message: String,
    /// `grpc-status-details-bin`, base64-decoded: a serialized `google.rpc.Status`.
    pub details: Option<Vec<u8>>,
}

impl GrpcStatus {
    /// Reads the status from `trailers`, falling back to `headers` (trailers-only responses).
    pub fn from_headers(headers: &HeaderMap, trailers: Option<&HeaderMap>) -> GrpcStatus {
        let map = match trailers {
            Some(t) if t.contains_key("grpc-status") => t,
            _ => headers,
        };
        let code = map
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u32>().ok());
        let message = map
            .get("grpc-message")
            .map(|v| {
                percent_encoding::percent_decode(v.as_bytes())
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .unwrap_or_default();
        let details = map
            .get("grpc-status-details-bin")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| decode_base64(s).ok());
        GrpcStatus {
            code,
            message,
            details,
        }
    }

    /// The HTTP status: the table above; a missing `grpc-status` is 503 (as Envoy).
    pub fn http_status(&self) -> StatusCode {
        match self.code {
            Some(c) => http_status_for_grpc(c),
            None => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// True for `grpc-status: 0`.
    pub fn is_ok(&self) -> bool {
        self.code == Some(0)
    }

    /// The code to report in the body: UNAVAILABLE (14) when the upstream sent none,
    /// matching the 503 of [`http_status`](Self::http_status).
    fn code_or_unavailable(&self) -> i32 {
        self.code.map_or(14, |c| i32::try_from(c).unwrap_or(2))
    }

    /// The error as a serialized `google.rpc.Status` (for protobuf clients).
    pub fn to_proto(&self) -> Vec<u8> {
        if let Some(d) = &self.details {
            if RpcStatus::decode(&d[..]).is_ok() {
                return d.clone();
            }
        }
        RpcStatus {
            code: self.code_or_unavailable(),
            message: self.message.clone(),
            details: Vec::new(),
        }
        .encode_to_vec()
    }

    /// The error as `google.rpc.Status` JSON: `code`, `message`, `details` (each detail
    /// an `Any` with `@type`, decoded through `pool`).
    pub fn to_json(&self, pool: &DescriptorPool, opts: &SerializeOptions) -> Vec<u8> {
        let parsed = self
            .details
            .as_deref()
            .and_then(|d| RpcStatus::decode(d).ok());
        let mut details = Vec::new();
        if let Some(st) = &parsed {
            for any in &st.details {
                details.push(any_json(pool, any, opts));
            }
        }
        // The header's message wins when both are present: it is what the handler set last.
        let message = if self.message.is_empty() {
            parsed
                .as_ref()
                .map(|s| s.message.clone())
                .unwrap_or_default()
        } else {
            self.message.clone()
        };
        let body = serde_json::json!({
            "code": self.code_or_unavailable(),
            "message": message,
            "details": details,
        });
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

fn any_json(
    pool: &DescriptorPool,
    any: &prost_types::Any,
    opts: &SerializeOptions,
) -> serde_json::Value {
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    let decoded = pool
        .get_message_by_name(name)
        .and_then(|d| DynamicMessage::decode(d, &any.value[..]).ok())
        .and_then(|m| {
            m.serialize_with_options(serde_json::value::Serializer, opts)
                .ok()
        });
    match decoded {
        Some(serde_json::Value::Object(mut o)) => {
            o.insert("@type".into(), any.type_url.clone().into());
            serde_json::Value::Object(o)
        }
        Some(other) => serde_json::json!({ "@type": any.type_url, "value": other }),
        None => serde_json::json!({
            "@type": any.type_url,
            "value": base64::engine::general_purpose::STANDARD.encode(&any.value),
        }),
    }
}

/// `google.rpc.Status`, hand-declared so the pool need not contain it.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<prost_types::Any>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table_covers_all_seventeen_codes() {
        let expected = [
            (0, 200),
            (1, 499),
            (2, 500),
            (3, 400),
            (4, 504),
            (5, 404),
            (6, 409),
            (7, 403),
            (8, 429),
            (9, 400),
            (10, 409),
            (11, 400),
            (12, 501),
            (13, 500),
            (14, 503),
            (15, 500),
            (16, 401),
        ];
        for (code, http) in expected {
            assert_eq!(
                http_status_for_grpc(code).as_u16(),
                http,
                "{}",
                GRPC_CODE_NAMES[code as usize]
            );
        }
        assert_eq!(http_status_for_grpc(17), StatusCode::INTERNAL_SERVER_ERROR);
        let missing = GrpcStatus::from_headers(&HeaderMap::new(), None);
        assert_eq!(missing.http_status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn message_is_percent_decoded_and_trailers_win() {
        let mut h = HeaderMap::new();
        h.insert("grpc-status", "3".parse().unwrap());
        let mut t = HeaderMap::new();
        t.insert("grpc-status", "5".parse().unwrap());
        t.insert("grpc-message", "no%20such%20book".parse().unwrap());
        let s = GrpcStatus::from_headers(&h, Some(&t));
        assert_eq!(s.code, Some(5));
        assert_eq!(s.message, "no such book");
        let json: serde_json::Value =
            serde_json::from_slice(&s.to_json(&DescriptorPool::new(), &SerializeOptions::new()))
                .unwrap();
        assert_eq!(json["code"], 5);
        assert_eq!(json["message"], "no such book");
    }
}
