//! JSON → protobuf wire in one pass: serde_json's streaming deserializer drives seeds
//! built from the message plan, and values are written straight into one buffer.
//! Length prefixes are back-patched (one byte reserved, the body moved in the rare case
//! the length needs more), so nested messages are never measured twice.
//!
//! Every value conversion mirrors prost-reflect's JSON visitors (`dynamic/serde/de`), so
//! a document decodes to the same values. Where prost-reflect's result would depend on
//! state this pass does not keep (a repeated key, two members of one oneof), the pass
//! stops with an error and the caller falls back.

use std::fmt;
use std::str::FromStr;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::{alphabet, DecodeError, Engine as _};
use prost::Message as _;
use prost_reflect::{DeserializeOptions, DynamicMessage, EnumDescriptor, MessageDescriptor};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::plan::{Codec, Delegated, FieldPlan, PlanId, Scalar, Shape};
use super::Fallback;

/// What the encoding of one document depends on besides the plans.
pub(crate) struct EncodeCx<'a> {
    pub codec: &'a Codec,
    pub de: &'a DeserializeOptions,
    pub deny_unknown: bool,
    pub case_insensitive_enums: bool,
}

/// Appends the wire encoding of the JSON document `json` (a message of plan `id`) to
/// `out`. A top-level key naming one of the field numbers in `bound` (fields the path
/// sets) declines: the path's value must win the way the `DynamicMessage` path makes it.
pub(crate) fn encode_json(
    cx: &EncodeCx<'_>,
    id: PlanId,
    json: &[u8],
    bound: &[u32],
    out: &mut Vec<u8>,
) -> Result<(), Fallback> {
    if json.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    // One UTF-8 check of the whole document (fast on ASCII) instead of one per string:
    // serde_json's `str` reader trusts its input. Invalid UTF-8 anywhere declines, and the
    // `DynamicMessage` path decides (it may still accept it inside an ignored field).
    let text = std::str::from_utf8(json).map_err(|_| Fallback("not UTF-8"))?;
    let start = out.len();
    // The scanner takes plain documents; what it declines, serde_json's pass decides.
    if super::scan::encode_plain(cx, id, text, bound, out).is_ok() {
        return Ok(());
    }
    out.truncate(start);
    encode_serde(cx, id, text, bound, out)
}

/// [`encode_json`] by serde_json's streaming deserializer: every document the
/// `DynamicMessage` path takes, except the few noted in the module docs.
pub(crate) fn encode_serde(
    cx: &EncodeCx<'_>,
    id: PlanId,
    text: &str,
    bound: &[u32],
    out: &mut Vec<u8>,
) -> Result<(), Fallback> {
    let start = out.len();
    let mut de = serde_json::Deserializer::from_str(text);
    let r = de
        .deserialize_map(MsgVisitor { cx, id, bound, out })
        .and_then(|()| de.end());
    if r.is_err() {
        out.truncate(start);
    }
    Ok(r?)
}

struct MsgVisitor<'a, 'c> {
    cx: &'a EncodeCx<'c>,
    id: PlanId,
    bound: &'a [u32],
    out: &'a mut Vec<u8>,
}

impl<'de> Visitor<'de> for MsgVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let plan = self.cx.codec.plan(self.id);
        let mut seen = Seen::new(plan.fields.len());
        let mut oneofs = 0u8;
        while let Some(key) = map.next_key_seed(KeySeed(|name: &str| plan.by_name(name)))? {
            let Some(i) = key else {
                if self.cx.deny_unknown {
                    return Err(de::Error::custom("unknown field"));
                }
                if self.cx.case_insensitive_enums {
                    // That path parses the whole document first, which checks what
                    // skipping does not (UTF-8 in strings, numbers in range).
                    map.next_value::<serde_json::Value>()?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
                continue;
            };
            let f = &plan.fields[i];
            if seen.insert(i) || self.bound.contains(&f.number) {
                return Err(de::Error::custom("repeated or path-bound field"));
            }
            let set = map.next_value_seed(FieldSeed {
                cx: self.cx,
                f,
                out: self.out,
            })?;
            if let (true, Some(o)) = (set, f.oneof) {
                let bit = 1u8 << o;
                if oneofs & bit != 0 {
                    return Err(de::Error::custom("two members of one oneof"));
                }
                oneofs |= bit;
            }
        }
        Ok(())
    }
}

/// Which fields a JSON object named already.
pub(super) enum Seen {
    Few(u64),
    Many(Vec<bool>),
}

impl Seen {
    pub(super) fn new(n: usize) -> Seen {
        if n <= 64 {
            Seen::Few(0)
        } else {
            Seen::Many(vec![false; n])
        }
    }

    /// Marks field `i`; true if it was marked before.
    pub(super) fn insert(&mut self, i: usize) -> bool {
        match self {
            Seen::Few(bits) => {
                let bit = 1u64 << i;
                let was = *bits & bit != 0;
                *bits |= bit;
                was
            }
            Seen::Many(v) => std::mem::replace(&mut v[i], true),
        }
    }
}

/// A JSON object key, resolved without allocating.
struct KeySeed<F>(F);

impl<'de, F: FnOnce(&str) -> Option<usize>> DeserializeSeed<'de> for KeySeed<F> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, F: FnOnce(&str) -> Option<usize>> Visitor<'de> for KeySeed<F> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((self.0)(v))
    }
}

/// One field's value; yields whether the field ended up set (prost-reflect sets nothing
/// for `null` and for unknown enum names).
struct FieldSeed<'a, 'c> {
    cx: &'a EncodeCx<'c>,
    f: &'a FieldPlan,
    out: &'a mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        self.visit_none()
    }

    fn visit_none<E: de::Error>(self) -> Result<bool, E> {
        // `null` is "not set", except where it is a value: google.protobuf.Value.
        match (&self.f.shape, &self.f.ty) {
            (Shape::Single, Scalar::Delegate(dl)) if is_value_wkt(&dl.desc) => {
                let m = DynamicMessage::deserialize_with_options(
                    dl.desc.clone(),
                    serde_json::Value::Null,
                    self.cx.de,
                )
                .map_err(E::custom)?;
                put_message(self.out, self.f.tag.as_slice(), &m);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        let FieldSeed { cx, f, out } = self;
        match &f.shape {
            Shape::Single => ValueSeed {
                cx,
                ty: &f.ty,
                tag: Some(f.tag.as_slice()),
                skip_default: !f.presence,
                out,
            }
            .deserialize(d),
            Shape::List => {
                d.deserialize_seq(ListVisitor { cx, f, out })?;
                Ok(true)
            }
            Shape::Map {
                key,
                key_tag,
                value_tag,
            } => {
                d.deserialize_map(MapVisitor {
                    cx,
                    f,
                    key,
                    key_tag: key_tag.as_slice(),
                    value_tag: value_tag.as_slice(),
                    out,
                })?;
                Ok(true)
            }
        }
    }
}

pub(super) fn is_value_wkt(m: &MessageDescriptor) -> bool {
    m.full_name() == "google.protobuf.Value"
}

struct ListVisitor<'a, 'c> {
    cx: &'a EncodeCx<'c>,
    f: &'a FieldPlan,
    out: &'a mut Vec<u8>,
}

impl<'de> Visitor<'de> for ListVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let ListVisitor { cx, f, out } = self;
        if f.packed {
            let start = out.len();
            out.extend_from_slice(f.ld_tag.as_slice());
            let len_at = out.len();
            out.push(0);
            while seq
                .next_element_seed(ValueSeed {
                    cx,
                    ty: &f.ty,
                    tag: None,
                    skip_default: false,
                    out,
                })?
                .is_some()
            {}
            if out.len() == len_at + 1 {
                out.truncate(start); // an empty list is not written
            } else {
                patch_len(out, len_at);
            }
        } else {
            while seq
                .next_element_seed(ValueSeed {
                    cx,
                    ty: &f.ty,
                    tag: Some(f.tag.as_slice()),
                    skip_default: false,
                    out,
                })?
                .is_some()
            {}
        }
        Ok(())
    }
}

struct MapVisitor<'a, 'c> {
    cx: &'a EncodeCx<'c>,
    f: &'a FieldPlan,
    key: &'a Scalar,
    key_tag: &'a [u8],
    value_tag: &'a [u8],
    out: &'a mut Vec<u8>,
}

impl<'de> Visitor<'de> for MapVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let MapVisitor {
            cx,
            f,
            key,
            key_tag,
            value_tag,
            out,
        } = self;
        let value_presence = matches!(f.ty, Scalar::Message(_) | Scalar::Delegate(_));
        loop {
            let start = out.len();
            out.extend_from_slice(f.ld_tag.as_slice());
            let len_at = out.len();
            out.push(0);
            if map
                .next_key_seed(MapKeySeed {
                    ty: key,
                    tag: key_tag,
                    out: &mut *out,
                })?
                .is_none()
            {
                out.truncate(start);
                return Ok(());
            }
            let set = map.next_value_seed(ValueSeed {
                cx,
                ty: &f.ty,
                tag: Some(value_tag),
                skip_default: !value_presence,
                out: &mut *out,
            })?;
            if set {
                patch_len(out, len_at);
            } else {
                out.truncate(start); // an unknown enum name drops the entry
            }
        }
    }
}

/// A map key: JSON object keys are strings, parsed by the key type as prost-reflect does.
pub(super) struct MapKeySeed<'a> {
    pub ty: &'a Scalar,
    pub tag: &'a [u8],
    pub out: &'a mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for MapKeySeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for MapKeySeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let tag = self.tag;
        let p = match self.ty {
            Scalar::Int32 | Scalar::Sint32 | Scalar::Sfixed32 => {
                Prim::I32(i32::from_str(v).map_err(E::custom)?)
            }
            Scalar::Int64 | Scalar::Sint64 | Scalar::Sfixed64 => {
                Prim::I64(i64::from_str(v).map_err(E::custom)?)
            }
            Scalar::Uint32 | Scalar::Fixed32 => Prim::U32(u32::from_str(v).map_err(E::custom)?),
            Scalar::Uint64 | Scalar::Fixed64 => Prim::U64(u64::from_str(v).map_err(E::custom)?),
            Scalar::Bool => Prim::Bool(bool::from_str(v).map_err(E::custom)?),
            Scalar::String => {
                if !v.is_empty() {
                    put_bytes(self.out, tag, v.as_bytes());
                }
                return Ok(());
            }
            _ => return Err(E::custom("not a map key type")),
        };
        if !p.is_default() {
            self.out.extend_from_slice(tag);
            put_prim(self.out, self.ty, p);
        }
        Ok(())
    }
}

/// One value of type `ty`, written with `tag` (none inside a packed run); a value equal
/// to the default is skipped when `skip_default` (proto3 fields without presence).
/// Yields false when nothing was set (an unknown enum name).
struct ValueSeed<'a, 'c> {
    cx: &'a EncodeCx<'c>,
    ty: &'a Scalar,
    tag: Option<&'a [u8]>,
    skip_default: bool,
    out: &'a mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        let ValueSeed {
            cx,
            ty,
            tag,
            skip_default,
            out,
        } = self;
        let tag = tag.unwrap_or_default();
        match ty {
            Scalar::String => {
                return d.deserialize_string(StrVisitor {
                    tag,
                    skip_default,
                    out,
                });
            }
            Scalar::Bytes => {
                return d.deserialize_str(BytesVisitor {
                    tag,
                    skip_default,
                    out,
                });
            }
            Scalar::Enum(e) => {
                let n = d.deserialize_any(EnumVisitor { e, cx })?;
                if let Some(n) = n {
                    let p = Prim::I32(n);
                    if !(skip_default && n == e.default_value().number()) {
                        out.extend_from_slice(tag);
                        put_prim(out, ty, p);
                    }
                }
                return Ok(n.is_some());
            }
            Scalar::Message(id) => {
                out.extend_from_slice(tag);
                let len_at = out.len();
                out.push(0);
                d.deserialize_map(MsgVisitor {
                    cx,
                    id: *id,
                    bound: &[],
                    out: &mut *out,
                })?;
                patch_len(out, len_at);
                return Ok(true);
            }
            Scalar::Delegate(dl) => {
                let m = delegate(cx, dl, d)?;
                put_message(out, tag, &m);
                return Ok(true);
            }
            _ => {}
        }
        let class = Class::of(ty).ok_or_else(|| de::Error::custom("not a number type"))?;
        let p = d.deserialize_any(PrimVisitor(class))?;
        if !(skip_default && p.is_default()) {
            out.extend_from_slice(tag);
            put_prim(out, ty, p);
        }
        Ok(true)
    }
}

/// A message prost-reflect decodes itself. With case-insensitive enums, the
/// `DynamicMessage` path fixes enum spellings on a parsed document first; so does this.
pub(super) fn delegate<'de, D: Deserializer<'de>>(
    cx: &EncodeCx<'_>,
    dl: &Delegated,
    d: D,
) -> Result<DynamicMessage, D::Error> {
    if cx.case_insensitive_enums {
        let mut v: serde_json::Value = serde::Deserialize::deserialize(d)?;
        crate::json::fix_enum_case(&dl.desc, &mut v);
        DynamicMessage::deserialize_with_options(dl.desc.clone(), &v, cx.de)
            .map_err(de::Error::custom)
    } else {
        DynamicMessage::deserialize_with_options(dl.desc.clone(), d, cx.de)
    }
}

pub(super) fn put_message(out: &mut Vec<u8>, tag: &[u8], m: &DynamicMessage) {
    out.extend_from_slice(tag);
    prost::encoding::encode_varint(m.encoded_len() as u64, out);
    m.encode_raw(out);
}

struct StrVisitor<'a> {
    tag: &'a [u8],
    skip_default: bool,
    out: &'a mut Vec<u8>,
}

impl<'de> Visitor<'de> for StrVisitor<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        if !(self.skip_default && v.is_empty()) {
            put_bytes(self.out, self.tag, v.as_bytes());
        }
        Ok(true)
    }
}

/// Standard or URL-safe base64, padded or not, trailing bits allowed: prost-reflect's
/// `BytesVisitor` configuration.
const B64_CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_allow_trailing_bits(true)
    .with_decode_padding_mode(DecodePaddingMode::Indifferent);
const B64_STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, B64_CONFIG);
const B64_URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, B64_CONFIG);

pub(super) struct BytesVisitor<'a> {
    pub tag: &'a [u8],
    pub skip_default: bool,
    pub out: &'a mut Vec<u8>,
}

impl<'de> Visitor<'de> for BytesVisitor<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a base64 string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        let out = self.out;
        let start = out.len();
        out.extend_from_slice(self.tag);
        let len_at = out.len();
        out.push(0);
        let body = out.len();
        match B64_STANDARD.decode_vec(v, out) {
            Ok(()) => {}
            Err(DecodeError::InvalidByte(_, b'-' | b'_')) => {
                out.truncate(body);
                B64_URL_SAFE.decode_vec(v, out).map_err(E::custom)?;
            }
            Err(e) => return Err(E::custom(e)),
        }
        if self.skip_default && out.len() == body {
            out.truncate(start);
        } else {
            patch_len(out, len_at);
        }
        Ok(true)
    }
}

pub(super) struct EnumVisitor<'a, 'c> {
    pub e: &'a EnumDescriptor,
    pub cx: &'a EncodeCx<'c>,
}

impl<'de> Visitor<'de> for EnumVisitor<'_, '_> {
    type Value = Option<i32>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an enum name or number")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<i32>, E> {
        let found = self.e.get_value_by_name(v).or_else(|| {
            self.cx
                .case_insensitive_enums
                .then(|| self.e.values().find(|ev| ev.name().eq_ignore_ascii_case(v)))
                .flatten()
        });
        match found {
            Some(ev) => Ok(Some(ev.number())),
            None if self.cx.deny_unknown => Err(E::custom("unknown enum value")),
            None => Ok(None),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<i32>, E> {
        i32::try_from(v).map(Some).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<i32>, E> {
        i32::try_from(v).map(Some).map_err(E::custom)
    }
}

/// A number or bool, as prost-reflect's per-kind visitors read it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Prim {
    I32(i32),
    I64(i64),
    U32(u32),
    U64(u64),
    F32(f32),
    F64(f64),
    Bool(bool),
}

impl Prim {
    /// Equal to the proto3 default (so `-0.0` is, `NaN` is not: `==` on floats).
    pub fn is_default(self) -> bool {
        match self {
            Prim::I32(v) => v == 0,
            Prim::I64(v) => v == 0,
            Prim::U32(v) => v == 0,
            Prim::U64(v) => v == 0,
            Prim::F32(v) => v == 0.0,
            Prim::F64(v) => v == 0.0,
            Prim::Bool(v) => !v,
        }
    }
}

/// How a JSON value is read for a number or bool type.
#[derive(Clone, Copy)]
pub(super) enum Class {
    I32,
    I64,
    U32,
    U64,
    F32,
    F64,
    Bool,
}

impl Class {
    /// The class of a number or bool type; `None` for strings, bytes, enums, messages.
    pub(super) fn of(ty: &Scalar) -> Option<Class> {
        Some(match ty {
            Scalar::Double => Class::F64,
            Scalar::Float => Class::F32,
            Scalar::Int32 | Scalar::Sint32 | Scalar::Sfixed32 => Class::I32,
            Scalar::Int64 | Scalar::Sint64 | Scalar::Sfixed64 => Class::I64,
            Scalar::Uint32 | Scalar::Fixed32 => Class::U32,
            Scalar::Uint64 | Scalar::Fixed64 => Class::U64,
            Scalar::Bool => Class::Bool,
            _ => return None,
        })
    }
}

pub(super) struct PrimVisitor(pub Class);

fn from_f64<E: de::Error>(class: Class, v: f64) -> Result<Prim, E> {
    let int = |min: f64, max: f64| {
        if v.fract() != 0.0 {
            Err(E::custom("expected integer value"))
        } else if v < min || v > max {
            Err(E::custom("float value out of range"))
        } else {
            Ok(())
        }
    };
    Ok(match class {
        Class::I32 => int(i32::MIN as f64, i32::MAX as f64).map(|()| Prim::I32(v as i32))?,
        Class::I64 => int(i64::MIN as f64, i64::MAX as f64).map(|()| Prim::I64(v as i64))?,
        Class::U32 => int(u32::MIN as f64, u32::MAX as f64).map(|()| Prim::U32(v as u32))?,
        Class::U64 => int(u64::MIN as f64, u64::MAX as f64).map(|()| Prim::U64(v as u64))?,
        Class::F32 => {
            if v < (f32::MIN as f64) || v > (f32::MAX as f64) {
                return Err(E::custom("float value out of range"));
            }
            Prim::F32(v as f32)
        }
        Class::F64 => Prim::F64(v),
        Class::Bool => return Err(E::custom("expected a boolean")),
    })
}

impl<'de> Visitor<'de> for PrimVisitor {
    type Value = Prim;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or boolean")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Prim, E> {
        match self.0 {
            Class::Bool => Ok(Prim::Bool(v)),
            _ => Err(E::custom("unexpected boolean")),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Prim, E> {
        Ok(match self.0 {
            Class::I32 => Prim::I32(v.try_into().map_err(E::custom)?),
            Class::I64 => Prim::I64(v),
            Class::U32 => Prim::U32(v.try_into().map_err(E::custom)?),
            Class::U64 => Prim::U64(v.try_into().map_err(E::custom)?),
            Class::F32 => Prim::F32(v as f32),
            Class::F64 => Prim::F64(v as f64),
            Class::Bool => return Err(E::custom("expected a boolean")),
        })
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Prim, E> {
        Ok(match self.0 {
            Class::I32 => Prim::I32(v.try_into().map_err(E::custom)?),
            Class::I64 => Prim::I64(v.try_into().map_err(E::custom)?),
            Class::U32 => Prim::U32(v.try_into().map_err(E::custom)?),
            Class::U64 => Prim::U64(v),
            Class::F32 => Prim::F32(v as f32),
            Class::F64 => Prim::F64(v as f64),
            Class::Bool => return Err(E::custom("expected a boolean")),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Prim, E> {
        from_f64(self.0, v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Prim, E> {
        fn special<T: FromStr>(v: &str, inf: T, ninf: T, nan: T) -> Result<T, String> {
            match T::from_str(v) {
                Ok(x) => Ok(x),
                Err(_) if v == "Infinity" => Ok(inf),
                Err(_) if v == "-Infinity" => Ok(ninf),
                Err(_) if v == "NaN" => Ok(nan),
                Err(_) => Err(format!("invalid number {v:?}")),
            }
        }
        Ok(match self.0 {
            Class::I32 => Prim::I32(v.parse().map_err(E::custom)?),
            Class::I64 => Prim::I64(v.parse().map_err(E::custom)?),
            Class::U32 => Prim::U32(v.parse().map_err(E::custom)?),
            Class::U64 => Prim::U64(v.parse().map_err(E::custom)?),
            Class::F32 => Prim::F32(
                special(v, f32::INFINITY, f32::NEG_INFINITY, f32::NAN).map_err(E::custom)?,
            ),
            Class::F64 => Prim::F64(
                special(v, f64::INFINITY, f64::NEG_INFINITY, f64::NAN).map_err(E::custom)?,
            ),
            Class::Bool => return Err(E::custom("expected a boolean")),
        })
    }
}

/// Writes one value without its tag, in the wire form of `ty`.
pub(crate) fn put_prim(out: &mut Vec<u8>, ty: &Scalar, p: Prim) {
    use prost::encoding::encode_varint;
    match (ty, p) {
        (Scalar::Sint32, Prim::I32(v)) => {
            encode_varint(u64::from(((v << 1) ^ (v >> 31)) as u32), out)
        }
        (Scalar::Sint64, Prim::I64(v)) => encode_varint(((v << 1) ^ (v >> 63)) as u64, out),
        (Scalar::Sfixed32, Prim::I32(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Scalar::Sfixed64, Prim::I64(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Scalar::Fixed32, Prim::U32(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Scalar::Fixed64, Prim::U64(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (_, Prim::I32(v)) => encode_varint(v as i64 as u64, out),
        (_, Prim::I64(v)) => encode_varint(v as u64, out),
        (_, Prim::U32(v)) => encode_varint(u64::from(v), out),
        (_, Prim::U64(v)) => encode_varint(v, out),
        (_, Prim::F32(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (_, Prim::F64(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (_, Prim::Bool(v)) => out.push(u8::from(v)),
    }
}

pub(super) fn put_bytes(out: &mut Vec<u8>, tag: &[u8], b: &[u8]) {
    out.extend_from_slice(tag);
    prost::encoding::encode_varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

/// Fills in the one byte reserved at `len_at` with the length of what follows it,
/// moving the body when the length needs a longer varint.
pub(crate) fn patch_len(out: &mut Vec<u8>, len_at: usize) {
    let len = out.len() - len_at - 1;
    if len < 0x80 {
        out[len_at] = len as u8;
        return;
    }
    let n = prost::encoding::encoded_len_varint(len as u64);
    let end = out.len();
    out.resize(end + n - 1, 0);
    out.copy_within(len_at + 1..end, len_at + n);
    let mut slot = &mut out[len_at..len_at + n];
    prost::encoding::encode_varint(len as u64, &mut slot);
}
