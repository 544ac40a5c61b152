//! Transcoded routes: HTTP+JSON / HTTP+Protobuf requests become gRPC calls to the route's
//! cluster and the answers come back as JSON or protobuf (the engine is `sekisho-transcode`;
//! this module does the I/O). `application/grpc` requests never come here: they pass through;
//! gRPC-Web goes to `grpc_web`.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use sekisho_transcode::metadata::{self, AllowList};
use sekisho_transcode::{BodyFormat, Options, ResponseTranscoder, StreamFormat, Transcoder};

use crate::access::LogGuard;
use crate::body::ResponseBody;
use crate::forward::{self, RequestBody};
use crate::plan::{RouteEntry, Target};
use crate::respond::GatewayError;
use crate::BoxError;

/// A route's compiled `transcode` section.
pub struct TranscodeRoute {
    transcoder: Transcoder,
    allow: AllowList,
    max_request_bytes: u64,
}

impl TranscodeRoute {
    /// Reads the descriptor set and compiles the HTTP rules of the chosen services.
    pub fn new(cfg: &sekisho_config::Transcode) -> Result<Self, String> {
        let set = std::fs::read(&cfg.descriptors).map_err(|e| {
            format!(
                "transcode: reading descriptors {}: {e}",
                cfg.descriptors.display()
            )
        })?;
        let opts = Options {
            auto_mapping: cfg.auto_mapping,
            reject_unknown_fields: cfg.reject_unknown_fields,
            case_insensitive_enums: cfg.case_insensitive_enums,
            use_proto_field_names: cfg.use_proto_field_names,
            emit_defaults: cfg.emit_defaults,
            stream_format: match cfg.stream_format {
                sekisho_config::StreamFormat::JsonArray => StreamFormat::JsonArray,
                sekisho_config::StreamFormat::Ndjson => StreamFormat::Ndjson,
                sekisho_config::StreamFormat::Sse => StreamFormat::Sse,
            },
            ..Options::default()
        };
        let transcoder = Transcoder::new(&set, &cfg.services, opts)
            .map_err(|e| format!("transcode: {}: {e}", cfg.descriptors.display()))?;
        let names = cfg
            .metadata_headers
            .iter()
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            .collect();
        Ok(TranscodeRoute {
            transcoder,
            allow: AllowList {
                names,
                prefixes: Vec::new(),
            },
            max_request_bytes: cfg.max_request_bytes,
        })
    }
}

impl TranscodeRoute {
    /// The largest request body the route reads (`transcode.max_request_bytes`).
    pub fn max_request_bytes(&self) -> u64 {
        self.max_request_bytes
    }
}

/// Whether a request is already gRPC (or gRPC-Web): those pass through untouched.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// Headers of the client request that also go on the gRPC call (identity and tracing).
const CARRIED: [&str; 7] = [
    "host",
    "x-request-id",
    "traceparent",
    "tracestate",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

/// Serves a transcoded request: `parts` already carry the gateway's headers (forwarded,
/// request id, trace context, route edits) and the upstream path.
pub async fn serve(
    tc: &TranscodeRoute,
    route: &RouteEntry,
    target: &Target,
    parts: http::request::Parts,
    body: Incoming,
    log: &mut LogGuard,
) -> Result<Response<ResponseBody>, GatewayError> {
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let matched = tc
        .transcoder
        .route(&parts.method, &path, query.as_deref())
        .ok_or(GatewayError::NoRoute)?;
    let text = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (content_type, accept) = (text(header::CONTENT_TYPE), text(header::ACCEPT));
    let (bytes, _) = crate::pipeline::read_body(&parts.headers, body, tc.max_request_bytes).await?;
    let grpc = matched
        .encode_request(content_type.as_deref(), bytes)
        .map_err(GatewayError::Transcode)?;

    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = metadata::grpc_request_headers(
        &parts.headers,
        &tc.allow,
        &parts.method,
        path_and_query,
        Some(route.timeout),
    );
    for name in CARRIED {
        if let Some(v) = parts.headers.get(name) {
            headers.insert(HeaderName::from_static(name), v.clone());
        }
    }
    let mut call = Request::new(());
    *call.method_mut() = Method::POST;
    *call.uri_mut() = Uri::try_from(matched.grpc_path())
        .map_err(|_| GatewayError::Internal("gRPC path is not a URI".into()))?;
    *call.version_mut() = Version::HTTP_2;
    *call.headers_mut() = headers;
    let (call, ()) = call.into_parts();

    let sent = forward::send(
        &target.cluster,
        call,
        RequestBody::Kept(grpc.body, None),
        route.retry.as_ref(),
        route.timeout,
        route.per_try_timeout,
    )
    .await?;
    log.set_upstream(sent.endpoint, sent.in_flight);
    let (resp, mut upstream) = sent.response.into_parts();
    if resp.status != StatusCode::OK {
        return Err(GatewayError::BadUpstreamAnswer(format!(
            "the gRPC upstream answered HTTP {}",
            resp.status
        )));
    }
    let mut rt = matched.response(BodyFormat::for_response(
        content_type.as_deref(),
        accept.as_deref(),
    ));
    // Read until the first transcoded bytes (a stream starts) or the end (unary, or a stream
    // that failed or was empty: its status decides the head), within the route's budget.
    let mut trailers = None;
    let first = tokio::time::timeout(route.timeout, async {
        while let Some(frame) = upstream.frame().await {
            let frame = frame.map_err(|e| {
                GatewayError::BadUpstreamAnswer(format!("reading the gRPC answer: {e}"))
            })?;
            match frame.into_data() {
                Ok(data) => {
                    if let Some(out) = rt.push(data).map_err(GatewayError::Transcode)? {
                        return Ok(Some(out));
                    }
                }
                Err(frame) => trailers = frame.into_trailers().ok(),
            }
        }
        Ok::<_, GatewayError>(None)
    })
    .await
    .map_err(|_| GatewayError::UpstreamTimeout(route.timeout))??;

    let mut out_headers = HeaderMap::new();
    metadata::response_headers(&resp.headers, trailers.as_ref(), &mut out_headers);
    let response = match first {
        None => {
            let fin = rt
                .finish(&resp.headers, trailers.as_ref())
                .map_err(GatewayError::Transcode)?;
            let mut r = Response::new(ResponseBody::full(fin.body));
            *r.status_mut() = fin.status;
            if let Ok(ct) = HeaderValue::from_str(&fin.content_type) {
                out_headers.insert(header::CONTENT_TYPE, ct);
            }
            r
        }
        Some(first) => {
            if let Ok(ct) = HeaderValue::from_str(rt.content_type()) {
                out_headers.insert(header::CONTENT_TYPE, ct);
            }
            Response::new(ResponseBody::Transcoded(Box::new(TranscodedStream {
                first: Some(first),
                upstream,
                rt,
                headers: resp.headers,
                trailers: None,
                done: false,
            })))
        }
    };
    let mut response = response;
    response.headers_mut().extend(out_headers);
    route.response_headers.apply(response.headers_mut());
    Ok(response)
}

/// A server stream being transcoded as it arrives.
pub struct TranscodedStream {
    first: Option<Bytes>,
    upstream: Incoming,
    rt: ResponseTranscoder,
    headers: HeaderMap,
    trailers: Option<HeaderMap>,
    done: bool,
}

impl std::fmt::Debug for TranscodedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranscodedStream")
            .field("done", &self.done)
            .finish()
    }
}

impl Body for TranscodedStream {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.upstream).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => match this.rt.push(data) {
                        Ok(Some(out)) => return Poll::Ready(Some(Ok(Frame::data(out)))),
                        Ok(None) => continue,
                        Err(e) => {
                            this.done = true;
                            return Poll::Ready(Some(Err(Box::new(e))));
                        }
                    },
                    Err(frame) => this.trailers = frame.into_trailers().ok(),
                },
                Poll::Ready(None) => {
                    // The stream's end: the closing bytes (`]`, or an in-stream error element).
                    this.done = true;
                    return match this.rt.finish(&this.headers, this.trailers.as_ref()) {
                        Ok(fin) if fin.body.is_empty() => Poll::Ready(None),
                        Ok(fin) => Poll::Ready(Some(Ok(Frame::data(fin.body)))),
                        Err(e) => Poll::Ready(Some(Err(Box::new(e)))),
                    };
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.first.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
