//! Protobuf wire → JSON: each message is scanned once into a list of field occurrences,
//! then written field by field in field-number order (prost-reflect's order), straight
//! into the output buffer.
//!
//! What prost-reflect would do with odd but valid input is reproduced where it is cheap
//! (last value wins, packed and unpacked runs mixed, oneof members overriding each other,
//! unknown fields skipped); where it is not (a sub-message repeated and merged, a map key
//! repeated) the renderer declines and the caller falls back.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use prost::encoding::WireType;
use prost_reflect::{DynamicMessage, SerializeOptions};
use serde::Serializer as _;

use super::encode::Prim;
use super::plan::{Codec, Delegated, FieldPlan, MsgPlan, PlanId, Scalar, Shape, MAX_ONEOFS};
use super::Fallback;

/// How deep the renderer goes. prost stops at 100 levels; staying well below keeps a
/// delegated sub-message (decoded with a fresh budget) from decoding where the whole
/// message would not.
const MAX_DEPTH: usize = 64;

/// What rendering depends on besides the plans.
pub(crate) struct RenderCx<'a> {
    pub codec: &'a Codec,
    pub ser: &'a SerializeOptions,
    pub emit_defaults: bool,
    pub proto_names: bool,
}

/// Appends the JSON form of `wire` (a message of plan `id`) to `out`.
pub(crate) fn render_json(
    cx: &RenderCx<'_>,
    id: PlanId,
    wire: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Fallback> {
    let start = out.len();
    let mut scratch = Vec::new();
    let r = Renderer {
        cx,
        scratch: &mut scratch,
    }
    .message(cx.codec.plan(id), wire, 0, out);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

/// One field occurrence: the field's index and its value's bytes (a length-delimited
/// value without its length).
#[derive(Debug, Clone, Copy)]
struct Occ {
    field: u32,
    start: u32,
    end: u32,
    wire_type: u8,
}

struct Renderer<'a, 'c> {
    cx: &'a RenderCx<'c>,
    /// Occurrences of every message being rendered, innermost last (a stack).
    scratch: &'a mut Vec<Occ>,
}

fn decline(why: &'static str) -> Fallback {
    Fallback(why)
}

/// Reads a varint at `*i`, as prost does (at most ten bytes).
#[inline]
fn varint(wire: &[u8], i: &mut usize) -> Result<u64, Fallback> {
    let mut rest = wire.get(*i..).ok_or(decline("truncated"))?;
    let before = rest.len();
    let v = prost::encoding::decode_varint(&mut rest)?;
    *i += before - rest.len();
    Ok(v)
}

/// Reads a field key; like prost, a key past `u32::MAX` is invalid (not its number).
#[inline]
fn field_key(wire: &[u8], i: &mut usize) -> Result<u64, Fallback> {
    let key = varint(wire, i)?;
    if key > u64::from(u32::MAX) {
        return Err(decline("key past u32"));
    }
    Ok(key)
}

/// Skips one value of `wire_type` at `*i`; returns its bytes' range.
#[inline]
fn value_range(wire: &[u8], i: &mut usize, wire_type: u64) -> Result<(usize, usize), Fallback> {
    let (start, end) = match wire_type {
        0 => {
            let s = *i;
            varint(wire, i)?;
            (s, *i)
        }
        1 => (*i, *i + 8),
        2 => {
            let len = varint(wire, i)?;
            let len = usize::try_from(len).map_err(|_| decline("length"))?;
            (*i, i.checked_add(len).ok_or(decline("length"))?)
        }
        5 => (*i, *i + 4),
        _ => return Err(decline("group or bad wire type")),
    };
    if end > wire.len() {
        return Err(decline("truncated"));
    }
    *i = end;
    Ok((start, end))
}

fn wire_code(w: WireType) -> u8 {
    w as u8
}

impl Renderer<'_, '_> {
    fn message(
        &mut self,
        plan: &MsgPlan,
        wire: &[u8],
        depth: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Fallback> {
        if depth > MAX_DEPTH || wire.len() > u32::MAX as usize {
            return Err(decline("too deep"));
        }
        let base = self.scratch.len();
        let mut winner = [u32::MAX; MAX_ONEOFS];
        let mut sorted = true;
        let mut last_field = 0u32;
        let mut i = 0;
        while i < wire.len() {
            let key = field_key(wire, &mut i)?;
            let wire_type = key & 7;
            let number = (key >> 3) as u32;
            if number == 0 {
                return Err(decline("field number 0"));
            }
            let (start, end) = value_range(wire, &mut i, wire_type)?;
            let Some(fi) = plan.by_number(number) else {
                continue; // unknown fields are not rendered
            };
            let f = &plan.fields[fi];
            let natural = wire_code(f.ty.wire_type()) as u64;
            let ok = match f.shape {
                Shape::Single => wire_type == natural,
                Shape::List => wire_type == natural || (wire_type == 2 && f.ty.packable()),
                Shape::Map { .. } => wire_type == 2,
            };
            if !ok {
                return Err(decline("wire type mismatch"));
            }
            let fi = fi as u32;
            if let Some(o) = f.oneof {
                winner[usize::from(o)] = fi;
            }
            sorted &= fi >= last_field;
            last_field = fi;
            self.scratch.push(Occ {
                field: fi,
                start: start as u32,
                end: end as u32,
                wire_type: wire_type as u8,
            });
        }
        if !sorted {
            self.scratch[base..].sort_by_key(|o| o.field); // stable: keeps wire order per field
        }
        let end = self.scratch.len();
        out.push(b'{');
        let mut first = true;
        let mut k = base;
        for (fi, f) in plan.fields.iter().enumerate() {
            let from = k;
            while k < end && self.scratch[k].field == fi as u32 {
                k += 1;
            }
            let occs = from..k;
            if matches!((&f.ty, &f.shape), (Scalar::String, Shape::Single)) {
                // prost checks every string it decodes, also those a later value replaces
                // (the rendered one is checked as it is written).
                for k in occs.clone().rev().skip(1) {
                    let o = self.scratch[k];
                    std::str::from_utf8(&wire[o.start as usize..o.end as usize])
                        .map_err(|_| decline("utf-8"))?;
                }
            }
            if let Some(o) = f.oneof {
                if winner[usize::from(o)] != fi as u32 {
                    // Replaced by another member (or never set): a replaced message was
                    // still decoded by prost, and may have failed there.
                    if !occs.is_empty() && matches!(f.ty, Scalar::Message(_) | Scalar::Delegate(_))
                    {
                        return Err(decline("replaced oneof message"));
                    }
                    if let (Scalar::String, Some(k)) = (&f.ty, occs.clone().last()) {
                        let o = self.scratch[k];
                        std::str::from_utf8(&wire[o.start as usize..o.end as usize])
                            .map_err(|_| decline("utf-8"))?;
                    }
                    continue;
                }
            }
            self.field(f, wire, occs, depth, &mut first, out)?;
        }
        out.push(b'}');
        self.scratch.truncate(base);
        Ok(())
    }

    fn key(&self, f: &FieldPlan, first: &mut bool, out: &mut Vec<u8>) {
        if !*first {
            out.push(b',');
        }
        *first = false;
        out.extend_from_slice(if self.cx.proto_names {
            &f.proto_key
        } else {
            &f.json_key
        });
    }

    fn field(
        &mut self,
        f: &FieldPlan,
        wire: &[u8],
        occs: std::ops::Range<usize>,
        depth: usize,
        first: &mut bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Fallback> {
        let emit_defaults = self.cx.emit_defaults;
        match &f.shape {
            Shape::Single => {
                let Some(last) = occs.clone().last().map(|k| self.scratch[k]) else {
                    if emit_defaults && !f.presence {
                        self.key(f, first, out);
                        self.default_value(&f.ty, depth, out)?;
                    }
                    return Ok(());
                };
                let bytes = &wire[last.start as usize..last.end as usize];
                if matches!(f.ty, Scalar::Message(_) | Scalar::Delegate(_)) {
                    if occs.len() > 1 {
                        return Err(decline("merged sub-message"));
                    }
                    self.key(f, first, out);
                    return self.value(&f.ty, bytes, depth, out);
                }
                if !f.presence && !emit_defaults && is_default(&f.ty, bytes)? {
                    return Ok(());
                }
                self.key(f, first, out);
                self.value(&f.ty, bytes, depth, out)
            }
            Shape::List => {
                let mark = out.len();
                let was_first = *first;
                self.key(f, first, out);
                out.push(b'[');
                let mut n = 0usize;
                for k in occs {
                    let o = self.scratch[k];
                    let bytes = &wire[o.start as usize..o.end as usize];
                    if o.wire_type == 2 && f.ty.packable() {
                        let width = match f.ty.wire_type() {
                            WireType::SixtyFourBit => 8,
                            WireType::ThirtyTwoBit => 4,
                            _ => 0,
                        };
                        let mut i = 0;
                        while i < bytes.len() {
                            let s = i;
                            if width == 0 {
                                varint(bytes, &mut i)?;
                            } else {
                                i += width;
                                if i > bytes.len() {
                                    return Err(decline("truncated packed run"));
                                }
                            }
                            if n > 0 {
                                out.push(b',');
                            }
                            n += 1;
                            self.value(&f.ty, &bytes[s..i], depth, out)?;
                        }
                    } else {
                        if n > 0 {
                            out.push(b',');
                        }
                        n += 1;
                        self.value(&f.ty, bytes, depth, out)?;
                    }
                }
                if n == 0 && !emit_defaults {
                    out.truncate(mark);
                    *first = was_first;
                } else {
                    out.push(b']');
                }
                Ok(())
            }
            Shape::Map { key, .. } => {
                if occs.is_empty() {
                    if emit_defaults {
                        self.key(f, first, out);
                        out.extend_from_slice(b"{}");
                    }
                    return Ok(());
                }
                self.key(f, first, out);
                out.push(b'{');
                let mut keys: Vec<MapKeyId<'_>> = Vec::with_capacity(occs.len());
                for (n, k) in occs.enumerate() {
                    let o = self.scratch[k];
                    let entry = parse_entry(&wire[o.start as usize..o.end as usize], key, &f.ty)?;
                    let id = map_key_id(key, entry.key)?;
                    keys.push(id);
                    if n > 0 {
                        out.push(b',');
                    }
                    write_map_key(key, entry.key, out)?;
                    out.push(b':');
                    match entry.value {
                        Some(v) => self.value(&f.ty, v, depth, out)?,
                        None => self.default_value(&f.ty, depth, out)?,
                    }
                }
                if has_duplicates(&mut keys) {
                    return Err(decline("repeated map key"));
                }
                out.push(b'}');
                Ok(())
            }
        }
    }

    /// One value of type `ty` from its wire bytes.
    fn value(
        &mut self,
        ty: &Scalar,
        bytes: &[u8],
        depth: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Fallback> {
        match ty {
            Scalar::String => write_string(bytes, out),
            Scalar::Bytes => {
                write_base64(bytes, out);
                Ok(())
            }
            Scalar::Message(id) => {
                let plan = self.cx.codec.plan(*id);
                self.message(plan, bytes, depth + 1, out)
            }
            Scalar::Delegate(dl) => self.delegate(dl, bytes, depth, out),
            Scalar::Enum(e) => {
                let n = prim(ty, bytes)?;
                let Prim::I32(n) = n else {
                    return Err(decline("enum"));
                };
                match e.get_value(n) {
                    Some(v) => json(out).serialize_str(v.name()),
                    None => json(out).serialize_i32(n),
                }
                .map_err(|_| decline("write"))
            }
            _ => write_prim(prim(ty, bytes)?, out),
        }
    }

    /// The default value of `ty`, as prost-reflect writes an unset field.
    fn default_value(
        &mut self,
        ty: &Scalar,
        depth: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Fallback> {
        match ty {
            Scalar::Enum(e) => {
                let v = e.default_value();
                json(out)
                    .serialize_str(v.name())
                    .map_err(|_| decline("write"))
            }
            Scalar::String | Scalar::Bytes => {
                out.extend_from_slice(b"\"\"");
                Ok(())
            }
            // An empty value is the default of every other type.
            _ => self.value(ty, default_bytes(ty), depth, out),
        }
    }

    fn delegate(
        &mut self,
        dl: &Delegated,
        bytes: &[u8],
        depth: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Fallback> {
        // Its own decode starts a fresh recursion budget: only delegate values that
        // cannot nest deep enough for the difference to show (each level takes two bytes).
        let inner = dl.max_depth.map_or(bytes.len() / 2, |d| d as usize);
        if depth + 1 + inner > MAX_DEPTH {
            return Err(decline("deep delegated message"));
        }
        let m = DynamicMessage::decode(dl.desc.clone(), bytes)?;
        m.serialize_with_options(&mut json(out), self.cx.ser)
            .map_err(|_| decline("delegated message does not serialize"))
    }
}

/// A serde_json serializer appending to `out` (its formatting is the `DynamicMessage`
/// path's, by construction).
fn json(out: &mut Vec<u8>) -> serde_json::Serializer<&mut Vec<u8>> {
    serde_json::Serializer::new(out)
}

/// A string value as JSON. Most strings are printable ASCII with nothing to escape: those
/// are copied as they are (which is also their UTF-8 check); the rest go through
/// serde_json's escaping, so the output is the `DynamicMessage` path's either way.
fn write_string(bytes: &[u8], out: &mut Vec<u8>) -> Result<(), Fallback> {
    if bytes
        .iter()
        .all(|&b| (0x20..0x80).contains(&b) && b != b'"' && b != b'\\')
    {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
        return Ok(());
    }
    let s = std::str::from_utf8(bytes).map_err(|_| decline("utf-8"))?;
    json(out).serialize_str(s).map_err(|_| decline("write"))
}

/// Wire bytes of a default value: zero for numbers, nothing for messages.
fn default_bytes(ty: &Scalar) -> &'static [u8] {
    match ty.wire_type() {
        WireType::SixtyFourBit => &[0; 8],
        WireType::ThirtyTwoBit => &[0; 4],
        WireType::Varint => &[0],
        _ => &[],
    }
}

fn is_default(ty: &Scalar, bytes: &[u8]) -> Result<bool, Fallback> {
    Ok(match ty {
        Scalar::String | Scalar::Bytes => bytes.is_empty(),
        Scalar::Enum(e) => {
            matches!(prim(ty, bytes)?, Prim::I32(n) if n == e.default_value().number())
        }
        _ => prim(ty, bytes)?.is_default(),
    })
}

/// Decodes one number or bool, as prost's `merge` functions do.
fn prim(ty: &Scalar, bytes: &[u8]) -> Result<Prim, Fallback> {
    let fixed4 =
        || -> Result<[u8; 4], Fallback> { bytes.try_into().map_err(|_| decline("fixed32 width")) };
    let fixed8 =
        || -> Result<[u8; 8], Fallback> { bytes.try_into().map_err(|_| decline("fixed64 width")) };
    let var = || -> Result<u64, Fallback> {
        let mut i = 0;
        let v = varint(bytes, &mut i)?;
        Ok(v)
    };
    Ok(match ty {
        Scalar::Double => Prim::F64(f64::from_le_bytes(fixed8()?)),
        Scalar::Float => Prim::F32(f32::from_le_bytes(fixed4()?)),
        Scalar::Int32 | Scalar::Enum(_) => Prim::I32(var()? as i32),
        Scalar::Int64 => Prim::I64(var()? as i64),
        Scalar::Uint32 => Prim::U32(var()? as u32),
        Scalar::Uint64 => Prim::U64(var()?),
        Scalar::Sint32 => {
            let n = var()? as u32;
            Prim::I32(((n >> 1) as i32) ^ (-((n & 1) as i32)))
        }
        Scalar::Sint64 => {
            let n = var()?;
            Prim::I64(((n >> 1) as i64) ^ (-((n & 1) as i64)))
        }
        Scalar::Fixed32 => Prim::U32(u32::from_le_bytes(fixed4()?)),
        Scalar::Fixed64 => Prim::U64(u64::from_le_bytes(fixed8()?)),
        Scalar::Sfixed32 => Prim::I32(i32::from_le_bytes(fixed4()?)),
        Scalar::Sfixed64 => Prim::I64(i64::from_le_bytes(fixed8()?)),
        Scalar::Bool => Prim::Bool(var()? != 0),
        _ => return Err(decline("not a number")),
    })
}

/// A number as the `DynamicMessage` path writes it: 64-bit integers as strings,
/// non-finite floats as their names.
fn write_prim(p: Prim, out: &mut Vec<u8>) -> Result<(), Fallback> {
    let mut s = json(out);
    let r = match p {
        Prim::I32(v) => s.serialize_i32(v),
        Prim::U32(v) => s.serialize_u32(v),
        Prim::I64(v) => s.collect_str(&v),
        Prim::U64(v) => s.collect_str(&v),
        Prim::Bool(v) => s.serialize_bool(v),
        Prim::F32(v) if v.is_finite() => s.serialize_f32(v),
        Prim::F64(v) if v.is_finite() => s.serialize_f64(v),
        Prim::F32(v) => s.serialize_str(non_finite(f64::from(v))),
        Prim::F64(v) => s.serialize_str(non_finite(v)),
    };
    r.map_err(|_| decline("write"))
}

fn non_finite(v: f64) -> &'static str {
    if v == f64::INFINITY {
        "Infinity"
    } else if v == f64::NEG_INFINITY {
        "-Infinity"
    } else {
        "NaN"
    }
}

fn write_base64(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let at = out.len();
    let n = base64::encoded_len(bytes.len(), true).unwrap_or(0);
    out.resize(at + n, 0);
    let written = B64.encode_slice(bytes, &mut out[at..]).unwrap_or(0);
    out.truncate(at + written);
    out.push(b'"');
}

/// A map entry's key and value bytes (`None`: absent, the default).
struct Entry<'w> {
    key: Option<&'w [u8]>,
    value: Option<&'w [u8]>,
}

fn parse_entry<'w>(
    wire: &'w [u8],
    key_ty: &Scalar,
    value_ty: &Scalar,
) -> Result<Entry<'w>, Fallback> {
    let mut e = Entry {
        key: None,
        value: None,
    };
    let mut i = 0;
    while i < wire.len() {
        let k = field_key(wire, &mut i)?;
        let wire_type = k & 7;
        let (s, end) = value_range(wire, &mut i, wire_type)?;
        let (slot, ty) = match k >> 3 {
            1 => (&mut e.key, key_ty),
            2 => (&mut e.value, value_ty),
            0 => return Err(decline("field number 0")),
            _ => continue,
        };
        if wire_type != wire_code(ty.wire_type()) as u64 || slot.is_some() {
            return Err(decline("odd map entry"));
        }
        if matches!(ty, Scalar::String) {
            std::str::from_utf8(&wire[s..end]).map_err(|_| decline("utf-8"))?;
        }
        *slot = Some(&wire[s..end]);
    }
    Ok(e)
}

/// A map key's identity (keys with different encodings of one value are one key).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum MapKeyId<'w> {
    Num(u64),
    Str(&'w [u8]),
}

fn map_key_id<'w>(ty: &Scalar, key: Option<&'w [u8]>) -> Result<MapKeyId<'w>, Fallback> {
    Ok(match (ty, key) {
        (Scalar::String, k) => MapKeyId::Str(k.unwrap_or_default()),
        (_, None) => MapKeyId::Num(0),
        (_, Some(b)) => MapKeyId::Num(match prim(ty, b)? {
            Prim::I32(v) => v as i64 as u64,
            Prim::I64(v) => v as u64,
            Prim::U32(v) => u64::from(v),
            Prim::U64(v) => v,
            Prim::Bool(v) => u64::from(v),
            _ => return Err(decline("map key type")),
        }),
    })
}

fn has_duplicates(keys: &mut [MapKeyId<'_>]) -> bool {
    if keys.len() <= 16 {
        return keys
            .iter()
            .enumerate()
            .any(|(i, a)| keys[i + 1..].iter().any(|b| a == b));
    }
    keys.sort_unstable();
    keys.windows(2).any(|w| w[0] == w[1])
}

/// A map key as a JSON object key: always a string.
fn write_map_key(ty: &Scalar, key: Option<&[u8]>, out: &mut Vec<u8>) -> Result<(), Fallback> {
    if let Scalar::String = ty {
        return write_string(key.unwrap_or_default(), out);
    }
    let p = prim(ty, key.unwrap_or(default_bytes(ty)))?;
    let mut s = json(out);
    let r = match p {
        Prim::I32(v) => s.collect_str(&v),
        Prim::I64(v) => s.collect_str(&v),
        Prim::U32(v) => s.collect_str(&v),
        Prim::U64(v) => s.collect_str(&v),
        Prim::Bool(v) => s.collect_str(&v),
        _ => return Err(decline("map key type")),
    };
    r.map_err(|_| decline("write"))
}

#[cfg(test)]
mod tests {
    use super::write_string;

    #[test]
    fn strings_render_as_serde_json_writes_them() {
        for s in [
            "",
            "plain ascii ~ with DEL \u{7f}",
            "quote\" back\\ nl\n ctl\u{1} tab\t",
            "héllo 日本 \u{2028}",
        ] {
            let mut out = Vec::new();
            write_string(s.as_bytes(), &mut out).unwrap();
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
        assert!(write_string(b"bad \xff utf-8", &mut Vec::new()).is_err());
    }
}
