//! A direct JSON ⇄ protobuf-wire codec driven by compiled message plans, for the hot
//! path: no `DynamicMessage` in between.
//!
//! The codec is an optimisation of the `DynamicMessage` path in [`crate::json`] and
//! [`crate::response`], never a second opinion: whenever it meets something it does not
//! reproduce exactly (a duplicate JSON key, a merged sub-message, a malformed input, ...)
//! it returns [`Fallback`] and the caller runs the `DynamicMessage` path on the same
//! input, which then also produces the error message. Message types it cannot handle at
//! all (proto2, extensions, `google.protobuf.*` at the top) have no plan; nested ones are
//! delegated to prost-reflect field by field (see [`plan::Scalar::Delegate`]).

mod encode;
mod plan;
mod render;
mod scan;

pub(crate) use encode::{encode_json, encode_serde, patch_len, EncodeCx};
pub(crate) use plan::{Codec, PlanId};
pub(crate) use render::{render_json, RenderCx};
pub(crate) use scan::encode_plain;

/// The fast path declined the input; run the `DynamicMessage` path instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("fast codec declined the message: {0}")]
pub(crate) struct Fallback(pub &'static str);

impl From<serde_json::Error> for Fallback {
    fn from(_: serde_json::Error) -> Self {
        Fallback("JSON the fast path does not take")
    }
}

impl From<prost::DecodeError> for Fallback {
    fn from(_: prost::DecodeError) -> Self {
        Fallback("undecodable wire bytes")
    }
}
