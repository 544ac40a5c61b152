//! proto3 JSON into messages, with the options both peers offer, and errors that name
//! the field at fault.

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::Value as Json;

use crate::error::TranscodeError;
use crate::fields::field_by_name;
use crate::transcoder::Shared;

/// Decodes a JSON document into a message of type `desc`.
pub(crate) fn decode(
    desc: &MessageDescriptor,
    bytes: &[u8],
    shared: &Shared,
) -> Result<DynamicMessage, TranscodeError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(DynamicMessage::new(desc.clone()));
    }
    if shared.opts.case_insensitive_enums {
        let v: Json = serde_json::from_slice(bytes)
            .map_err(|e| TranscodeError::bad("body", format!("invalid JSON: {e}")))?;
        return decode_value(desc, v, shared);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match DynamicMessage::deserialize_with_options(desc.clone(), &mut de, &shared.de)
        .and_then(|m| de.end().map(|()| m))
    {
        Ok(m) => Ok(m),
        Err(e) => Err(explain(desc, bytes, e, shared)),
    }
}

/// Decodes an already-parsed JSON value (client streams, case-insensitive enums).
pub(crate) fn decode_value(
    desc: &MessageDescriptor,
    mut v: Json,
    shared: &Shared,
) -> Result<DynamicMessage, TranscodeError> {
    if shared.opts.case_insensitive_enums {
        fix_enum_case(desc, &mut v);
    }
    DynamicMessage::deserialize_with_options(desc.clone(), &v, &shared.de).map_err(|e| {
        let field = locate(desc, &v, shared, String::new()).unwrap_or_else(|| "body".into());
        TranscodeError::bad(field, e.to_string())
    })
}

/// Re-reads a document that failed to find which field was at fault (error path only).
fn explain(
    desc: &MessageDescriptor,
    bytes: &[u8],
    e: serde_json::Error,
    shared: &Shared,
) -> TranscodeError {
    let field = serde_json::from_slice::<Json>(bytes)
        .ok()
        .and_then(|v| locate(desc, &v, shared, String::new()));
    match field {
        Some(f) => TranscodeError::bad(f, e.to_string()),
        None if e.is_syntax() || e.is_eof() => {
            TranscodeError::bad("body", format!("invalid JSON: {e}"))
        }
        None => TranscodeError::bad("body", e.to_string()),
    }
}

/// The path (`book.author.name`, `items[2]`) of the first field that does not decode.
fn locate(desc: &MessageDescriptor, v: &Json, shared: &Shared, prefix: String) -> Option<String> {
    let Json::Object(obj) = v else {
        return None;
    };
    for (k, val) in obj {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let Some(f) = field_by_name(desc, k) else {
            if shared.opts.reject_unknown_fields {
                return Some(path);
            }
            continue;
        };
        if decodes(desc, k, val.clone(), shared) {
            continue;
        }
        return Some(locate_in_value(desc, &f, k, val, shared, path));
    }
    None
}

/// True if `{key: val}` alone decodes as a `desc`.
fn decodes(desc: &MessageDescriptor, key: &str, val: Json, shared: &Shared) -> bool {
    let mut one = serde_json::Map::new();
    one.insert(key.to_owned(), val);
    DynamicMessage::deserialize_with_options(desc.clone(), &Json::Object(one), &shared.de).is_ok()
}

/// The path inside a field's value that does not decode: the list item (`items[2]`) or map
/// entry (`labels["k"]`) at fault, and the field inside it for messages; `path` itself when
/// the value is wrong as a whole.
fn locate_in_value(
    desc: &MessageDescriptor,
    f: &FieldDescriptor,
    key: &str,
    val: &Json,
    shared: &Shared,
    path: String,
) -> String {
    let value_kind = if f.is_map() {
        match f.kind() {
            Kind::Message(entry) => entry.map_entry_value_field().kind(),
            k => k,
        }
    } else {
        f.kind()
    };
    let inner = |item: &Json, item_path: String| match (&value_kind, item) {
        (Kind::Message(m), Json::Object(_)) => {
            locate(m, item, shared, item_path.clone()).unwrap_or(item_path)
        }
        _ => item_path,
    };
    match val {
        Json::Array(items) if f.is_list() => {
            for (i, item) in items.iter().enumerate() {
                if !decodes(desc, key, Json::Array(vec![item.clone()]), shared) {
                    return inner(item, format!("{path}[{i}]"));
                }
            }
            path
        }
        Json::Object(entries) if f.is_map() => {
            for (mk, mv) in entries {
                let mut one = serde_json::Map::new();
                one.insert(mk.clone(), mv.clone());
                if !decodes(desc, key, Json::Object(one), shared) {
                    return inner(mv, format!("{path}[{mk:?}]"));
                }
            }
            path
        }
        _ if !f.is_list() && !f.is_map() => inner(val, path),
        _ => path,
    }
}

/// Rewrites enum names to their declared spelling when they match ignoring case.
pub(crate) fn fix_enum_case(desc: &MessageDescriptor, v: &mut Json) {
    let Json::Object(obj) = v else {
        return;
    };
    for (k, val) in obj.iter_mut() {
        let Some(f) = field_by_name(desc, k) else {
            continue;
        };
        let kind = if f.is_map() {
            match f.kind() {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                k => k,
            }
        } else {
            f.kind()
        };
        let fix_one = |x: &mut Json| match (&kind, x) {
            (Kind::Enum(e), Json::String(s)) if e.get_value_by_name(s).is_none() => {
                if let Some(ev) = e.values().find(|ev| ev.name().eq_ignore_ascii_case(s)) {
                    *s = ev.name().to_owned();
                }
            }
            (Kind::Message(m), x) => fix_enum_case(m, x),
            _ => {}
        };
        match val {
            Json::Array(items) if f.is_list() => items.iter_mut().for_each(fix_one),
            Json::Object(map) if f.is_map() => map.values_mut().for_each(fix_one),
            other => fix_one(other),
        }
    }
}
