//! `${VAR}` interpolation in scalar values (never keys), before decoding.
//!
//! Values that took text from the environment are secrets: their paths are recorded so
//! that `/config` can redact them, and error messages do not quote them.

use crate::error::ConfigError;
use crate::yaml::{Node, Value};

/// Looks up an environment variable; injected so tests need not touch the process env.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Interpolates every scalar value under `node` (at YAML path `path`), marking secrets.
/// Returns the paths of the secret values.
pub(crate) fn interpolate(
    node: &mut Node,
    path: &str,
    lookup: Lookup<'_>,
    errors: &mut Vec<ConfigError>,
) -> Vec<String> {
    let mut secrets = Vec::new();
    walk(node, path, lookup, errors, &mut secrets);
    secrets
}

fn walk(
    node: &mut Node,
    path: &str,
    lookup: Lookup<'_>,
    errors: &mut Vec<ConfigError>,
    secrets: &mut Vec<String>,
) {
    match &mut node.value {
        Value::Null => {}
        Value::Scalar(text) => {
            if !text.contains('$') {
                return;
            }
            match expand(text, lookup) {
                Ok((expanded, from_env)) => {
                    *text = expanded;
                    if from_env {
                        node.secret = true;
                        secrets.push(path.to_string());
                    }
                }
                Err(messages) => {
                    for message in messages {
                        errors.push(ConfigError {
                            path: path.to_string(),
                            line: node.mark.line,
                            column: node.mark.column,
                            message,
                        });
                    }
                }
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &crate::path::index(path, i), lookup, errors, secrets);
            }
        }
        Value::Map(entries) => {
            for e in entries {
                let child = crate::path::child(path, &e.key);
                walk(&mut e.value, &child, lookup, errors, secrets);
            }
        }
    }
}

/// Expands `${VAR}`, `${VAR:-default}` and `$$` in `text`. Returns the new text and whether
/// any of it came from the environment, or every problem found.
pub(crate) fn expand(text: &str, lookup: Lookup<'_>) -> Result<(String, bool), Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut from_env = false;
    let mut problems = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                problems.push("unterminated `${` (write `$$` for a literal `$`)".to_string());
                break;
            };
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            if !is_var_name(name) {
                problems.push(format!(
                    "invalid environment variable name {name:?} in `${{...}}` (letters, digits and `_`)"
                ));
            } else {
                match (lookup(name), default) {
                    // Like the shell: `:-` also replaces an empty value.
                    (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
                    (Some(v), _) => {
                        out.push_str(&v);
                        from_env = true;
                    }
                    (None, Some(d)) => out.push_str(d),
                    (None, None) => problems.push(format!(
                        "environment variable `{name}` is not set (write `${{{name}:-default}}` for a default)"
                    )),
                }
            }
            rest = &body[end + 1..];
        } else {
            // A lone `$` is literal.
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    if problems.is_empty() {
        Ok((out, from_env))
    } else {
        Err(problems)
    }
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_defaults_and_escapes() {
        assert_eq!(
            expand("Bearer ${TOKEN}", &env),
            Ok(("Bearer s3cret".into(), true))
        );
        assert_eq!(expand("${NOPE:-x}", &env), Ok(("x".into(), false)));
        assert_eq!(expand("${EMPTY:-d}", &env), Ok(("d".into(), false)));
        assert_eq!(expand("${EMPTY}", &env), Ok((String::new(), true)));
        assert_eq!(expand("$$5 and $x", &env), Ok(("$5 and $x".into(), false)));
        assert_eq!(expand("$${TOKEN}", &env), Ok(("${TOKEN}".into(), false)));
        assert_eq!(expand("${NOPE:-}", &env), Ok((String::new(), false)));
    }

    #[test]
    fn reports_unset_unterminated_and_bad_names() {
        let e = expand("${A}/${B}", &env).err().unwrap_or_default();
        assert_eq!(e.len(), 2);
        assert!(e[0].contains("`A` is not set"), "{e:?}");
        assert!(expand("${TOKEN", &env).is_err());
        assert!(expand("${1X}", &env).is_err());
        assert!(expand("${}", &env).is_err());
    }

    #[test]
    fn marks_secret_paths() {
        let (root, errs) = crate::yaml::parse("a: { b: [x, \"${TOKEN}\"] }\nc: ${MISSING}\n");
        assert!(errs.is_empty());
        let mut root = root.unwrap_or_else(|| panic!("empty"));
        let mut errors = Vec::new();
        let secrets = interpolate(&mut root, "", &env, &mut errors);
        assert_eq!(secrets, vec!["a.b[1]".to_string()]);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "c");
        assert_eq!((errors[0].line, errors[0].column), (2, 4));
    }
}
