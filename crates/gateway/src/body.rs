//! The response body type the gateway hands to hyper: a small enum so the common cases
//! (a fixed body, an upstream stream) need no boxing.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::BoxError;

/// A response body: fixed bytes, or the upstream's body streamed through.
#[derive(Debug)]
pub enum ResponseBody {
    /// A complete body held in memory (errors, direct responses, admin pages).
    Full(Option<Bytes>),
    /// The upstream's body, streamed as it arrives; trailers pass through.
    Upstream(Incoming),
    /// A gRPC server stream transcoded to JSON/NDJSON/SSE as it arrives.
    Transcoded(Box<crate::transcoding::TranscodedStream>),
    /// A gRPC answer re-encoded as gRPC-Web as it arrives.
    GrpcWeb(Box<crate::grpc_web::WebStream>),
}

impl ResponseBody {
    /// An empty body.
    pub fn empty() -> Self {
        ResponseBody::Full(None)
    }

    /// A body of the given bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            ResponseBody::Full(None)
        } else {
            ResponseBody::Full(Some(bytes))
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ResponseBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ResponseBody::Upstream(inner) => Pin::new(inner)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(|e| Box::new(e) as BoxError))),
            ResponseBody::Transcoded(inner) => Pin::new(inner.as_mut()).poll_frame(cx),
            ResponseBody::GrpcWeb(inner) => Pin::new(inner.as_mut()).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Full(bytes) => bytes.is_none(),
            ResponseBody::Upstream(inner) => inner.is_end_stream(),
            ResponseBody::Transcoded(inner) => inner.is_end_stream(),
            ResponseBody::GrpcWeb(inner) => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ResponseBody::Full(None) => SizeHint::with_exact(0),
            ResponseBody::Upstream(inner) => inner.size_hint(),
            ResponseBody::Transcoded(inner) => inner.size_hint(),
            ResponseBody::GrpcWeb(inner) => inner.size_hint(),
        }
    }
}
