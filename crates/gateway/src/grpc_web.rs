//! gRPC-Web on transcoded routes: a browser's `application/grpc-web[-text]` request becomes
//! a gRPC call to the route's cluster, and the answer streams back as gRPC-Web (trailers as
//! the last frame, base64 for `-text`). The conversions are `sekisho_transcode::grpc_web`;
//! this module does the I/O.
//!
//! Only routes with a `transcode` section translate (they declare a gRPC cluster, as
//! Envoy's per-route `grpc_web` filter does); elsewhere gRPC-Web passes through untouched,
//! so an upstream that speaks gRPC-Web itself keeps working.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use sekisho_transcode::grpc_web::{self, TextDecoder, WebEncoder, WebMode};
use sekisho_transcode::TranscodeError;

use crate::access::LogGuard;
use crate::body::ResponseBody;
use crate::forward::{self, RequestBody};
use crate::plan::{RouteEntry, Target};
use crate::respond::GatewayError;
use crate::BoxError;

/// The gRPC-Web mode of a request, `None` if it is not gRPC-Web.
pub fn mode(headers: &HeaderMap) -> Option<WebMode> {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(WebMode::from_content_type)
}

/// Serves a gRPC-Web request: `parts` already carry the gateway's headers and the
/// upstream path (`/pkg.Service/Method`).
pub async fn serve(
    mode: WebMode,
    max_request_bytes: u64,
    route: &RouteEntry,
    target: &Target,
    mut parts: http::request::Parts,
    body: Incoming,
    log: &mut LogGuard,
) -> Result<Response<ResponseBody>, GatewayError> {
    if parts.method != Method::POST {
        return Err(bad_request(
            "method",
            format!("gRPC-Web requests are POST, not {}", parts.method),
        ));
    }
    // Browsers send one message (unary or server streaming), so the body is read whole:
    // bounded by the route's transcode limit, and replayable when the route retries.
    let (raw, _) = crate::pipeline::read_body(&parts.headers, body, max_request_bytes).await?;
    let framed = match mode {
        WebMode::Binary => raw,
        WebMode::Text => {
            let mut d = TextDecoder::default();
            let bytes = d.push(&raw).map_err(GatewayError::Transcode)?;
            if !d.is_empty() {
                return Err(bad_request(
                    "body",
                    "grpc-web-text body ends inside a base64 group",
                ));
            }
            bytes
        }
    };
    grpc_web::upstream_request_headers(&mut parts.headers);
    parts.version = Version::HTTP_2;

    let upstream_start = std::time::Instant::now();
    let sent = forward::send(
        &target.cluster,
        parts,
        RequestBody::Kept(framed, None),
        route.retry.as_ref(),
        route.timeout,
        route.per_try_timeout,
    )
    .await;
    log.set_upstream_time(upstream_start.elapsed());
    let sent = sent?;
    log.set_upstream(sent.endpoint, sent.in_flight);
    let (mut head, upstream) = sent.response.into_parts();
    if head.status != StatusCode::OK {
        return Err(GatewayError::BadUpstreamAnswer(format!(
            "the gRPC upstream answered HTTP {}",
            head.status
        )));
    }
    crate::headers::strip_hop_by_hop(&mut head.headers, false);
    // A trailers-only answer (the status in the headers, no body) stays as it is: the
    // gRPC-Web protocol allows it, and clients read the status from the headers.
    let trailers_only = head.headers.contains_key("grpc-status");
    grpc_web::web_response_headers(&mut head.headers, mode);
    route.response_headers.apply(&mut head.headers);
    let body = WebStream {
        upstream,
        encoder: WebEncoder::new(mode),
        trailers_only,
        done: false,
    };
    Ok(Response::from_parts(
        head,
        ResponseBody::GrpcWeb(Box::new(body)),
    ))
}

fn bad_request(field: &str, reason: impl Into<String>) -> GatewayError {
    GatewayError::Transcode(TranscodeError::BadRequest {
        field: field.into(),
        reason: reason.into(),
    })
}

/// The upstream's gRPC body re-encoded as gRPC-Web chunk by chunk, as it arrives.
pub struct WebStream {
    upstream: Incoming,
    encoder: WebEncoder,
    trailers_only: bool,
    done: bool,
}

impl std::fmt::Debug for WebStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebStream")
            .field("done", &self.done)
            .finish()
    }
}

impl Body for WebStream {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.upstream).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => {
                    // A reset upstream resets the client's stream too: never a clean end
                    // that a client could take for a complete answer.
                    this.done = true;
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if data.is_empty() => continue,
                    Ok(data) => return Poll::Ready(Some(Ok(Frame::data(this.encoder.data(data))))),
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            this.done = true;
                            let last = this.encoder.trailers(Some(&trailers));
                            return Poll::Ready(Some(Ok(Frame::data(last))));
                        }
                    }
                },
                Poll::Ready(None) => {
                    this.done = true;
                    if this.trailers_only {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(this.encoder.trailers(None)))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
