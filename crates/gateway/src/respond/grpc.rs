//! Gateway errors for gRPC and gRPC-Web clients: they read a gRPC status, never an HTTP
//! one, so the error becomes a trailers-only answer (HTTP 200, `grpc-status` and
//! `grpc-message` in the headers, no body), as Envoy answers its local replies to gRPC
//! requests.

use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use sekisho_transcode::grpc_web::{self, WebMode};

use crate::body::ResponseBody;

/// How a request speaks gRPC, if it does: decides the shape of the gateway's errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcClient {
    /// `application/grpc[+proto]`.
    Grpc,
    /// `application/grpc-web[-text][+proto]`.
    Web(WebMode),
}

impl GrpcClient {
    /// The gRPC flavor of a request, from its `Content-Type`.
    pub fn of(headers: &HeaderMap) -> Option<GrpcClient> {
        let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        if let Some(mode) = WebMode::from_content_type(ct) {
            return Some(GrpcClient::Web(mode));
        }
        let media = ct.split(';').next().unwrap_or_default().trim();
        let rest = media
            .get(..16)
            .filter(|p| p.eq_ignore_ascii_case("application/grpc"));
        let subtype_ok = media.len() == 16 || media.as_bytes().get(16) == Some(&b'+');
        (rest.is_some() && subtype_ok).then_some(GrpcClient::Grpc)
    }
}

/// The gRPC code for an HTTP status the gateway answers with. The base is the table of the
/// gRPC spec (`doc/http-grpc-status-mapping.md`), which Envoy's `Grpc::Utility::
/// httpToGrpcStatus` applies to its local replies: 400 INTERNAL, 401 UNAUTHENTICATED, 403
/// PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503 UNAVAILABLE, else UNKNOWN. Two
/// statuses say more than the table keeps, and say it as gRPC servers do: 504 (the route's
/// timeout passed) is DEADLINE_EXCEEDED, 413 (a message over the limit) is
/// RESOURCE_EXHAUSTED. 429 stays UNAVAILABLE, as in Envoy's rate limit filter by default
/// (`rate_limited_as_resource_exhausted: false`): clients retry it.
pub fn grpc_code_for_http(status: StatusCode) -> u32 {
    match status.as_u16() {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        413 => 8,
        429 | 502 | 503 => 14,
        504 => 4,
        _ => 2,
    }
}

/// A trailers-only gRPC answer for a gateway error: the message names the request id, so
/// a client's error report can be matched with the access log line.
pub fn error_response(
    client: GrpcClient,
    status: StatusCode,
    message: &str,
    request_id: &str,
) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::empty());
    let h = resp.headers_mut();
    let code = grpc_code_for_http(status);
    h.insert("grpc-status", HeaderValue::from(code));
    let message = format!("{message} (request id {request_id})");
    if let Ok(v) = HeaderValue::from_str(&percent_encode(&message)) {
        h.insert("grpc-message", v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-request-id", v);
    }
    match client {
        GrpcClient::Grpc => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
        }
        // Also exposes grpc-status and grpc-message to the browser's script.
        GrpcClient::Web(mode) => grpc_web::web_response_headers(h, mode),
    }
    resp
}

/// `grpc-message` is percent-encoded UTF-8: every byte outside printable ASCII, and `%`
/// itself (gRPC over HTTP/2, "Responses").
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn grpc_clients_are_told_apart_by_content_type() {
        assert_eq!(
            GrpcClient::of(&ct("application/grpc")),
            Some(GrpcClient::Grpc)
        );
        assert_eq!(
            GrpcClient::of(&ct("Application/gRPC+proto")),
            Some(GrpcClient::Grpc)
        );
        assert_eq!(
            GrpcClient::of(&ct("application/grpc-web-text")),
            Some(GrpcClient::Web(WebMode::Text))
        );
        assert_eq!(
            GrpcClient::of(&ct("application/grpc-web+proto; charset=x")),
            Some(GrpcClient::Web(WebMode::Binary))
        );
        assert_eq!(GrpcClient::of(&ct("application/grpcx")), None);
        assert_eq!(GrpcClient::of(&ct("application/json")), None);
        assert_eq!(GrpcClient::of(&HeaderMap::new()), None);
    }

    #[test]
    fn http_statuses_map_as_the_grpc_spec_says() {
        let code = |s: u16| grpc_code_for_http(StatusCode::from_u16(s).unwrap());
        assert_eq!(code(400), 13);
        assert_eq!(code(401), 16);
        assert_eq!(code(403), 7);
        assert_eq!(code(404), 12);
        assert_eq!(code(413), 8);
        assert_eq!(code(429), 14);
        assert_eq!(code(503), 14);
        assert_eq!(code(504), 4);
        assert_eq!(code(500), 2);
    }

    #[test]
    fn the_answer_is_trailers_only_with_the_request_id() {
        let r = error_response(
            GrpcClient::Web(WebMode::Text),
            StatusCode::SERVICE_UNAVAILABLE,
            "no endpoint: 100% down",
            "abc",
        );
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers();
        assert_eq!(h["grpc-status"], "14");
        assert_eq!(
            h["grpc-message"],
            "no endpoint: 100%25 down (request id abc)"
        );
        assert_eq!(h["content-type"], "application/grpc-web-text+proto");
        assert!(h["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("grpc-message"));
        let r = error_response(GrpcClient::Grpc, StatusCode::UNAUTHORIZED, "é", "abc");
        assert_eq!(r.headers()["grpc-status"], "16");
        assert_eq!(r.headers()["grpc-message"], "%C3%A9 (request id abc)");
        assert_eq!(r.headers()["content-type"], "application/grpc");
    }
}
