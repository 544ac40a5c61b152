use super::*;
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

mod build_errors;

fn exact(p: &str) -> PathMatch {
    PathMatch::Exact(p.into())
}
fn prefix(p: &str) -> PathMatch {
    PathMatch::Prefix(p.into())
}
fn tmpl(p: &str) -> PathMatch {
    PathMatch::Template(p.into())
}
fn host(h: &str) -> HostMatch {
    HostMatch::Exact(h.into())
}
fn wild(h: &str) -> HostMatch {
    HostMatch::Wildcard(h.into())
}

fn route(host: HostMatch, path: PathMatch) -> RouteSpec {
    RouteSpec {
        host,
        ..RouteSpec::new(path)
    }
}

fn with_methods(mut spec: RouteSpec, methods: &[Method]) -> RouteSpec {
    spec.methods = methods.to_vec();
    spec
}

fn with_header(mut spec: RouteSpec, name: &'static str, value: Option<&'static str>) -> RouteSpec {
    spec.headers.push(HeaderPredicate {
        name: HeaderName::from_static(name),
        value: value.map(HeaderValue::from_static),
    });
    spec
}

/// Builds a router whose payloads are the route indices.
fn build(specs: Vec<RouteSpec>) -> Router<usize> {
    try_build(specs).unwrap_or_else(|e| panic!("build failed: {e:?}"))
}

fn try_build(specs: Vec<RouteSpec>) -> Result<Router<usize>, Vec<BuildError>> {
    let mut b = RouterBuilder::new();
    for (i, spec) in specs.into_iter().enumerate() {
        assert_eq!(b.add(spec, i), i);
    }
    b.build()
}

fn get(r: &Router<usize>, host: &str, path: &str) -> Option<usize> {
    find(r, host, path, Method::GET, &[])
}

fn find(
    r: &Router<usize>,
    host: &str,
    path: &str,
    method: Method,
    headers: &[(&'static str, &'static str)],
) -> Option<usize> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(*name, HeaderValue::from_static(value));
    }
    let m = r.find(host, path, &method, &map)?;
    assert_eq!(*m.value, m.index);
    Some(m.index)
}

fn conflicts(specs: Vec<RouteSpec>) -> Vec<BuildError> {
    match try_build(specs) {
        Ok(_) => Vec::new(),
        Err(errors) => errors,
    }
}

#[test]
fn host_tiers_exact_then_longest_wildcard_then_any() {
    let r = build(vec![
        route(HostMatch::Any, prefix("/")),
        route(wild(".example.com"), prefix("/")),
        route(host("api.example.com"), prefix("/")),
        route(wild("*.b.example.com"), prefix("/")),
    ]);
    assert_eq!(get(&r, "api.example.com", "/x"), Some(2));
    assert_eq!(get(&r, "x.example.com", "/x"), Some(1));
    assert_eq!(
        get(&r, "a.b.example.com", "/x"),
        Some(3),
        "longest suffix first"
    );
    assert_eq!(get(&r, "z.a.b.example.com", "/x"), Some(3), "any depth");
    assert_eq!(get(&r, "b.example.com", "/x"), Some(1));
    assert_eq!(
        get(&r, "example.com", "/x"),
        Some(0),
        "a wildcard needs a label"
    );
    assert_eq!(get(&r, "other.org", "/x"), Some(0));
    assert_eq!(get(&r, "", "/x"), Some(0));
    let many_labels = format!("{}b.example.com", "a.".repeat(2000));
    assert_eq!(get(&r, &many_labels, "/x"), Some(3));
}

#[test]
fn host_tier_beats_path_specificity() {
    let r = build(vec![
        route(HostMatch::Any, exact("/v1/users")),
        route(host("api.example.com"), prefix("/")),
    ]);
    assert_eq!(get(&r, "api.example.com", "/v1/users"), Some(1));
    assert_eq!(get(&r, "www.example.com", "/v1/users"), Some(0));
}

#[test]
fn empty_tier_falls_through_to_the_next() {
    // The legacy monolith catch-all still catches what the host's routes don't.
    let r = build(vec![
        route(host("api.example.com"), exact("/v1/users")),
        route(wild(".example.com"), prefix("/static/")),
        route(HostMatch::Any, prefix("/")),
    ]);
    assert_eq!(get(&r, "api.example.com", "/v1/users"), Some(0));
    assert_eq!(get(&r, "api.example.com", "/static/a.css"), Some(1));
    assert_eq!(get(&r, "api.example.com", "/unknown"), Some(2));
    assert_eq!(get(&r, "x.example.com", "/v1/users"), Some(2));
    let no_catch_all = build(vec![route(host("api.example.com"), exact("/v1/users"))]);
    assert_eq!(get(&no_catch_all, "api.example.com", "/unknown"), None);
    assert_eq!(get(&no_catch_all, "other", "/v1/users"), None);
}

#[test]
fn host_port_case_and_trailing_dot() {
    let r = build(vec![
        route(host("Api.Example.COM"), exact("/")),
        route(host("[::1]"), exact("/")),
        route(wild("*.Example.org."), exact("/")),
    ]);
    for h in [
        "api.example.com",
        "API.EXAMPLE.COM",
        "api.example.com:8443",
        "api.example.com.",
        "Api.Example.Com.:443",
    ] {
        assert_eq!(get(&r, h, "/"), Some(0), "host {h}");
    }
    assert_eq!(get(&r, "[::1]:8080", "/"), Some(1));
    assert_eq!(get(&r, "[::1]", "/"), Some(1));
    assert_eq!(get(&r, "WWW.example.ORG:80", "/"), Some(2));
    assert_eq!(get(&r, "api.example.com.evil", "/"), None);
}

#[test]
fn exact_then_template_then_prefix() {
    let r = build(vec![
        route(HostMatch::Any, prefix("/v1/items/")),
        route(HostMatch::Any, tmpl("/v1/items/{id}")),
        route(HostMatch::Any, exact("/v1/items/42")),
    ]);
    assert_eq!(get(&r, "h", "/v1/items/42"), Some(2));
    assert_eq!(get(&r, "h", "/v1/items/7"), Some(1));
    assert_eq!(get(&r, "h", "/v1/items/7/parts"), Some(0));
    assert_eq!(
        get(&r, "h", "/v1/items/"),
        Some(0),
        "a parameter is never empty"
    );
    assert_eq!(get(&r, "h", "/v1/items"), None);
}

#[test]
fn literal_segments_beat_parameters_from_the_left() {
    let r = build(vec![
        route(HostMatch::Any, tmpl("/v1/items/special")),
        route(HostMatch::Any, tmpl("/v1/items/{id}")),
        route(HostMatch::Any, tmpl("/v1/{x}/detail")),
        route(HostMatch::Any, tmpl("/v1/items/special/{y}")),
    ]);
    assert_eq!(get(&r, "h", "/v1/items/special"), Some(0));
    assert_eq!(get(&r, "h", "/v1/items/other"), Some(1));
    assert_eq!(
        get(&r, "h", "/v1/items/detail"),
        Some(1),
        "'items' beats {{x}}"
    );
    assert_eq!(get(&r, "h", "/v1/other/detail"), Some(2));
    assert_eq!(get(&r, "h", "/v1/items/special/z"), Some(3));
    assert_eq!(get(&r, "h", "/v1/items/x/detail"), None);

    let m = r
        .find("h", "/v1/other/detail", &Method::GET, &HeaderMap::new())
        .expect("match");
    assert_eq!(m.params.iter().collect::<Vec<_>>(), [("x", "other")]);
    assert_eq!(m.kind, MatchKind::Template);
    assert_eq!(m.prefix_len, 0);
}

#[test]
fn failed_literal_branch_backtracks_to_parameter() {
    let r = build(vec![
        route(HostMatch::Any, tmpl("/v1/items/special")),
        route(HostMatch::Any, tmpl("/v1/{x}/detail")),
    ]);
    let m = r
        .find("h", "/v1/items/detail", &Method::GET, &HeaderMap::new())
        .expect("match");
    assert_eq!(m.index, 1);
    assert_eq!(
        m.params.get("x"),
        Some("items"),
        "the failed branch left no capture behind"
    );
    assert_eq!(m.params.len(), 1);
}

#[test]
fn catch_all_templates() {
    let r = build(vec![
        route(HostMatch::Any, tmpl("/static/{*file}")),
        route(HostMatch::Any, tmpl("/static/{name}")),
        route(host("h2"), tmpl("/{rest...}")),
    ]);
    let params = |host: &str, path: &'static str| {
        let m = r.find(host, path, &Method::GET, &HeaderMap::new())?;
        Some((
            m.index,
            m.params
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>(),
        ))
    };
    assert_eq!(
        params("h", "/static/a"),
        Some((1, vec!["name=a".into()])),
        "a parameter beats a catch-all"
    );
    assert_eq!(
        params("h", "/static/a/b.css"),
        Some((0, vec!["file=a/b.css".into()]))
    );
    assert_eq!(params("h", "/static/"), Some((0, vec!["file=".into()])));
    assert_eq!(params("h", "/static"), None);
    assert_eq!(params("h2", "/"), Some((2, vec!["rest=".into()])));
    assert_eq!(params("h2", "/x/y/z"), Some((2, vec!["rest=x/y/z".into()])));
}

#[test]
fn prefix_with_and_without_trailing_slash() {
    let r = build(vec![
        route(HostMatch::Any, prefix("/v1/items")),
        route(HostMatch::Any, prefix("/v1/items/")),
        route(HostMatch::Any, prefix("/")),
    ]);
    let hit = |path: &str| {
        let m = r.find("h", path, &Method::GET, &HeaderMap::new())?;
        assert_eq!(m.kind, MatchKind::Prefix);
        Some((m.index, m.prefix_len))
    };
    assert_eq!(hit("/v1/items"), Some((0, 9)));
    assert_eq!(
        hit("/v1/itemsX"),
        Some((0, 9)),
        "plain string prefix, as in Envoy"
    );
    assert_eq!(hit("/v1/items/3"), Some((1, 10)));
    assert_eq!(hit("/v1/items/"), Some((1, 10)));
    assert_eq!(hit("/v1/item"), Some((2, 1)));
    assert_eq!(hit("/"), Some((2, 1)));
}

#[test]
fn method_predicates_and_fallback() {
    let r = build(vec![
        with_methods(route(HostMatch::Any, exact("/x")), &[Method::GET]),
        with_methods(route(HostMatch::Any, exact("/x")), &[Method::POST]),
        route(HostMatch::Any, exact("/x")),
        with_methods(route(HostMatch::Any, exact("/only-post")), &[Method::POST]),
        route(HostMatch::Any, tmpl("/{any}")),
    ]);
    assert_eq!(find(&r, "h", "/x", Method::GET, &[]), Some(0));
    assert_eq!(find(&r, "h", "/x", Method::POST, &[]), Some(1));
    assert_eq!(find(&r, "h", "/x", Method::PUT, &[]), Some(2));
    assert_eq!(find(&r, "h", "/only-post", Method::POST, &[]), Some(3));
    assert_eq!(
        find(&r, "h", "/only-post", Method::GET, &[]),
        Some(4),
        "next path kind"
    );
    let purge = Method::from_bytes(b"PURGE").expect("method");
    assert_eq!(find(&r, "h", "/x", purge, &[]), Some(2));
}

#[test]
fn header_predicates_and_fallback() {
    let r = build(vec![
        route(HostMatch::Any, prefix("/api/")),
        with_header(
            route(HostMatch::Any, prefix("/api/")),
            "x-canary",
            Some("1"),
        ),
        with_header(
            route(HostMatch::Any, prefix("/api/")),
            "x-canary",
            Some("2"),
        ),
        with_header(
            route(HostMatch::Any, prefix("/api/v2/")),
            "authorization",
            None,
        ),
    ]);
    assert_eq!(
        find(&r, "h", "/api/a", Method::GET, &[("x-canary", "1")]),
        Some(1)
    );
    assert_eq!(
        find(&r, "h", "/api/a", Method::GET, &[("x-canary", "2")]),
        Some(2)
    );
    assert_eq!(
        find(&r, "h", "/api/a", Method::GET, &[("x-canary", "3")]),
        Some(0)
    );
    assert_eq!(find(&r, "h", "/api/a", Method::GET, &[]), Some(0));
    assert_eq!(
        find(&r, "h", "/api/v2/a", Method::GET, &[("authorization", "x")]),
        Some(3)
    );
    // Presence predicate fails: the next longest prefix is tried.
    assert_eq!(
        find(&r, "h", "/api/v2/a", Method::GET, &[("x-canary", "1")]),
        Some(1)
    );
}

#[test]
fn predicates_failing_fall_through_host_tiers() {
    let r = build(vec![
        with_methods(route(host("api.example.com"), prefix("/")), &[Method::POST]),
        route(HostMatch::Any, prefix("/")),
    ]);
    assert_eq!(
        find(&r, "api.example.com", "/a", Method::POST, &[]),
        Some(0)
    );
    assert_eq!(find(&r, "api.example.com", "/a", Method::GET, &[]), Some(1));
}

#[test]
fn more_predicates_go_first_whatever_the_order() {
    let r = build(vec![
        route(HostMatch::Any, exact("/x")),
        with_methods(route(HostMatch::Any, exact("/x")), &[Method::GET]),
        with_header(
            with_methods(route(HostMatch::Any, exact("/x")), &[Method::GET]),
            "x-beta",
            None,
        ),
    ]);
    assert_eq!(
        find(&r, "h", "/x", Method::GET, &[("x-beta", "1")]),
        Some(2)
    );
    assert_eq!(find(&r, "h", "/x", Method::GET, &[]), Some(1));
    assert_eq!(
        find(&r, "h", "/x", Method::DELETE, &[("x-beta", "1")]),
        Some(0)
    );
}

#[test]
fn many_parameters_spill_without_loss() {
    let r = build(vec![route(
        HostMatch::Any,
        tmpl("/{a}/{b}/{c}/{d}/{e}/{f}"),
    )]);
    let m = r
        .find("h", "/1/2/3/4/5/6", &Method::GET, &HeaderMap::new())
        .expect("match");
    let got: Vec<_> = m.params.iter().collect();
    assert_eq!(
        got,
        [
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
            ("d", "4"),
            ("e", "5"),
            ("f", "6")
        ]
    );
}

#[test]
fn accessors() {
    let r = build(vec![route(HostMatch::Any, exact("/"))]);
    assert_eq!(
        (r.len(), r.is_empty(), r.get(0), r.get(1)),
        (1, false, Some(&0), None)
    );
    let empty = build(Vec::new());
    assert!(empty.is_empty());
    assert_eq!(get(&empty, "h", "/"), None);
}

#[test]
fn ten_thousand_routes() {
    let mut specs = Vec::new();
    for i in 0..2500 {
        specs.push(route(
            host(&format!("svc{}.example.com", i % 10)),
            exact(&format!("/svc{i}/health")),
        ));
        specs.push(route(
            HostMatch::Any,
            tmpl(&format!("/svc{i}/items/{{id}}")),
        ));
        specs.push(route(
            wild(".example.com"),
            prefix(&format!("/svc{i}/static/")),
        ));
        specs.push(with_methods(
            route(HostMatch::Any, prefix(&format!("/svc{i}/"))),
            &[Method::POST],
        ));
    }
    let r = build(specs);
    assert_eq!(
        get(&r, "svc3.example.com", "/svc1233/health"),
        Some(4 * 1233)
    );
    assert_eq!(get(&r, "svc4.example.com", "/svc1233/health"), None);
    assert_eq!(get(&r, "x", "/svc77/items/5"), Some(4 * 77 + 1));
    assert_eq!(
        get(&r, "a.example.com", "/svc9/static/a.css"),
        Some(4 * 9 + 2)
    );
    assert_eq!(
        find(&r, "x", "/svc9/static/a.css", Method::POST, &[]),
        Some(4 * 9 + 3)
    );
}

fn arb_method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        "[A-Z]{1,8}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap_or(Method::GET)),
    ]
}

proptest! {
    #[test]
    fn find_never_panics(
        raw_host in any::<String>(),
        path in prop_oneof![any::<String>(), "(/[a-z{}*.]{0,3}){0,6}/?"],
        method in arb_method(),
    ) {
        let r = build(vec![
            route(HostMatch::Any, prefix("/")),
            route(host("api.example.com"), tmpl("/v1/{a}/x/{*rest}")),
            route(wild(".example.com"), tmpl("/{a}/{b}")),
            with_methods(route(HostMatch::Any, exact("/a")), &[Method::GET]),
            route(HostMatch::Any, tmpl("/a/{b}/c")),
            route(HostMatch::Any, tmpl("/a/b/{c}")),
        ]);
        let _ = r.find(&raw_host, &path, &method, &HeaderMap::new());
        if let Ok(n) = crate::normalize_path(&path) {
            // With the catch-all, every normalized path finds a route.
            prop_assert!(r.find(&raw_host, &n.path, &method, &HeaderMap::new()).is_some());
        }
    }
}
