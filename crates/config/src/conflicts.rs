//! Routes that would match the same requests, which precedence cannot order.
//!
//! Two routes conflict when they have the same host, the same path match (templates
//! compared with parameter names erased) and overlapping predicates. A route with
//! method/header predicates beats one without, so that pair is not a conflict.

use std::collections::HashMap;

use crate::model::{PathMatch, Route, RouteMatch};
use crate::syntax;

/// Pairs `(later, earlier)` of indexes into `routes` that conflict; at most one pair per
/// later route (the first earlier one), to keep the report short.
pub(crate) fn find(routes: &[Route]) -> Vec<(usize, usize)> {
    let mut groups: HashMap<(Option<&str>, String), Vec<usize>> = HashMap::new();
    for (i, r) in routes.iter().enumerate() {
        groups
            .entry((r.matcher.host.as_deref(), path_key(&r.matcher.path)))
            .or_default()
            .push(i);
    }
    let mut pairs = Vec::new();
    for members in groups.values() {
        for (k, &later) in members.iter().enumerate() {
            if let Some(&earlier) = members[..k]
                .iter()
                .find(|&&e| overlap(&routes[e].matcher, &routes[later].matcher))
            {
                pairs.push((later, earlier));
            }
        }
    }
    pairs.sort_unstable();
    pairs
}

/// A string equal for two path matches exactly when they match the same paths.
fn path_key(p: &PathMatch) -> String {
    match p {
        PathMatch::Exact(s) => format!("= {s}"),
        PathMatch::Prefix(s) => format!("^ {s}"),
        PathMatch::Template(s) => format!("t {}", syntax::template_shape(s)),
    }
}

/// Whether some request satisfies the predicates of both (host and path being equal),
/// with neither winning by having predicates the other lacks.
fn overlap(a: &RouteMatch, b: &RouteMatch) -> bool {
    let has = |m: &RouteMatch| !m.methods.is_empty() || !m.headers.is_empty();
    if has(a) != has(b) {
        return false;
    }
    let methods = a.methods.is_empty()
        || b.methods.is_empty()
        || a.methods.iter().any(|m| b.methods.contains(m));
    let headers = a.headers.iter().all(|ha| {
        b.headers.iter().all(|hb| {
            ha.name != hb.name
                || match (&ha.value, &hb.value) {
                    (Some(x), Some(y)) => x == y,
                    _ => true,
                }
        })
    });
    methods && headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HeaderMatch;

    fn m(path: PathMatch, methods: &[&str], headers: &[(&str, Option<&str>)]) -> RouteMatch {
        RouteMatch {
            host: None,
            path,
            methods: methods.iter().map(|s| s.to_string()).collect(),
            headers: headers
                .iter()
                .map(|(n, v)| HeaderMatch {
                    name: n.to_string(),
                    value: v.map(str::to_string),
                })
                .collect(),
        }
    }

    fn p(s: &str) -> PathMatch {
        PathMatch::Prefix(s.into())
    }

    #[test]
    fn predicates_overlap() {
        assert!(overlap(&m(p("/"), &[], &[]), &m(p("/"), &[], &[])));
        assert!(!overlap(&m(p("/"), &["GET"], &[]), &m(p("/"), &[], &[])));
        assert!(overlap(
            &m(p("/"), &["GET", "PUT"], &[]),
            &m(p("/"), &["PUT"], &[])
        ));
        assert!(!overlap(
            &m(p("/"), &["GET"], &[]),
            &m(p("/"), &["POST"], &[])
        ));
        assert!(overlap(
            &m(p("/"), &["GET"], &[]),
            &m(p("/"), &[], &[("x", Some("1"))])
        ));
        assert!(!overlap(
            &m(p("/"), &[], &[("x", Some("1"))]),
            &m(p("/"), &[], &[("x", Some("2"))])
        ));
        assert!(overlap(
            &m(p("/"), &[], &[("x", Some("1"))]),
            &m(p("/"), &[], &[("x", None)])
        ));
    }

    #[test]
    fn templates_compare_without_names() {
        assert_eq!(
            path_key(&PathMatch::Template("/a/{id}".into())),
            path_key(&PathMatch::Template("/a/{x}".into()))
        );
        assert_ne!(
            path_key(&PathMatch::Exact("/a".into())),
            path_key(&PathMatch::Prefix("/a".into()))
        );
    }
}
