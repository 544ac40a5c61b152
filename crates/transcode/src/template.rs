//! The `google.api.http` path template grammar, parsed into segments and variables.
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! FieldPath = IDENT { "." IDENT } ;
//! Verb     = ":" LITERAL ;
//! ```

use std::fmt;

/// One path segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Matches exactly this text.
    Literal(Box<str>),
    /// `*`: any one segment.
    Single,
    /// `**`: zero or more segments (only last).
    Multi,
}

/// A `{field.path=...}` variable: the segments `start..end` it captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The request field path, e.g. `["book", "id"]`.
    pub field_path: Vec<Box<str>>,
    /// First captured segment.
    pub start: usize,
    /// One past the last captured segment; a `**` variable runs to the end of the path.
    pub end: usize,
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The segments in order.
    pub segments: Vec<Segment>,
    /// The custom verb after `:`, if any.
    pub verb: Option<Box<str>>,
    /// The variables in order.
    pub variables: Vec<Variable>,
}

/// Why a template did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The template text.
    pub template: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "path template {:?}: {}", self.template, self.reason)
    }
}

impl std::error::Error for TemplateError {}

impl Template {
    /// Parses a template such as `/v1/{name=shelves/*/books/*}:publish`.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let err = |reason| TemplateError {
            template: text.to_owned(),
            reason,
        };
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| err("must start with '/'"))?;
        let mut p = Parser {
            s: rest.as_bytes(),
            i: 0,
            t: Template {
                segments: Vec::new(),
                verb: None,
                variables: Vec::new(),
            },
        };
        if !rest.is_empty() {
            p.segments(false).map_err(err)?;
        }
        if p.i < p.s.len() {
            if p.s[p.i] != b':' {
                return Err(err("unexpected character"));
            }
            let verb = &rest[p.i + 1..];
            if verb.is_empty() || !verb.bytes().all(is_literal_byte) {
                return Err(err("bad custom verb"));
            }
            p.t.verb = Some(verb.into());
        }
        let t = p.t;
        if let Some(pos) = t.segments.iter().position(|s| *s == Segment::Multi) {
            if pos + 1 != t.segments.len() {
                return Err(err("'**' must be the last segment"));
            }
        }
        for (i, v) in t.variables.iter().enumerate() {
            if t.variables[..i]
                .iter()
                .any(|o| o.field_path == v.field_path)
            {
                return Err(err("a field is bound twice"));
            }
        }
        Ok(t)
    }

    /// True if the template ends with `**` (matches any number of trailing segments).
    pub fn ends_with_multi(&self) -> bool {
        self.segments.last() == Some(&Segment::Multi)
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    t: Template,
}

fn is_literal_byte(b: u8) -> bool {
    // RFC 3986 pchar without ':' (the verb separator), plus '%' for escapes.
    b.is_ascii_alphanumeric() || b"-._~%!$&'()+,;@".contains(&b)
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Parses `Segment { "/" Segment }`; inside a variable, stops at `}`.
    fn segments(&mut self, in_var: bool) -> Result<(), &'static str> {
        loop {
            self.segment(in_var)?;
            if self.peek() == Some(b'/') {
                self.i += 1;
            } else {
                return Ok(());
            }
        }
    }

    fn segment(&mut self, in_var: bool) -> Result<(), &'static str> {
        match self.peek() {
            Some(b'*') => {
                self.i += 1;
                if self.peek() == Some(b'*') {
                    self.i += 1;
                    self.t.segments.push(Segment::Multi);
                } else {
                    self.t.segments.push(Segment::Single);
                }
                Ok(())
            }
            Some(b'{') if !in_var => self.variable(),
            Some(b'{') => Err("nested variables are not allowed"),
            _ => {
                let start = self.i;
                while self.peek().is_some_and(is_literal_byte) {
                    self.i += 1;
                }
                if start == self.i {
                    return Err("empty or invalid segment");
                }
                // The bytes are ASCII by construction.
                let lit = String::from_utf8_lossy(&self.s[start..self.i]);
                self.t.segments.push(Segment::Literal(lit.into()));
                Ok(())
            }
        }
    }

    fn variable(&mut self) -> Result<(), &'static str> {
        self.i += 1; // '{'
        let mut field_path = Vec::new();
        loop {
            let start = self.i;
            while self
                .peek()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                self.i += 1;
            }
            if start == self.i || self.s[start].is_ascii_digit() {
                return Err("bad field name in variable");
            }
            field_path.push(String::from_utf8_lossy(&self.s[start..self.i]).into());
            if self.peek() == Some(b'.') {
                self.i += 1;
            } else {
                break;
            }
        }
        let first = self.t.segments.len();
        match self.peek() {
            Some(b'=') => {
                self.i += 1;
                self.segments(true)?;
            }
            Some(b'}') => self.t.segments.push(Segment::Single),
            _ => return Err("expected '=' or '}' in variable"),
        }
        if self.peek() != Some(b'}') {
            return Err("unterminated variable");
        }
        self.i += 1;
        self.t.variables.push(Variable {
            field_path,
            start: first,
            end: self.t.segments.len(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Segment {
        Segment::Literal(s.into())
    }

    #[test]
    fn parses_variables_and_verbs() {
        let t = Template::parse("/v1/{name=shelves/*/books/*}:publish").unwrap();
        assert_eq!(
            t.segments,
            vec![
                lit("v1"),
                lit("shelves"),
                Segment::Single,
                lit("books"),
                Segment::Single
            ]
        );
        assert_eq!(t.verb.as_deref(), Some("publish"));
        assert_eq!(t.variables[0].start, 1);
        assert_eq!(t.variables[0].end, 5);

        let t = Template::parse("/v1/shelves/{shelf}/books/{book.id}").unwrap();
        assert_eq!(t.variables.len(), 2);
        assert_eq!(
            t.variables[1].field_path,
            vec![Box::<str>::from("book"), "id".into()]
        );

        let t = Template::parse("/v1/{path=**}").unwrap();
        assert!(t.ends_with_multi());
        assert!(Template::parse("/").unwrap().segments.is_empty());
    }

    #[test]
    fn rejects_bad_templates() {
        for bad in [
            "v1", "/v1/", "/v1//x", "/{a", "/{a=*", "/{a={b}}", "/**/x", "/x:", "/{1a}",
            "/{a}/{a}", "/x:a/b",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}
