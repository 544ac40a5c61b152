//! Text to field values: what path variables and query parameters carry, set into a
//! message by field path (`a.b.c`), with proto3 JSON's spelling of each kind.

use base64::Engine as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value};

use crate::error::TranscodeError;

/// Resolves one field name by proto name, then JSON name.
pub(crate) fn field_by_name(msg: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    msg.get_field_by_name(name)
        .or_else(|| msg.get_field_by_json_name(name))
}

/// Well-known messages that take a single string in the JSON mapping.
pub(crate) fn is_scalar_wkt(msg: &MessageDescriptor) -> bool {
    matches!(
        msg.full_name(),
        "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

/// True if a field can take its value from one piece of text.
pub(crate) fn is_text_settable(f: &FieldDescriptor) -> bool {
    match f.kind() {
        Kind::Message(m) => !f.is_map() && is_scalar_wkt(&m),
        _ => true,
    }
}

/// Parses `text` as a value of `field`'s kind (one element for repeated fields).
pub(crate) fn parse_value(
    field: &FieldDescriptor,
    kind: &Kind,
    text: &str,
    case_insensitive_enums: bool,
) -> Result<Value, String> {
    fn num<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
        text.trim()
            .parse::<T>()
            .map_err(|_| format!("{text:?} is not a valid {what}"))
    }
    Ok(match kind {
        Kind::Double => Value::F64(float(text)?),
        Kind::Float => Value::F32(float(text)? as f32),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(num(text, "int32")?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(num(text, "int64")?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(num(text, "uint32")?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(num(text, "uint64")?),
        Kind::Bool => Value::Bool(match text {
            "true" | "True" | "TRUE" | "1" | "t" => true,
            "false" | "False" | "FALSE" | "0" | "f" => false,
            _ => return Err(format!("{text:?} is not a valid bool")),
        }),
        Kind::String => Value::String(text.to_owned()),
        Kind::Bytes => Value::Bytes(decode_base64(text)?.into()),
        Kind::Enum(e) => {
            if let Some(v) = e.get_value_by_name(text) {
                Value::EnumNumber(v.number())
            } else if let Some(v) = case_insensitive_enums
                .then(|| e.values().find(|v| v.name().eq_ignore_ascii_case(text)))
                .flatten()
            {
                Value::EnumNumber(v.number())
            } else if let Ok(n) = text.parse::<i32>() {
                Value::EnumNumber(n)
            } else {
                return Err(format!("{text:?} is not a value of enum {}", e.full_name()));
            }
        }
        Kind::Message(m) if is_scalar_wkt(m) => {
            if let Some(inner) = m.get_field_by_name("value") {
                // Wrappers: the JSON form is the wrapped scalar itself.
                let v = parse_value(&inner, &inner.kind(), text, case_insensitive_enums)?;
                let mut msg = DynamicMessage::new(m.clone());
                msg.set_field(&inner, v);
                Value::Message(msg)
            } else {
                let json = serde_json::Value::String(text.to_owned());
                let msg = DynamicMessage::deserialize(m.clone(), json)
                    .map_err(|e| format!("{text:?} is not a valid {}: {e}", m.full_name()))?;
                Value::Message(msg)
            }
        }
        Kind::Message(m) => {
            return Err(format!(
                "{} is a message ({}); set its fields as {}.<field>",
                field.name(),
                m.full_name(),
                field.name()
            ))
        }
    })
}

fn float(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "Infinity" => Ok(f64::INFINITY),
        "-Infinity" => Ok(f64::NEG_INFINITY),
        _ => text
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("{text:?} is not a valid number")),
    }
}

/// Standard or URL-safe base64, padded or not (both peers accept either).
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let trimmed = text.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
        .map_err(|_| format!("{text:?} is not valid base64"))
}

fn map_key(field: &FieldDescriptor, text: &str) -> Result<MapKey, String> {
    let Kind::Message(entry) = field.kind() else {
        return Err("not a map".into());
    };
    let kf = entry.map_entry_key_field();
    Ok(match parse_value(&kf, &kf.kind(), text, false)? {
        Value::Bool(b) => MapKey::Bool(b),
        Value::I32(v) => MapKey::I32(v),
        Value::I64(v) => MapKey::I64(v),
        Value::U32(v) => MapKey::U32(v),
        Value::U64(v) => MapKey::U64(v),
        Value::String(s) => MapKey::String(s),
        _ => return Err("unsupported map key type".into()),
    })
}

/// Where a value goes: a field path, optionally ending in a map key (`labels[k]`).
pub(crate) struct Target<'k> {
    pub path: Vec<FieldDescriptor>,
    pub map_key: Option<&'k str>,
}

/// Resolves `a.b.c` or `a.labels[key]` against `msg`; `None` if some name is unknown.
pub(crate) fn resolve<'k>(
    msg: &MessageDescriptor,
    dotted: &'k str,
) -> Result<Option<Target<'k>>, String> {
    let (names, map_key) = match dotted.split_once('[') {
        Some((head, rest)) => match rest.strip_suffix(']') {
            Some(k) => (head, Some(k)),
            None => return Err("unterminated '[' in map key".into()),
        },
        None => (dotted, None),
    };
    let mut path = Vec::new();
    let mut cur = msg.clone();
    let mut parts = names.split('.').peekable();
    while let Some(name) = parts.next() {
        let Some(f) = field_by_name(&cur, name) else {
            return Ok(None);
        };
        if parts.peek().is_some() {
            match f.kind() {
                Kind::Message(m) if !f.is_list() && !f.is_map() => cur = m,
                _ => return Err(format!("{name} is not a singular message field")),
            }
        }
        path.push(f);
    }
    if map_key.is_some() && !path.last().is_some_and(|f| f.is_map()) {
        return Err("only map fields take [key]".into());
    }
    Ok(Some(Target { path, map_key }))
}

/// Sets (or appends, for repeated fields) the value parsed from `text` at `target`.
pub(crate) fn set_text(
    msg: &mut DynamicMessage,
    target: &Target<'_>,
    text: &str,
    case_insensitive_enums: bool,
) -> Result<(), String> {
    let Some((last, parents)) = target.path.split_last() else {
        return Ok(());
    };
    let mut cur = msg;
    for f in parents {
        cur = match cur.get_field_mut(f) {
            Value::Message(m) => m,
            _ => return Err(format!("{} is not a message", f.name())),
        };
    }
    if let Some(key) = target.map_key {
        let Kind::Message(entry) = last.kind() else {
            return Err("not a map".into());
        };
        let vf = entry.map_entry_value_field();
        let k = map_key(last, key)?;
        let v = parse_value(&vf, &vf.kind(), text, case_insensitive_enums)?;
        if let Value::Map(m) = cur.get_field_mut(last) {
            m.insert(k, v);
        }
        return Ok(());
    }
    if last.is_map() {
        return Err(format!(
            "{} is a map; use {}[key]=value",
            last.name(),
            last.name()
        ));
    }
    if !is_text_settable(last) {
        return Err(format!(
            "{} is a message; set its fields as {}.<field>",
            last.name(),
            last.name()
        ));
    }
    let v = parse_value(last, &last.kind(), text, case_insensitive_enums)?;
    if last.is_list() {
        if let Value::List(l) = cur.get_field_mut(last) {
            l.push(v);
        }
    } else {
        cur.set_field(last, v);
    }
    Ok(())
}

/// Sets a path variable's value; errors name the field.
pub(crate) fn set_path_var(
    msg: &mut DynamicMessage,
    path: &[FieldDescriptor],
    text: &str,
    case_insensitive_enums: bool,
) -> Result<(), TranscodeError> {
    let target = Target {
        path: path.to_vec(),
        map_key: None,
    };
    set_text(msg, &target, text, case_insensitive_enums)
        .map_err(|reason| TranscodeError::bad(dotted(path), reason))
}

/// `a.b.c` for a field path.
pub(crate) fn dotted(path: &[FieldDescriptor]) -> String {
    let mut s = String::new();
    for (i, f) in path.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        s.push_str(f.name());
    }
    s
}
