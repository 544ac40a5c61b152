//! JSON → protobuf wire for the plain documents clients send, by a hand-written scanner
//! that knows the message plan: keys are matched straight from the input, strings without
//! escapes are copied as they are, small integers are read without a number parser.
//!
//! It is a shortcut of the serde_json pass in [`super::encode`], never a second opinion:
//! every value conversion is that pass's own visitor, called with the scanned token, and
//! whatever the scanner does not read itself (escaped strings, fractional or large
//! numbers, well-known types, ignored fields) is handed to serde_json on the token's
//! bytes. It declines ([`Fallback`]) on anything else unusual (a repeated key, `null`
//! where it is not "unset", a syntax error) and the serde_json pass decides.

use std::borrow::Cow;

use serde::de::{Deserializer as _, IgnoredAny, Visitor};

use super::encode::{
    delegate, is_value_wkt, put_bytes, put_message, put_prim, BytesVisitor, Class, EncodeCx,
    EnumVisitor, MapKeySeed, Prim, PrimVisitor, Seen,
};
use super::patch_len;
use super::plan::{FieldPlan, PlanId, Scalar, Shape};
use super::Fallback;

/// Nesting the scanner takes. serde_json (the `DynamicMessage` path's reader) refuses past
/// 128, and values handed to it alone restart its count: staying well below keeps both
/// answers the same.
const MAX_DEPTH: usize = 100;

type E = serde_json::Error;

fn no(why: &'static str) -> Fallback {
    Fallback(why)
}

/// Appends the wire form of `text` (a message of plan `id`) to `out`, or declines; on a
/// decline `out` holds a partial message the caller truncates.
pub(crate) fn encode_plain(
    cx: &EncodeCx<'_>,
    id: PlanId,
    text: &str,
    bound: &[u32],
    out: &mut Vec<u8>,
) -> Result<(), Fallback> {
    let mut s = Scan {
        cx,
        text,
        b: text.as_bytes(),
        i: 0,
    };
    s.ws();
    s.message(id, bound, 0, out)?;
    s.ws();
    if s.i != s.b.len() {
        return Err(no("trailing characters"));
    }
    Ok(())
}

struct Scan<'a, 'c> {
    cx: &'a EncodeCx<'c>,
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

/// A word with the high bit set in each byte of `w` that is `"`, `\` or a control
/// character (the lowest set bit is exact; bits above it may be spurious).
#[inline]
fn specials(w: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let q = w ^ (LO * u64::from(b'"'));
    let bs = w ^ (LO * u64::from(b'\\'));
    ((q.wrapping_sub(LO) & !q) | (bs.wrapping_sub(LO) & !bs) | (w.wrapping_sub(LO * 0x20) & !w))
        & HI
}

#[inline]
fn is_special(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

impl<'a> Scan<'a, '_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Result<(), Fallback> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(no("unexpected character"))
        }
    }

    /// After a member of an object or array: true past a `,` (another member follows),
    /// false past the closing `close`.
    #[inline]
    fn more(&mut self, close: u8) -> Result<bool, Fallback> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                self.ws();
                Ok(true)
            }
            Some(c) if c == close => {
                self.i += 1;
                Ok(false)
            }
            _ => Err(no("expected a comma or the closing bracket")),
        }
    }

    /// The text between `from` and `to` (both next to ASCII, so on char boundaries).
    #[inline]
    fn slice(&self, from: usize, to: usize) -> Result<&'a str, Fallback> {
        self.text.get(from..to).ok_or(no("not a char boundary"))
    }

    /// The first `"`, `\` or control character at or after `i`, or the end.
    #[inline]
    fn find_special(&self, mut i: usize) -> usize {
        while let Some(chunk) = self.b.get(i..i + 8) {
            let Ok(w) = <[u8; 8]>::try_from(chunk) else {
                break;
            };
            let m = specials(u64::from_le_bytes(w));
            if m != 0 {
                return i + (m.trailing_zeros() / 8) as usize;
            }
            i += 8;
        }
        while i < self.b.len() && !is_special(self.b[i]) {
            i += 1;
        }
        i
    }

    /// A string at the cursor (its opening quote): its text when it has no escapes.
    /// `Ok(None)`: it has one; the cursor stays at the opening quote.
    #[inline]
    fn plain_str(&mut self) -> Result<Option<&'a str>, Fallback> {
        if self.peek() != Some(b'"') {
            return Err(no("expected a string"));
        }
        let start = self.i + 1;
        let end = self.find_special(start);
        match self.b.get(end) {
            Some(b'"') => {
                self.i = end + 1;
                self.slice(start, end).map(Some)
            }
            Some(b'\\') => Ok(None),
            _ => Err(no("control character or unterminated string")),
        }
    }

    /// Any string at the cursor; escapes are decoded by serde_json.
    fn string(&mut self) -> Result<Cow<'a, str>, Fallback> {
        if let Some(s) = self.plain_str()? {
            return Ok(Cow::Borrowed(s));
        }
        let start = self.i;
        self.skip_string()?;
        let token = self.slice(start, self.i)?;
        Ok(Cow::Owned(serde_json::from_str::<String>(token)?))
    }

    /// Moves past the string at the cursor, escapes and all (not checked: serde_json
    /// reads what this skips).
    fn skip_string(&mut self) -> Result<(), Fallback> {
        let mut i = self.i + 1;
        loop {
            i = self.find_special(i);
            match self.b.get(i) {
                Some(b'"') => {
                    self.i = i + 1;
                    return Ok(());
                }
                Some(b'\\') => i += 2,
                Some(_) => i += 1,
                None => return Err(no("unterminated string")),
            }
        }
    }

    /// Moves past one value of any kind; returns how deeply it nests. What it skips is
    /// for serde_json to read, which checks it: for valid JSON the extent is exact.
    fn skip_value(&mut self) -> Result<usize, Fallback> {
        match self.peek() {
            Some(b'"') => {
                self.skip_string()?;
                Ok(0)
            }
            Some(b'{' | b'[') => {
                let (mut depth, mut deepest) = (0usize, 0usize);
                loop {
                    match self.peek() {
                        Some(b'"') => self.skip_string()?,
                        Some(b'{' | b'[') => {
                            self.i += 1;
                            depth += 1;
                            deepest = deepest.max(depth);
                        }
                        Some(b'}' | b']') => {
                            self.i += 1;
                            depth -= 1;
                            if depth == 0 {
                                return Ok(deepest);
                            }
                        }
                        Some(_) => self.i += 1,
                        None => return Err(no("unterminated value")),
                    }
                }
            }
            _ => {
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                        break;
                    }
                    self.i += 1;
                }
                Ok(0)
            }
        }
    }

    /// The value at the cursor as one token for serde_json, checked for nesting first.
    fn token(&mut self, depth: usize) -> Result<&'a str, Fallback> {
        let start = self.i;
        let inner = self.skip_value()?;
        if depth + inner > MAX_DEPTH {
            return Err(no("too deep"));
        }
        self.slice(start, self.i)
    }

    /// A number at the cursor, given to `v` as serde_json would: plain integers of up to
    /// 18 digits are read here, every other number by serde_json on its token.
    fn number<V: Visitor<'a>>(&mut self, v: V) -> Result<V::Value, Fallback> {
        let start = self.i;
        let neg = self.peek() == Some(b'-');
        let digits = start + usize::from(neg);
        let mut i = digits;
        let mut n: u64 = 0;
        while let Some(&c @ b'0'..=b'9') = self.b.get(i) {
            n = n * 10 + u64::from(c - b'0');
            i += 1;
            if i - digits > 18 {
                break;
            }
        }
        let count = i - digits;
        let simple = count > 0
            && count <= 18
            && !(count > 1 && self.b[digits] == b'0')
            && !matches!(
                self.b.get(i),
                Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
            );
        if simple {
            self.i = i;
            return Ok(match (neg, n) {
                (false, n) => v.visit_u64::<E>(n)?,
                // serde_json reads `-0` as a float.
                (true, 0) => v.visit_f64::<E>(-0.0)?,
                (true, n) => v.visit_i64::<E>(-(n as i64))?,
            });
        }
        while let Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') = self.b.get(i) {
            i += 1;
        }
        self.i = i;
        let token = self.slice(start, i)?;
        let mut de = serde_json::Deserializer::from_str(token);
        let value = de.deserialize_any(v)?;
        de.end()?;
        Ok(value)
    }

    /// `true`, `false` or `null` at the cursor.
    fn literal(&mut self, word: &'static [u8]) -> Result<(), Fallback> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(no("bad literal"))
        }
    }

    fn message(
        &mut self,
        id: PlanId,
        bound: &[u32],
        depth: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Fallback> {
        if depth >= MAX_DEPTH {
            return Err(no("too deep"));
        }
        let plan = self.cx.codec.plan(id);
        self.eat(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        let mut seen = Seen::new(plan.fields.len());
        let mut oneofs = 0u8;
        loop {
            let Some(key) = self.plain_str()? else {
                return Err(no("escaped key"));
            };
            self.ws();
            self.eat(b':')?;
            self.ws();
            match plan.by_name(key) {
                Some(fi) => {
                    let f = &plan.fields[fi];
                    if seen.insert(fi) || bound.contains(&f.number) {
                        return Err(no("repeated or path-bound field"));
                    }
                    let set = self.field(f, depth, out)?;
                    if let (true, Some(o)) = (set, f.oneof) {
                        let bit = 1u8 << o;
                        if oneofs & bit != 0 {
                            return Err(no("two members of one oneof"));
                        }
                        oneofs |= bit;
                    }
                }
                None => self.ignore(depth)?,
            }
            if !self.more(b'}')? {
                return Ok(());
            }
        }
    }

    /// The value of a field the message does not have, read the way the serde_json pass
    /// reads it.
    fn ignore(&mut self, depth: usize) -> Result<(), Fallback> {
        if self.cx.deny_unknown {
            return Err(no("unknown field"));
        }
        let token = self.token(depth + 1)?;
        if self.cx.case_insensitive_enums {
            serde_json::from_str::<serde_json::Value>(token)?;
        } else {
            serde_json::from_str::<IgnoredAny>(token)?;
        }
        Ok(())
    }

    /// One field's value; whether the field ended up set.
    fn field(&mut self, f: &FieldPlan, depth: usize, out: &mut Vec<u8>) -> Result<bool, Fallback> {
        if self.peek() == Some(b'n') {
            // `null` is "not set", except where it is a value (google.protobuf.Value).
            if matches!(&f.ty, Scalar::Delegate(dl) if is_value_wkt(&dl.desc)) {
                return Err(no("null Value"));
            }
            self.literal(b"null")?;
            return Ok(false);
        }
        match &f.shape {
            Shape::Single => self.value(&f.ty, f.tag.as_slice(), !f.presence, depth, out),
            Shape::List => {
                self.list(f, depth, out)?;
                Ok(true)
            }
            Shape::Map {
                key,
                key_tag,
                value_tag,
            } => {
                self.map(f, key, key_tag.as_slice(), value_tag.as_slice(), depth, out)?;
                Ok(true)
            }
        }
    }

    fn list(&mut self, f: &FieldPlan, depth: usize, out: &mut Vec<u8>) -> Result<(), Fallback> {
        if depth + 1 >= MAX_DEPTH {
            return Err(no("too deep"));
        }
        self.eat(b'[')?;
        self.ws();
        let packed = f.packed.then(|| {
            let start = out.len();
            out.extend_from_slice(f.ld_tag.as_slice());
            let len_at = out.len();
            out.push(0);
            (start, len_at)
        });
        let tag: &[u8] = if packed.is_some() {
            &[]
        } else {
            f.tag.as_slice()
        };
        if self.peek() == Some(b']') {
            self.i += 1;
        } else {
            loop {
                self.value(&f.ty, tag, false, depth + 1, out)?;
                if !self.more(b']')? {
                    break;
                }
            }
        }
        if let Some((start, len_at)) = packed {
            if out.len() == len_at + 1 {
                out.truncate(start); // an empty list is not written
            } else {
                patch_len(out, len_at);
            }
        }
        Ok(())
    }

    fn map(
        &mut self,
        f: &FieldPlan,
        key: &Scalar,
        key_tag: &[u8],
        value_tag: &[u8],
        depth: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Fallback> {
        if depth + 1 >= MAX_DEPTH {
            return Err(no("too deep"));
        }
        self.eat(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        let value_presence = matches!(f.ty, Scalar::Message(_) | Scalar::Delegate(_));
        loop {
            let start = out.len();
            out.extend_from_slice(f.ld_tag.as_slice());
            let len_at = out.len();
            out.push(0);
            let k = self.string()?;
            MapKeySeed {
                ty: key,
                tag: key_tag,
                out: &mut *out,
            }
            .visit_str::<E>(&k)?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            if self.value(&f.ty, value_tag, !value_presence, depth + 1, out)? {
                patch_len(out, len_at);
            } else {
                out.truncate(start); // an unknown enum name drops the entry
            }
            if !self.more(b'}')? {
                return Ok(());
            }
        }
    }

    /// One value of type `ty` written with `tag`, as `ValueSeed` in the serde_json pass
    /// writes it; false when nothing was set (an unknown enum name).
    fn value(
        &mut self,
        ty: &Scalar,
        tag: &[u8],
        skip_default: bool,
        depth: usize,
        out: &mut Vec<u8>,
    ) -> Result<bool, Fallback> {
        match ty {
            Scalar::String => {
                let s = self.string()?;
                if !(skip_default && s.is_empty()) {
                    put_bytes(out, tag, s.as_bytes());
                }
                Ok(true)
            }
            Scalar::Bytes => {
                let s = self.string()?;
                BytesVisitor {
                    tag,
                    skip_default,
                    out,
                }
                .visit_str::<E>(&s)?;
                Ok(true)
            }
            Scalar::Enum(e) => {
                let v = EnumVisitor { e, cx: self.cx };
                let n = match self.peek() {
                    Some(b'"') => {
                        let s = self.string()?;
                        v.visit_str::<E>(&s)?
                    }
                    Some(b'-' | b'0'..=b'9') => self.number(v)?,
                    _ => return Err(no("not an enum value")),
                };
                if let Some(n) = n {
                    if !(skip_default && n == e.default_value().number()) {
                        out.extend_from_slice(tag);
                        put_prim(out, ty, Prim::I32(n));
                    }
                }
                Ok(n.is_some())
            }
            Scalar::Message(id) => {
                out.extend_from_slice(tag);
                let len_at = out.len();
                out.push(0);
                self.message(*id, &[], depth + 1, out)?;
                patch_len(out, len_at);
                Ok(true)
            }
            Scalar::Delegate(dl) => {
                let token = self.token(depth)?;
                let mut de = serde_json::Deserializer::from_str(token);
                let m = delegate(self.cx, dl, &mut de)?;
                de.end()?;
                put_message(out, tag, &m);
                Ok(true)
            }
            _ => {
                let v = PrimVisitor(Class::of(ty).ok_or(no("not a number type"))?);
                let p = match self.peek() {
                    Some(b'-' | b'0'..=b'9') => self.number(v)?,
                    Some(b'"') => {
                        let s = self.string()?;
                        v.visit_str::<E>(&s)?
                    }
                    Some(b't') => {
                        self.literal(b"true")?;
                        v.visit_bool::<E>(true)?
                    }
                    Some(b'f') => {
                        self.literal(b"false")?;
                        v.visit_bool::<E>(false)?
                    }
                    _ => return Err(no("not a number or bool")),
                };
                if !(skip_default && p.is_default()) {
                    out.extend_from_slice(tag);
                    put_prim(out, ty, p);
                }
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{is_special, specials};

    #[test]
    fn the_word_scan_finds_the_first_special_byte() {
        for pos in 0..8 {
            for c in [b'"', b'\\', 0u8, 0x1f, b'\n'] {
                let mut w = *b"abcdefgh";
                w[pos] = c;
                // A special byte after the first one must not move the answer.
                if pos < 7 {
                    w[7] = b'"';
                }
                let m = specials(u64::from_le_bytes(w));
                assert_eq!((m.trailing_zeros() / 8) as usize, pos, "{w:?}");
            }
        }
        for w in [*b"plain ok", *b"\xc3\xa9\xe6\x97\xa5 ~\x7f", *b"  !#[]{}"] {
            assert_eq!(specials(u64::from_le_bytes(w)), 0, "{w:?}");
            assert!(!w.iter().any(|&c| is_special(c)));
        }
    }
}
