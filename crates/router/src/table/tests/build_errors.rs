//! Conflicts, non-conflicts and malformed routes.

use super::*;

fn conflict(first: usize, second: usize) -> Vec<BuildError> {
    vec![BuildError::Conflict { first, second }]
}

#[test]
fn conflicts_are_reported_with_both_indices() {
    let any = HostMatch::Any;
    assert_eq!(
        conflicts(vec![
            route(any.clone(), exact("/x")),
            route(any.clone(), exact("/x"))
        ]),
        conflict(0, 1)
    );
    assert_eq!(
        conflicts(vec![
            route(any.clone(), tmpl("/v1/{a}")),
            route(any.clone(), tmpl("/v1/{b}"))
        ]),
        conflict(0, 1),
        "parameter names are erased"
    );
    assert_eq!(
        conflicts(vec![
            route(any.clone(), tmpl("/s/{*a}")),
            route(any.clone(), tmpl("/s/{b...}"))
        ]),
        conflict(0, 1)
    );
    assert_eq!(
        conflicts(vec![
            route(any.clone(), prefix("/a")),
            with_methods(route(any.clone(), prefix("/p")), &[Method::GET]),
            with_methods(
                route(any.clone(), prefix("/p")),
                &[Method::GET, Method::POST]
            ),
        ]),
        conflict(1, 2)
    );
    assert_eq!(
        conflicts(vec![
            with_header(route(any.clone(), exact("/x")), "x-a", Some("1")),
            with_header(route(any.clone(), exact("/x")), "x-b", None),
        ]),
        conflict(0, 1),
        "a request may carry both headers"
    );
    assert_eq!(
        conflicts(vec![
            with_methods(route(any.clone(), exact("/x")), &[Method::GET]),
            with_header(route(any.clone(), exact("/x")), "x-b", None),
        ]),
        conflict(0, 1)
    );
    assert_eq!(
        conflicts(vec![
            route(host("API.example.com"), exact("/")),
            route(host("api.example.com:80"), exact("/"))
        ]),
        conflict(0, 1)
    );
    assert_eq!(
        conflicts(vec![
            route(wild("*.example.com"), exact("/")),
            route(wild(".example.com"), exact("/"))
        ]),
        conflict(0, 1)
    );
    let three = conflicts(vec![
        route(any.clone(), exact("/x")),
        route(any.clone(), exact("/x")),
        route(any, exact("/x")),
    ]);
    assert_eq!(
        three,
        [(0, 1), (0, 2), (1, 2)].map(|(first, second)| BuildError::Conflict { first, second })
    );
}

#[test]
fn non_conflicts() {
    let any = HostMatch::Any;
    let ok = |specs: Vec<RouteSpec>| assert_eq!(conflicts(specs), Vec::new());
    ok(vec![
        with_methods(route(any.clone(), exact("/x")), &[Method::GET]),
        with_methods(route(any.clone(), exact("/x")), &[Method::POST]),
    ]);
    ok(vec![
        with_methods(route(any.clone(), exact("/x")), &[Method::GET]),
        route(any.clone(), exact("/x")),
    ]);
    ok(vec![
        with_header(route(any.clone(), exact("/x")), "x-canary", Some("1")),
        with_header(route(any.clone(), exact("/x")), "x-canary", Some("2")),
    ]);
    ok(vec![
        route(any.clone(), exact("/x")),
        route(any.clone(), prefix("/x")),
        route(any.clone(), tmpl("/x")),
    ]);
    ok(vec![
        route(any.clone(), prefix("/x")),
        route(any.clone(), prefix("/x/")),
    ]);
    ok(vec![
        route(any.clone(), tmpl("/v1/{a}")),
        route(any.clone(), tmpl("/v1/{a}/")),
    ]);
    ok(vec![
        route(any.clone(), tmpl("/v1/{a}")),
        route(any.clone(), tmpl("/v1/{*a}")),
    ]);
    ok(vec![
        route(host("a.example.com"), exact("/")),
        route(wild(".example.com"), exact("/")),
        route(any, exact("/")),
    ]);
}

#[test]
fn bad_routes_are_all_reported() {
    let errors = conflicts(vec![
        route(HostMatch::Any, tmpl("/v1/{id}.json")),
        route(HostMatch::Any, exact("v1")),
        route(HostMatch::Any, prefix("/a//b")),
        route(HostMatch::Any, tmpl("/a/./{b}")),
        route(host(""), exact("/")),
        route(wild("example.com"), exact("/")),
        route(wild("*."), exact("/")),
        route(HostMatch::Any, exact("/a%2fb")),
        route(HostMatch::Any, exact("/ok")),
    ]);
    let kinds: Vec<_> = errors
        .iter()
        .map(|e| match e {
            BuildError::BadTemplate { index, .. } => ("template", *index),
            BuildError::BadPath { index, .. } => ("path", *index),
            BuildError::BadHost { index, .. } => ("host", *index),
            BuildError::Conflict { .. } => ("conflict", 0),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("template", 0),
            ("path", 1),
            ("path", 2),
            ("template", 3),
            ("host", 4),
            ("host", 5),
            ("host", 6),
            ("path", 7)
        ]
    );
    assert!(
        errors
            .iter()
            .any(|e| e.to_string().contains(r#"write "/a%2Fb""#)),
        "{errors:?}"
    );
}
