//! W3C Trace Context (`traceparent` / `tracestate`) propagation.
//!
//! The gateway is one hop of a trace: it keeps the caller's trace id and
//! flags and sends upstream a new parent id naming its own span. Without a
//! valid `traceparent` it starts a new trace, not sampled (the gateway does
//! not decide sampling).
//!
//! `tracestate` is forwarded unchanged when the incoming `traceparent` is
//! valid, and dropped otherwise: the spec forbids interpreting `tracestate`
//! without a `traceparent`, and a restarted trace must not carry a foreign
//! vendor state.

use std::fmt;

use crate::hex;

/// Length of a version-00 `traceparent` value.
pub const TRACEPARENT_LEN: usize = 55;

/// The `sampled` bit of the trace flags.
pub const FLAG_SAMPLED: u8 = 0x01;

/// A parsed `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// 16-byte trace id, never all zero.
    pub trace_id: [u8; 16],
    /// 8-byte id of the caller's span, never all zero.
    pub parent_id: [u8; 8],
    /// Trace flags; bit 0 is `sampled`.
    pub flags: u8,
}

/// Why a `traceparent` value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TraceParentError {
    /// Shorter than 55 bytes, or a version-00 value with trailing data.
    #[error("traceparent has a wrong length")]
    Length,
    /// Version `ff` or not two lowercase hex digits.
    #[error("traceparent has an invalid version")]
    Version,
    /// A field separator is not `-`.
    #[error("traceparent field separator missing")]
    Separator,
    /// Trace id not 32 lowercase hex digits, or all zero.
    #[error("traceparent has an invalid trace id")]
    TraceId,
    /// Parent id not 16 lowercase hex digits, or all zero.
    #[error("traceparent has an invalid parent id")]
    ParentId,
    /// Flags not 2 lowercase hex digits.
    #[error("traceparent has invalid flags")]
    Flags,
}

impl TraceParent {
    /// Parses a `traceparent` header value.
    ///
    /// Version 00 must be exactly 55 bytes. A higher version is read as
    /// version 00 when what follows the flags is nothing or a `-`, as the
    /// spec asks of parsers meeting a future version. Pass the value only
    /// when the request carries exactly one `traceparent` header.
    pub fn parse(v: &[u8]) -> Result<Self, TraceParentError> {
        if v.len() < TRACEPARENT_LEN {
            return Err(TraceParentError::Length);
        }
        let version = hex::decode_lower::<1>(&v[0..2]).ok_or(TraceParentError::Version)?[0];
        if version == 0xff {
            return Err(TraceParentError::Version);
        }
        if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
            return Err(TraceParentError::Separator);
        }
        if v.len() > TRACEPARENT_LEN {
            if version == 0 {
                return Err(TraceParentError::Length);
            }
            if v[TRACEPARENT_LEN] != b'-' {
                return Err(TraceParentError::Separator);
            }
        }
        let trace_id = hex::decode_lower::<16>(&v[3..35])
            .filter(|id| *id != [0; 16])
            .ok_or(TraceParentError::TraceId)?;
        let parent_id = hex::decode_lower::<8>(&v[36..52])
            .filter(|id| *id != [0; 8])
            .ok_or(TraceParentError::ParentId)?;
        let flags = hex::decode_lower::<1>(&v[53..55]).ok_or(TraceParentError::Flags)?[0];
        Ok(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// Whether the caller recorded its span (`sampled` flag).
    pub fn sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }

    /// The version-00 header value.
    pub fn encode(&self) -> TraceParentHeader {
        let mut b = [b'-'; TRACEPARENT_LEN];
        b[0] = b'0';
        b[1] = b'0';
        hex::encode_into(&self.trace_id, &mut b[3..35]);
        hex::encode_into(&self.parent_id, &mut b[36..52]);
        hex::encode_into(&[self.flags], &mut b[53..55]);
        TraceParentHeader(b)
    }
}

/// A `traceparent` value ready to send, stored inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TraceParentHeader([u8; TRACEPARENT_LEN]);

impl TraceParentHeader {
    /// The value as text.
    pub fn as_str(&self) -> &str {
        // Always ASCII: hex digits and dashes.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The value as bytes, e.g. for `HeaderValue::from_bytes`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for TraceParentHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TraceParentHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TraceParentHeader")
            .field(&self.as_str())
            .finish()
    }
}

/// What to send upstream for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop<'a> {
    /// The caller's context, when its `traceparent` was valid.
    pub incoming: Option<TraceParent>,
    /// The context to send: same trace id and flags as `incoming` (or a new
    /// trace), with the gateway's span as parent.
    pub outgoing: TraceParent,
    /// `tracestate` to send unchanged; `None` when the trace was restarted.
    pub tracestate: Option<&'a [u8]>,
}

impl Hop<'_> {
    /// The gateway's span id for this hop (the upstream's parent id).
    pub fn span_id(&self) -> [u8; 8] {
        self.outgoing.parent_id
    }
}

/// Continues the caller's trace, or starts a new one when `traceparent` is
/// absent or invalid.
pub fn propagate<'a>(traceparent: Option<&[u8]>, tracestate: Option<&'a [u8]>) -> Hop<'a> {
    let incoming = traceparent.and_then(|v| TraceParent::parse(v).ok());
    let outgoing = match incoming {
        Some(p) => TraceParent {
            parent_id: new_span_id(),
            ..p
        },
        None => TraceParent {
            trace_id: new_trace_id(),
            parent_id: new_span_id(),
            flags: 0,
        },
    };
    Hop {
        incoming,
        outgoing,
        tracestate: incoming.and(tracestate),
    }
}

/// A random, non-zero trace id (thread-local RNG, no syscall).
pub fn new_trace_id() -> [u8; 16] {
    loop {
        let v = fastrand::u128(..);
        if v != 0 {
            return v.to_be_bytes();
        }
    }
}

/// A random, non-zero span id (thread-local RNG, no syscall).
pub fn new_span_id() -> [u8; 8] {
    loop {
        let v = fastrand::u64(..);
        if v != 0 {
            return v.to_be_bytes();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example from the W3C Trace Context recommendation.
    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_example() {
        let p = TraceParent::parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(
            p.trace_id,
            [
                0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
                0x47, 0x36
            ]
        );
        assert_eq!(
            p.parent_id,
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert!(p.sampled());
        assert_eq!(p.encode().as_str(), EXAMPLE);
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        assert!(!TraceParent::parse(unsampled.as_bytes()).unwrap().sampled());
    }

    #[test]
    fn rejects_invalid_values() {
        use TraceParentError::*;
        let cases: &[(&str, TraceParentError)] = &[
            ("", Length),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0", Length),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", Length),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", Length),
            ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Version),
            ("0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Version),
            ("0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Version),
            ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", TraceId),
            ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", TraceId),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", ParentId),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01", ParentId),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", Flags),
            ("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Separator),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736x00f067aa0ba902b7-01", Separator),
            ("00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", Separator),
            // Two headers joined by a comma.
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01,00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Length,
            ),
        ];
        for (v, want) in cases {
            assert_eq!(TraceParent::parse(v.as_bytes()), Err(*want), "{v:?}");
        }
    }

    #[test]
    fn future_versions_parse_as_00_when_shaped_like_it() {
        let exact = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let more = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds";
        let glued = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01what";
        assert!(TraceParent::parse(exact.as_bytes()).is_ok());
        let p = TraceParent::parse(more.as_bytes()).unwrap();
        // Sent on as version 00, the only one we can write.
        assert_eq!(p.encode().as_str(), EXAMPLE);
        assert_eq!(
            TraceParent::parse(glued.as_bytes()),
            Err(TraceParentError::Separator)
        );
    }

    #[test]
    fn continues_a_valid_trace_with_a_new_parent() {
        let state = b"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
        let hop = propagate(Some(EXAMPLE.as_bytes()), Some(state));
        let incoming = hop.incoming.unwrap();
        assert_eq!(hop.outgoing.trace_id, incoming.trace_id);
        assert_eq!(hop.outgoing.flags, incoming.flags);
        assert_ne!(hop.outgoing.parent_id, incoming.parent_id);
        assert_ne!(hop.outgoing.parent_id, [0; 8]);
        assert_eq!(hop.span_id(), hop.outgoing.parent_id);
        assert_eq!(hop.tracestate, Some(&state[..]));
        let sent = hop.outgoing.encode();
        assert!(sent
            .as_str()
            .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(sent.as_str().ends_with("-01"));
        assert_eq!(TraceParent::parse(sent.as_bytes()), Ok(hop.outgoing));
    }

    #[test]
    fn restarts_when_absent_or_invalid() {
        for tp in [
            None,
            Some(&b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"[..]),
        ] {
            let hop = propagate(tp, Some(b"rojo=1"));
            assert_eq!(hop.incoming, None);
            assert_eq!(hop.tracestate, None);
            assert_eq!(hop.outgoing.flags, 0);
            assert_ne!(hop.outgoing.trace_id, [0; 16]);
            let sent = hop.outgoing.encode();
            assert!(sent.as_str().ends_with("-00"));
            assert_eq!(TraceParent::parse(sent.as_bytes()), Ok(hop.outgoing));
        }
        let a = propagate(None, None).outgoing.trace_id;
        let b = propagate(None, None).outgoing.trace_id;
        assert_ne!(a, b);
    }
}
