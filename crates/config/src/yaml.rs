//! A YAML node tree with a source mark on every node and map key.
//!
//! Built on `saphyr-parser`'s event stream rather than a ready-made document type because
//! we need marks on keys, duplicate keys kept (to report them), and scalars kept as text
//! (their type is decided by the key that holds them).

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::error::ConfigError;

/// Deeper nesting than this is refused: no config needs it, and it bounds our stack use.
const MAX_DEPTH: usize = 64;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Mark {
    pub line: usize,
    pub column: usize,
}

impl Mark {
    fn of(span: &Span) -> Mark {
        Mark {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

/// A YAML value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// `~`, `null` or nothing at all.
    Null,
    /// Any other scalar, as written (after `${VAR}` interpolation).
    Scalar(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order, duplicates kept.
    Map(Vec<Entry>),
}

/// One `key: value` of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_mark: Mark,
    pub value: Node,
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub mark: Mark,
    /// True when (part of) the scalar came from an environment variable.
    pub secret: bool,
}

impl Node {
    /// What kind of value this is, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Scalar(_) => "a scalar",
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
        }
    }

    /// The scalar quoted for an error message; secrets are not shown.
    pub fn shown(&self) -> String {
        match &self.value {
            Value::Scalar(_) if self.secret => "<redacted>".to_string(),
            Value::Scalar(s) => format!("{s:?}"),
            _ => self.kind().to_string(),
        }
    }
}

/// A partly built collection.
enum Frame {
    Seq(Mark, Vec<Node>),
    /// The pending key: `None` when a key is expected next; `Some(None)` when the key was
    /// unusable (already reported) and its value is to be dropped.
    Map(Mark, Vec<Entry>, Option<Option<(String, Mark)>>),
}

/// Parses one YAML document. Returns the root (None for an empty document) and the errors;
/// a syntax error stops parsing, other problems (aliases, complex keys) do not.
pub(crate) fn parse(src: &str) -> (Option<Node>, Vec<ConfigError>) {
    let mut b = Builder {
        stack: Vec::new(),
        root: None,
        errors: Vec::new(),
    };
    let mut documents = 0;
    for item in Parser::new_from_str(src) {
        let (event, span) = match item {
            Ok(ok) => ok,
            Err(e) => {
                let m = e.marker();
                b.errors.push(error_at(
                    Mark {
                        line: m.line(),
                        column: m.col() + 1,
                    },
                    format!("YAML syntax error: {}", e.info()),
                ));
                break;
            }
        };
        let mark = Mark::of(&span);
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    b.errors.push(error_at(
                        mark,
                        "a second YAML document: the config is a single document".to_string(),
                    ));
                    break;
                }
            }
            Event::Scalar(text, style, _, _) => {
                let value = if style == ScalarStyle::Plain && is_null(&text) {
                    Value::Null
                } else {
                    Value::Scalar(text.into_owned())
                };
                b.complete(Node {
                    value,
                    mark,
                    secret: false,
                });
            }
            Event::Alias(_) => {
                b.errors.push(error_at(
                    mark,
                    "YAML aliases (`*name`) are not supported; write the value out".to_string(),
                ));
                b.complete(Node {
                    value: Value::Null,
                    mark,
                    secret: false,
                });
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if b.stack.len() >= MAX_DEPTH {
                    b.errors.push(error_at(
                        mark,
                        format!("nesting deeper than {MAX_DEPTH} levels"),
                    ));
                    break;
                }
                b.stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq(mark, Vec::new())
                } else {
                    Frame::Map(mark, Vec::new(), None)
                });
            }
            Event::SequenceEnd | Event::MappingEnd => match b.stack.pop() {
                Some(Frame::Seq(mark, items)) => b.complete(Node {
                    value: Value::Seq(items),
                    mark,
                    secret: false,
                }),
                Some(Frame::Map(mark, entries, _)) => b.complete(Node {
                    value: Value::Map(entries),
                    mark,
                    secret: false,
                }),
                None => {}
            },
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    (b.root, b.errors)
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn error_at(mark: Mark, message: String) -> ConfigError {
    ConfigError {
        path: String::new(),
        line: mark.line,
        column: mark.column,
        message,
    }
}

struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    errors: Vec<ConfigError>,
}

impl Builder {
    /// Places a finished node into its parent (or as the root).
    fn complete(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq(_, items)) => items.push(node),
            Some(Frame::Map(_, entries, pending)) => match pending.take() {
                None => match node.value {
                    Value::Scalar(key) => *pending = Some(Some((key, node.mark))),
                    // `~: x` and `: x` are keys too; decoding reports them as unknown.
                    Value::Null => *pending = Some(Some((String::new(), node.mark))),
                    Value::Seq(_) | Value::Map(_) => {
                        self.errors.push(error_at(
                            node.mark,
                            "a mapping key must be a string, not a collection".to_string(),
                        ));
                        *pending = Some(None);
                    }
                },
                Some(Some((key, key_mark))) => entries.push(Entry {
                    key,
                    key_mark,
                    value: node,
                }),
                Some(None) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(src: &str) -> Node {
        let (root, errors) = parse(src);
        assert!(errors.is_empty(), "{errors:?}");
        root.unwrap_or_else(|| panic!("empty document"))
    }

    #[test]
    fn keys_and_values_have_marks() {
        let n = root("a: 1\nb:\n  - x\n  - { c: d }\n");
        let Value::Map(entries) = &n.value else {
            panic!("not a map")
        };
        assert_eq!(entries[0].key, "a");
        assert_eq!(entries[0].key_mark, Mark { line: 1, column: 1 });
        assert_eq!(entries[0].value.mark, Mark { line: 1, column: 4 });
        assert_eq!(entries[1].key_mark, Mark { line: 2, column: 1 });
        let Value::Seq(items) = &entries[1].value.value else {
            panic!("not a seq")
        };
        assert_eq!(items[0].mark, Mark { line: 3, column: 5 });
        let Value::Map(inner) = &items[1].value else {
            panic!("not a map")
        };
        assert_eq!(inner[0].key_mark, Mark { line: 4, column: 7 });
    }

    #[test]
    fn duplicate_keys_are_kept() {
        let n = root("a: 1\na: 2\n");
        let Value::Map(entries) = &n.value else {
            panic!("not a map")
        };
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn nulls_and_quoted_nulls() {
        let n = root("a: ~\nb: 'null'\nc:\n");
        let Value::Map(e) = &n.value else {
            panic!("not a map")
        };
        assert_eq!(e[0].value.value, Value::Null);
        assert_eq!(e[1].value.value, Value::Scalar("null".into()));
        assert_eq!(e[2].value.value, Value::Null);
    }

    #[test]
    fn syntax_error_has_position() {
        let (_, errors) = parse("a: 1\nb: [1, 2\n");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.starts_with("YAML syntax error"));
        assert!(errors[0].line >= 2, "{errors:?}");
    }

    #[test]
    fn aliases_and_deep_nesting_are_refused() {
        let (_, errors) = parse("a: &x 1\nb: *x\n");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 2);
        let deep = "[".repeat(200);
        let (_, errors) = parse(&deep);
        assert!(!errors.is_empty());
    }

    #[test]
    fn empty_document_has_no_root() {
        let (root, errors) = parse("# only a comment\n");
        assert!(root.is_none());
        assert!(errors.is_empty());
    }
}
