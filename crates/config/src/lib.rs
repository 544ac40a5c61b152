//! Typed sekisho configuration: YAML parsing with path and line in every error, validation, JSON Schema.

mod model;
pub use model::*;
