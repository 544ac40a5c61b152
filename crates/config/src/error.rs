//! Config errors: each one names its YAML path and source position.

use std::fmt;

use crate::model::Location;

/// One problem in a config, with where it was written.
///
/// Displayed as `routes[1].timeout: line 12, column 14: invalid duration "3x" (...)`;
/// the path is left out when empty and the position when `line` is 0 (e.g. an unreadable file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.path, *.line, *.column, .message))]
pub struct ConfigError {
    /// Dotted YAML path, e.g. `routes[1].timeout`; empty for the document itself.
    pub path: String,
    /// 1-based line; 0 when the error has no position.
    pub line: usize,
    /// 1-based column; 0 when the error has no position.
    pub column: usize,
    /// What is wrong, and where possible what is expected instead.
    pub message: String,
}

impl ConfigError {
    /// An error about the item written at `at`.
    ///
    /// Later stages (e.g. the gateway compiling its plan, loading a certificate) use this
    /// to report against the config source.
    pub fn at(at: &Location, message: impl Into<String>) -> Self {
        ConfigError {
            path: at.path.clone(),
            line: at.line,
            column: at.column,
            message: message.into(),
        }
    }

    /// An error that has no position in the source (e.g. the file could not be read).
    pub fn unplaced(message: impl Into<String>) -> Self {
        ConfigError {
            path: String::new(),
            line: 0,
            column: 0,
            message: message.into(),
        }
    }
}

fn render(path: &str, line: usize, column: usize, message: &str) -> String {
    let mut out = String::new();
    if !path.is_empty() {
        out.push_str(path);
        out.push_str(": ");
    }
    if line > 0 {
        out.push_str(&format!("line {line}, column {column}: "));
    }
    out.push_str(message);
    out
}

/// Every problem found in a config, in source order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors, in source order.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_path_line_and_column() {
        let e = ConfigError {
            path: "routes[1].timeout".into(),
            line: 12,
            column: 14,
            message: "invalid duration \"3x\"".into(),
        };
        assert_eq!(
            e.to_string(),
            "routes[1].timeout: line 12, column 14: invalid duration \"3x\""
        );
    }

    #[test]
    fn display_without_position_or_path() {
        let e = ConfigError::unplaced("cannot read config file x.yaml: not found");
        assert_eq!(e.to_string(), "cannot read config file x.yaml: not found");
    }

    #[test]
    fn errors_display_one_per_line() {
        let loc = Location {
            path: "listeners[0]".into(),
            line: 3,
            column: 5,
        };
        let errs = ConfigErrors(vec![ConfigError::at(&loc, "a"), ConfigError::at(&loc, "b")]);
        assert_eq!(
            errs.to_string(),
            "listeners[0]: line 3, column 5: a\nlisteners[0]: line 3, column 5: b"
        );
    }
}
