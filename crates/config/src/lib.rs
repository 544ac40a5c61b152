//! Typed sekisho configuration: YAML parsing with path and line in every error, validation, JSON Schema.
//!
//! [`load_file`] / [`parse_str`] read the YAML a user writes into a [`Config`], reporting
//! *every* problem at once ([`ConfigErrors`]), each with its YAML path, line and column.
//! [`json_schema`] describes the same format for editors, and [`Config::effective_json`]
//! shows the config with defaults applied and secrets redacted.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod conflicts;
mod decode;
mod effective;
mod env;
mod error;
mod keys;
mod model;
mod path;
mod schema;
mod syntax;
mod units;
mod validate;
mod yaml;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors};
pub use model::*;
pub use schema::json_schema;
pub use units::{format_duration, format_size, parse_duration, parse_size, UnitError};

/// Parses and validates a config from YAML text. Relative file paths in it (certificates,
/// keys, CAs, the access log file) are resolved against `base_dir`; `${VAR}` references
/// are read from the process environment.
pub fn parse_str(src: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
    parse_with_env(src, base_dir, &|name| std::env::var(name).ok())
}

/// Reads, parses and validates the config file at `path`; relative paths in it are
/// resolved against the file's directory.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let src = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::unplaced(format!("cannot read config file {}: {e}", path.display()))
    })?;
    let base_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    parse_str(&src, base_dir)
}

/// [`parse_str`] with the environment given by `lookup`.
pub(crate) fn parse_with_env(
    src: &str,
    base_dir: &Path,
    lookup: env::Lookup<'_>,
) -> Result<Config, ConfigErrors> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let (mut root, errors) = yaml::parse(src);
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let mut env_errors = Vec::new();
    let secret_paths = match root.as_mut() {
        Some(r) => env::interpolate(r, "", lookup, &mut env_errors),
        None => Vec::new(),
    };
    let mut d = decode::Decoder::new(base_dir);
    let mut config = decode::decode_root(&mut d, root.as_ref());
    validate::validate(&config, &mut d);
    config.secret_paths = secret_paths;
    // A value that could not be interpolated is reported once, not again as malformed.
    d.errors
        .retain(|e| !env_errors.iter().any(|env_e| env_e.path == e.path));
    let mut errors = env_errors;
    errors.append(&mut d.errors);
    if errors.is_empty() {
        Ok(config)
    } else {
        // Source order reads best; errors on one line keep the order they were found in.
        errors.sort_by_key(|e| (e.line, e.column));
        Err(ConfigErrors(errors))
    }
}

#[cfg(test)]
mod tests;
