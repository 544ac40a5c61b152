//! Whole-config tests: parsing, defaults, every validation rule, env, robustness.

mod cluster_resilience;
mod cors;
mod env;
mod errors;
mod full;
mod fuzz_replay;
mod policy;
mod resilience;
mod robustness;
mod transcode;
mod validation;

use std::path::Path;

use crate::{parse_with_env, Config, ConfigErrors};

/// The complete example config (also shown in docs/config.md).
pub(crate) const FULL: &str = include_str!("../testdata/full.yaml");

/// A small valid config that tests extend.
pub(crate) const MINIMAL: &str = "\
listeners:
  - name: main
    listen: 127.0.0.1:8080
routes:
  - name: all
    cluster: backend
clusters:
  - name: backend
    endpoints: [127.0.0.1:9000]
";

fn no_env(_: &str) -> Option<String> {
    None
}

/// Parses with an empty environment and base dir `/etc/sekisho`.
pub(crate) fn parse(src: &str) -> Result<Config, ConfigErrors> {
    parse_with_env(src, Path::new("/etc/sekisho"), &no_env)
}

/// Parses a config that must be valid.
pub(crate) fn ok(src: &str) -> Config {
    match parse(src) {
        Ok(c) => c,
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

/// Parses a config that must be invalid; returns its errors.
pub(crate) fn errs(src: &str) -> ConfigErrors {
    match parse(src) {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(e) => e,
    }
}

/// Asserts exactly one error, with this path, line and message fragment.
#[track_caller]
pub(crate) fn one_error(src: &str, path: &str, line: usize, fragment: &str) {
    let e = errs(src);
    assert_eq!(e.len(), 1, "expected one error, got:\n{e}");
    let e = &e.0[0];
    assert_eq!(
        (e.path.as_str(), e.line),
        (path, line),
        "wrong place for: {e}"
    );
    assert!(
        e.message.contains(fragment),
        "message {:?} lacks {fragment:?}",
        e.message
    );
}
