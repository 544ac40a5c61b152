//! Reading `google.api.http` rules from method options and checking them against
//! the request and response messages.

use http::Method;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor, Value,
};

use crate::error::TranscodeError;
use crate::fields::{field_by_name, is_text_settable};
use crate::template::{Segment, Template};

/// Where the request body goes.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// No body: every unbound field comes from the query.
    None,
    /// `body: "*"`: the whole message, minus path bindings.
    Whole,
    /// `body: "field"`: one top-level field.
    Field(FieldDescriptor),
}

/// One compiled HTTP rule (a method has one per binding).
#[derive(Debug)]
pub(crate) struct Binding {
    pub method: MethodDescriptor,
    /// `/pkg.Service/Method`.
    pub grpc_path: Box<str>,
    pub http_method: Option<Method>,
    pub template: Template,
    /// Field path per template variable, in template order.
    pub vars: Vec<Vec<FieldDescriptor>>,
    pub body: Body,
    pub response_body: Option<FieldDescriptor>,
    /// What the fast codec may do for this binding (filled once the codec is built).
    pub fast: crate::fast::FastPlans,
}

impl Binding {
    /// The message type the HTTP body carries: the input, or the `body` field's message
    /// (`None` without a body, or for a scalar body field).
    pub fn body_message(&self) -> Option<MessageDescriptor> {
        match &self.body {
            Body::None => None,
            Body::Whole => Some(self.method.input()),
            Body::Field(f) => match f.kind() {
                Kind::Message(m) => Some(m),
                _ => None,
            },
        }
    }
}

pub(crate) const HTTP_BODY: &str = "google.api.HttpBody";

pub(crate) fn is_http_body(m: &MessageDescriptor) -> bool {
    m.full_name() == HTTP_BODY
}

/// Reads the rule and its `additional_bindings` (one level, as the spec says).
pub(crate) fn bindings_from_rule(
    method: &MethodDescriptor,
    rule: &DynamicMessage,
    out: &mut Vec<Binding>,
) -> Result<(), TranscodeError> {
    out.push(binding(method, rule)?);
    if let Some(extra) = rule.get_field_by_name("additional_bindings") {
        if let Value::List(list) = extra.as_ref() {
            for v in list {
                if let Value::Message(r) = v {
                    out.push(binding(method, r)?);
                }
            }
        }
    }
    Ok(())
}

/// The auto mapping: `POST /pkg.Service/Method` with the whole message as body.
pub(crate) fn auto_binding(method: &MethodDescriptor) -> Result<Binding, TranscodeError> {
    let grpc_path = grpc_path(method);
    let template = Template::parse(&grpc_path)
        .map_err(|e| TranscodeError::rule(method.full_name(), e.to_string()))?;
    Ok(Binding {
        method: method.clone(),
        grpc_path: grpc_path.into(),
        http_method: Some(Method::POST),
        template,
        vars: Vec::new(),
        body: Body::Whole,
        response_body: None,
        fast: Default::default(),
    })
}

fn grpc_path(method: &MethodDescriptor) -> String {
    format!("/{}/{}", method.parent_service().full_name(), method.name())
}

fn string_field(rule: &DynamicMessage, name: &str) -> String {
    match rule.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn binding(method: &MethodDescriptor, rule: &DynamicMessage) -> Result<Binding, TranscodeError> {
    let name = method.full_name();
    let err = |reason: String| TranscodeError::rule(name, reason);
    let mut pattern = None;
    for (field, m) in [
        ("get", Method::GET),
        ("put", Method::PUT),
        ("post", Method::POST),
        ("delete", Method::DELETE),
        ("patch", Method::PATCH),
    ] {
        if rule.has_field_by_name(field) {
            pattern = Some((Some(m), string_field(rule, field)));
        }
    }
    if rule.has_field_by_name("custom") {
        if let Some(Value::Message(c)) = rule.get_field_by_name("custom").as_deref() {
            let kind = string_field(c, "kind");
            let m = if kind == "*" {
                None
            } else {
                Some(
                    Method::from_bytes(kind.as_bytes())
                        .map_err(|_| err(format!("bad custom method {kind:?}")))?,
                )
            };
            pattern = Some((m, string_field(c, "path")));
        }
    }
    let (http_method, path) = pattern.ok_or_else(|| err("no HTTP method pattern".into()))?;
    let template = Template::parse(&path).map_err(|e| err(e.to_string()))?;

    let input = method.input();
    let mut vars = Vec::with_capacity(template.variables.len());
    for v in &template.variables {
        let mut cur = input.clone();
        let mut fields = Vec::with_capacity(v.field_path.len());
        for (i, part) in v.field_path.iter().enumerate() {
            let f = cur.get_field_by_name(part).ok_or_else(|| {
                err(format!(
                    "path variable {}: no field {part:?}",
                    v.field_path.join(".")
                ))
            })?;
            if i + 1 < v.field_path.len() {
                match f.kind() {
                    Kind::Message(m) if !f.is_list() && !f.is_map() => cur = m,
                    _ => {
                        return Err(err(format!(
                            "path variable: {part} is not a singular message"
                        )))
                    }
                }
            } else if f.is_list() || !is_text_settable(&f) {
                return Err(err(format!(
                    "path variable {}: field must be a scalar, enum or well-known type",
                    v.field_path.join(".")
                )));
            }
            fields.push(f);
        }
        if template.segments[v.start..v.end].contains(&Segment::Multi)
            && v.end != template.segments.len()
        {
            return Err(err("'**' must end the path".into()));
        }
        vars.push(fields);
    }

    let body = match string_field(rule, "body").as_str() {
        "" => Body::None,
        "*" => Body::Whole,
        f => {
            let fd = input
                .get_field_by_name(f)
                .ok_or_else(|| err(format!("body field {f:?} is not in {}", input.full_name())))?;
            if vars.iter().any(|p| p.len() == 1 && p[0] == fd) {
                return Err(err(format!("body field {f:?} is also bound by the path")));
            }
            Body::Field(fd)
        }
    };
    let response_body = match string_field(rule, "response_body").as_str() {
        "" => None,
        f => {
            let out = method.output();
            Some(field_by_name(&out, f).ok_or_else(|| {
                err(format!(
                    "response_body field {f:?} is not in {}",
                    out.full_name()
                ))
            })?)
        }
    };
    Ok(Binding {
        method: method.clone(),
        grpc_path: grpc_path(method).into(),
        http_method,
        template,
        vars,
        body,
        response_body,
        fast: Default::default(),
    })
}
