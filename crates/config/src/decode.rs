//! Strict decoding of the YAML node tree into the typed model, collecting every error.
//!
//! Each decoder returns a best-effort value even after reporting an error, so that one
//! mistake does not hide others (or cause follow-on errors, e.g. "unknown cluster").

pub(crate) mod cluster;
mod cors;
mod listener;
pub(crate) mod policy;
pub(crate) mod route;
mod top;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ConfigError;
use crate::model::Location;
use crate::path;
use crate::units;
use crate::yaml::{Entry, Mark, Node, Value};

pub(crate) use top::decode_root;

/// Decoding state: the errors so far and where each value was written.
pub(crate) struct Decoder {
    pub errors: Vec<ConfigError>,
    /// Relative file paths in the config are resolved against this.
    pub base_dir: PathBuf,
    /// The mark of every value decoded, by YAML path, for cross-item checks.
    pub marks: HashMap<String, Mark>,
}

impl Decoder {
    pub fn new(base_dir: &Path) -> Self {
        Decoder {
            errors: Vec::new(),
            base_dir: base_dir.to_path_buf(),
            marks: HashMap::new(),
        }
    }

    /// Records an error at `path`, `mark`.
    pub fn error(&mut self, path: &str, mark: Mark, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.to_string(),
            line: mark.line,
            column: mark.column,
            message: message.into(),
        });
    }

    /// The location of the value at `path`, or of `fallback` when it was not written.
    pub fn location(&self, path: &str, fallback: &Location) -> Location {
        match self.marks.get(path) {
            Some(m) => Location {
                path: path.to_string(),
                line: m.line,
                column: m.column,
            },
            None => fallback.clone(),
        }
    }

    /// Reads a mapping with keys from `known`: reports unknown and duplicate keys.
    pub fn map<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        known: &'static [&'static str],
    ) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            self.expected(node, path, "a mapping");
            return None;
        };
        let mut kept: Vec<&'n Entry> = Vec::new();
        for e in entries {
            let child = path::child(path, &e.key);
            if let Some(first) = kept.iter().find(|k| k.key == e.key) {
                let line = first.key_mark.line;
                self.error(
                    &child,
                    e.key_mark,
                    format!("duplicate key `{}` (first at line {line})", e.key),
                );
            } else if known.contains(&e.key.as_str()) {
                let mark = match e.value.value {
                    Value::Null => e.key_mark,
                    _ => e.value.mark,
                };
                self.marks.insert(child, mark);
                kept.push(e);
            } else {
                let message = unknown_key_message(&e.key, known);
                self.error(&child, e.key_mark, message);
            }
        }
        Some(Fields {
            path: path.to_string(),
            mark: node.mark,
            entries: kept,
        })
    }

    /// Reads a mapping whose keys are free-form (e.g. header names): reports duplicates
    /// and returns the first occurrence of each key.
    pub fn free_map<'n>(&mut self, node: &'n Node, path: &str) -> Option<Vec<&'n Entry>> {
        let Value::Map(entries) = &node.value else {
            self.expected(node, path, "a mapping");
            return None;
        };
        let mut kept: Vec<&'n Entry> = Vec::new();
        for e in entries {
            let child = path::child(path, &e.key);
            if let Some(first) = kept.iter().find(|k| k.key == e.key) {
                let line = first.key_mark.line;
                self.error(
                    &child,
                    e.key_mark,
                    format!("duplicate key `{}` (first at line {line})", e.key),
                );
            } else {
                self.marks.insert(child, e.value.mark);
                kept.push(e);
            }
        }
        Some(kept)
    }

    /// Reads a sequence.
    pub fn seq<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.marks.insert(path::index(path, i), item.mark);
                }
                Some(items)
            }
            _ => {
                self.expected(node, path, "a sequence");
                None
            }
        }
    }

    /// Reads a sequence item by item with `item` (given the decoder, the item and its path);
    /// items that fail are reported by `item` and left out.
    pub fn list<T>(
        &mut self,
        node: &Node,
        path: &str,
        mut item: impl FnMut(&mut Self, &Node, &str) -> Option<T>,
    ) -> Vec<T> {
        let Some(items) = self.seq(node, path) else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, n)| item(self, n, &path::index(path, i)))
            .collect()
    }

    /// Reports a value of the wrong type.
    pub fn expected(&mut self, node: &Node, path: &str, what: &str) {
        let found = match node.value {
            Value::Scalar(_) => node.shown(),
            _ => node.kind().to_string(),
        };
        self.error(path, node.mark, format!("expected {what}, found {found}"));
    }

    /// Reads a string (any non-null scalar).
    pub fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Scalar(s) => Some(s.clone()),
            _ => {
                self.expected(node, path, "a string");
                None
            }
        }
    }

    /// Reads a non-empty string.
    pub fn nonempty(&mut self, node: &Node, path: &str) -> Option<String> {
        let s = self.string(node, path)?;
        if s.is_empty() {
            self.error(path, node.mark, "must not be empty");
            return None;
        }
        Some(s)
    }

    /// Reads `true` or `false`.
    pub fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Value::Scalar(s) if matches!(s.as_str(), "true" | "True" | "TRUE") => Some(true),
            Value::Scalar(s) if matches!(s.as_str(), "false" | "False" | "FALSE") => Some(false),
            _ => {
                self.expected(node, path, "true or false");
                None
            }
        }
    }

    /// Reads a non-negative integer that fits `T`.
    pub fn int<T: TryFrom<u64>>(&mut self, node: &Node, path: &str) -> Option<T> {
        let Value::Scalar(s) = &node.value else {
            self.expected(node, path, "a non-negative integer");
            return None;
        };
        let Some(n) = s
            .strip_prefix('+')
            .unwrap_or(s)
            .parse::<u64>()
            .ok()
            .filter(|_| s.bytes().any(|b| b.is_ascii_digit()))
        else {
            self.expected(node, path, "a non-negative integer");
            return None;
        };
        match T::try_from(n) {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(path, node.mark, format!("{n} is out of range"));
                None
            }
        }
    }

    /// Reads a human-readable duration (`250ms`, `1m30s`).
    pub fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let Value::Scalar(s) = &node.value else {
            self.expected(node, path, "a duration like 250ms, 3s, 1m30s");
            return None;
        };
        match units::parse_duration(s) {
            Ok(d) => Some(d),
            Err(e) => {
                let message = if node.secret {
                    "invalid duration <redacted> (expected e.g. 250ms, 3s, 1m30s)".to_string()
                } else {
                    e.to_string()
                };
                self.error(path, node.mark, message);
                None
            }
        }
    }

    /// Reads a duration that must be greater than zero.
    pub fn positive_duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let d = self.duration(node, path)?;
        if d.is_zero() {
            self.error(path, node.mark, "must be greater than 0");
            return None;
        }
        Some(d)
    }

    /// Reads a size in bytes (`512`, `64KiB`, `1MB`).
    pub fn size(&mut self, node: &Node, path: &str) -> Option<u64> {
        let Value::Scalar(s) = &node.value else {
            self.expected(node, path, "a size like 512, 64KiB or 1MB");
            return None;
        };
        match units::parse_size(s) {
            Ok(n) => Some(n),
            Err(e) => {
                let message = if node.secret {
                    "invalid size <redacted> (expected e.g. 512, 64KiB, 1MB)".to_string()
                } else {
                    e.to_string()
                };
                self.error(path, node.mark, message);
                None
            }
        }
    }

    /// Reads an `ip:port` socket address.
    pub fn socket_addr(&mut self, node: &Node, path: &str) -> Option<SocketAddr> {
        let s = self.string(node, path)?;
        match s.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                let message = format!(
                    "invalid address {} (expected ip:port, e.g. 127.0.0.1:8080 or [::1]:8080)",
                    node.shown()
                );
                self.error(path, node.mark, message);
                None
            }
        }
    }

    /// Reads a file path; a relative one is resolved against the config's directory.
    pub fn file(&mut self, node: &Node, path: &str) -> Option<PathBuf> {
        let s = self.nonempty(node, path)?;
        Some(self.base_dir.join(s))
    }

    /// Reads a non-negative integer that must be at least 1.
    pub fn at_least_one<T: TryFrom<u64>>(&mut self, node: &Node, path: &str) -> Option<T> {
        let Value::Scalar(s) = &node.value else {
            return self.int(node, path);
        };
        if s.trim_start_matches('+').parse::<u64>() == Ok(0) {
            self.error(path, node.mark, "must be at least 1");
            return None;
        }
        self.int(node, path)
    }

    /// Reads one of a fixed set of words.
    pub fn choice<T: Copy>(
        &mut self,
        node: &Node,
        path: &str,
        what: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        let s = self.string(node, path)?;
        if let Some((_, v)) = options.iter().find(|(name, _)| *name == s) {
            return Some(*v);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let message = format!(
            "invalid {what} {} (expected one of: {})",
            node.shown(),
            names.join(", ")
        );
        self.error(path, node.mark, message);
        None
    }

    /// Checks a value with `check`, reporting its error message at the node.
    pub fn check<T>(
        &mut self,
        node: &Node,
        path: &str,
        check: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let s = self.string(node, path)?;
        match check(&s) {
            Ok(v) => Some(v),
            Err(message) => {
                self.error(path, node.mark, message);
                None
            }
        }
    }
}

/// The known keys of one mapping (first occurrences), for typed access.
pub(crate) struct Fields<'n> {
    pub path: String,
    pub mark: Mark,
    entries: Vec<&'n Entry>,
}

impl<'n> Fields<'n> {
    /// The value of `key`, None when absent or null.
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.value)
            .filter(|n| n.value != Value::Null)
    }

    /// The value of `key`; reports it missing (at this mapping) when absent or null.
    pub fn required(&self, d: &mut Decoder, key: &str) -> Option<&'n Node> {
        let found = self.get(key);
        if found.is_none() {
            d.error(
                &self.path,
                self.mark,
                format!("missing required key `{key}`"),
            );
        }
        found
    }

    /// Where `key` was written, if it was.
    pub fn key_mark(&self, key: &str) -> Option<Mark> {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.key_mark)
    }

    /// The YAML path of `key` in this mapping.
    pub fn path(&self, key: &str) -> String {
        path::child(&self.path, key)
    }

    /// The location of this mapping, for the model's `at` fields.
    pub fn location(&self) -> Location {
        Location {
            path: self.path.clone(),
            line: self.mark.line,
            column: self.mark.column,
        }
    }
}

/// `unknown key `x``, with the closest known key or the list of known keys.
fn unknown_key_message(key: &str, known: &[&str]) -> String {
    match closest(key, known) {
        Some(k) => format!("unknown key `{key}` (did you mean `{k}`?)"),
        None => format!(
            "unknown key `{key}` (expected one of: {})",
            known.join(", ")
        ),
    }
}

/// The known key that `key` was most likely meant to be.
pub(crate) fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let norm = key.to_ascii_lowercase().replace('-', "_");
    let mut best: Option<(usize, &'k str)> = None;
    for k in known {
        let dist = edit_distance(&norm, k);
        let close = dist <= (k.len() / 3).max(1)
            || (norm.len() >= 4 && (k.contains(norm.as_str()) || norm.contains(*k)));
        if close && best.is_none_or(|(d, _)| dist < d) {
            best = Some((dist, k));
        }
    }
    best.map(|(_, k)| k)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys() {
        let keys = crate::keys::MATCH;
        assert_eq!(closest("path_prefx", keys), Some("path_prefix"));
        assert_eq!(closest("path-prefix", keys), Some("path_prefix"));
        assert_eq!(closest("prefix", keys), Some("path_prefix"));
        assert_eq!(closest("method", keys), Some("methods"));
        assert_eq!(closest("xyz", keys), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
