//! Lock key templates such as `buy/{form.item_id}`, parsed once and filled per request.

use crate::error::PolicyError;
use crate::request::RequestView;

/// Where a template variable comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Path(String),
    Query(String),
    Header(String),
    Form(String),
    /// A dotted path into a JSON object body.
    Json(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Var(Source),
}

/// A parsed key template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    parts: Vec<Part>,
}

/// Filling a template failed: the request lacks a field (the pipeline answers 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("lock key field {0} is missing or empty")]
pub struct MissingField(pub String);

impl KeyTemplate {
    /// Parses `text`; variables are `{path.X}`, `{query.X}`, `{header.X}`, `{form.X}`, `{json.a.b}`.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let bad = |m: String| PolicyError::invalid("lock.key", format!("{text:?}: {m}"));
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find('{') {
                None => {
                    parts.push(Part::Literal(rest.to_string()));
                    break;
                }
                Some(open) => {
                    if let Some(close) = rest[..open].find('}') {
                        return Err(bad(format!("unmatched '}}' at {close}")));
                    }
                    if open > 0 {
                        parts.push(Part::Literal(rest[..open].to_string()));
                    }
                    let after = &rest[open + 1..];
                    let close = after.find('}').ok_or_else(|| bad("unclosed '{'".into()))?;
                    let var = &after[..close];
                    let (kind, name) = var
                        .split_once('.')
                        .filter(|(_, n)| !n.is_empty())
                        .ok_or_else(|| bad(format!("variable {{{var}}}: expected source.name")))?;
                    let source = match kind {
                        "path" => Source::Path(name.into()),
                        "query" => Source::Query(name.into()),
                        "header" => Source::Header(name.to_ascii_lowercase()),
                        "form" => Source::Form(name.into()),
                        "json" => Source::Json(name.split('.').map(String::from).collect()),
                        other => {
                            return Err(bad(format!(
                                "unknown source {other:?} (path, query, header, form, json)"
                            )))
                        }
                    };
                    parts.push(Part::Var(source));
                    rest = &after[close + 1..];
                }
            }
        }
        if !parts.iter().any(|p| matches!(p, Part::Var(_))) {
            return Err(bad("no variable: every request would share one lock".into()));
        }
        Ok(Self { parts })
    }

    /// Whether filling needs the request body (a `form.` or `json.` variable).
    pub fn needs_body(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Var(Source::Form(_) | Source::Json(_))))
    }

    /// The key for `req`.
    pub fn render(&self, req: &RequestView<'_>) -> Result<String, MissingField> {
        let mut out = String::new();
        let mut json: Option<Option<serde_json::Value>> = None;
        for part in &self.parts {
            let value = match part {
                Part::Literal(s) => {
                    out.push_str(s);
                    continue;
                }
                Part::Var(Source::Path(n)) => req
                    .path_params
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| (*v).to_string()),
                Part::Var(Source::Query(n)) => {
                    req.uri.query().and_then(|q| form_value(q.as_bytes(), n))
                }
                Part::Var(Source::Header(n)) => req.header_str(n).map(str::to_string),
                Part::Var(Source::Form(n)) => req.body.and_then(|b| form_value(b, n)),
                Part::Var(Source::Json(path)) => {
                    let doc = json.get_or_insert_with(|| {
                        req.body.and_then(|b| serde_json::from_slice(b).ok())
                    });
                    doc.as_ref().and_then(|d| json_value(d, path))
                }
            };
            match value {
                Some(v) if !v.is_empty() => out.push_str(&v),
                _ => return Err(MissingField(describe(part))),
            }
        }
        Ok(out)
    }
}

fn describe(part: &Part) -> String {
    match part {
        Part::Literal(s) => s.clone(),
        Part::Var(Source::Path(n)) => format!("path.{n}"),
        Part::Var(Source::Query(n)) => format!("query.{n}"),
        Part::Var(Source::Header(n)) => format!("header.{n}"),
        Part::Var(Source::Form(n)) => format!("form.{n}"),
        Part::Var(Source::Json(p)) => format!("json.{}", p.join(".")),
    }
}

fn json_value(doc: &serde_json::Value, path: &[String]) -> Option<String> {
    let mut v = doc;
    for seg in path {
        v = v.get(seg.as_str())?;
    }
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The first value of `name` in `application/x-www-form-urlencoded` data.
fn form_value(data: &[u8], name: &str) -> Option<String> {
    data.split(|b| *b == b'&').find_map(|pair| {
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        (decode(k) == name).then(|| decode(v))
    })
}

fn decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, Method, Uri};
    use std::net::{IpAddr, Ipv4Addr};

    fn view<'a>(
        uri: &'a Uri,
        headers: &'a HeaderMap,
        body: Option<&'a [u8]>,
        params: &'a [(&'a str, &'a str)],
    ) -> RequestView<'a> {
        static POST: Method = Method::POST;
        RequestView {
            method: &POST,
            uri,
            headers,
            client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            path_params: params,
            body,
        }
    }

    #[test]
    fn renders_every_source() {
        let uri: Uri = "/buy/7?color=dark%20red&x".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-shop", "s1".parse().unwrap());
        let params = [("id", "7")];
        let t = KeyTemplate::parse("buy/{path.id}/{query.color}/{header.X-Shop}").unwrap();
        assert!(!t.needs_body());
        assert_eq!(
            t.render(&view(&uri, &h, None, &params)).unwrap(),
            "buy/7/dark red/s1"
        );

        let t = KeyTemplate::parse("buy/{form.item_id}").unwrap();
        assert!(t.needs_body());
        let body = b"qty=1&item_id=42+b";
        assert_eq!(
            t.render(&view(&uri, &h, Some(body), &params)).unwrap(),
            "buy/42 b"
        );

        let t = KeyTemplate::parse("buy/{json.item.id}").unwrap();
        let body = br#"{"item":{"id":42}}"#;
        assert_eq!(
            t.render(&view(&uri, &h, Some(body), &params)).unwrap(),
            "buy/42"
        );
    }

    #[test]
    fn missing_or_empty_field_is_an_error() {
        let uri: Uri = "/buy?item_id=".parse().unwrap();
        let h = HeaderMap::new();
        let t = KeyTemplate::parse("buy/{query.item_id}").unwrap();
        assert_eq!(
            t.render(&view(&uri, &h, None, &[])),
            Err(MissingField("query.item_id".into()))
        );
        let t = KeyTemplate::parse("buy/{form.item_id}").unwrap();
        assert!(t.render(&view(&uri, &h, None, &[])).is_err());
        let t = KeyTemplate::parse("buy/{json.item_id}").unwrap();
        assert!(t.render(&view(&uri, &h, Some(b"not json"), &[])).is_err());
    }

    #[test]
    fn bad_templates_are_rejected() {
        for bad in [
            "buy/",
            "buy/{form.item_id",
            "buy/{item_id}",
            "buy/{cookie.x}",
            "a}{path.x}",
            "{path.}",
        ] {
            assert!(KeyTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
