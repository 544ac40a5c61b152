//! Each validation rule: its message, path and line.

use super::{errs, ok, one_error, MINIMAL};

/// One listener on line 2; routes start on line 4 and clusters follow them.
fn cfg(routes: &str, clusters: &str) -> String {
    format!(
        "listeners:\n  - {{ name: main, listen: 127.0.0.1:8080 }}\nroutes:\n{routes}clusters:\n{clusters}"
    )
}

const BACKEND: &str = "  - { name: backend, endpoints: [127.0.0.1:9000] }\n";

#[test]
fn at_least_one_listener() {
    one_error("listeners: []\n", "listeners", 1, "at least one listener");
    one_error("routes: []\n", "", 1, "missing required key `listeners`");
    one_error("# empty\n", "", 1, "missing required key `listeners`");
}

#[test]
fn duplicate_names_point_at_the_second() {
    let src = "listeners:\n  - { name: a, listen: 127.0.0.1:8080 }\n  - { name: a, listen: 127.0.0.1:8081 }\n";
    one_error(
        src,
        "listeners[1].name",
        3,
        "duplicate listener name `a` (first at listeners[0].name line 2)",
    );
    let routes = "  - { name: r, cluster: backend }\n  - { name: r, match: { path: /x }, cluster: backend }\n";
    one_error(
        &cfg(routes, BACKEND),
        "routes[1].name",
        5,
        "duplicate route name `r`",
    );
    let clusters = format!("{BACKEND}{BACKEND}");
    let routes = "  - { name: r, cluster: backend }\n";
    one_error(
        &cfg(routes, &clusters),
        "clusters[1].name",
        7,
        "duplicate cluster name `backend` (first at clusters[0].name line 6)",
    );
}

#[test]
fn duplicate_listen_addresses() {
    let src =
        "admin: { listen: 127.0.0.1:9901 }\nlisteners:\n  - name: a\n    listen: 127.0.0.1:9901\n";
    one_error(
        src,
        "listeners[0].listen",
        4,
        "duplicate listen address 127.0.0.1:9901 (first at admin.listen line 1)",
    );
    // Port 0 picks a free port each time: never a clash.
    ok("listeners:\n  - { name: a, listen: 127.0.0.1:0 }\n  - { name: b, listen: 127.0.0.1:0 }\n");
}

#[test]
fn exactly_one_action() {
    one_error(
        &cfg("  - name: r\n    match: { path: /x }\n", BACKEND),
        "routes[0]",
        4,
        "needs one of `cluster`, `split`, `direct_response` or `redirect`",
    );
    one_error(
        &cfg(
            "  - name: r\n    cluster: backend\n    redirect: { location: /y }\n",
            BACKEND,
        ),
        "routes[0].redirect",
        6,
        "`redirect` conflicts with `cluster` (line 5)",
    );
    one_error(
        &cfg(
            "  - name: r\n    cluster: backend\n    split_header: x-c\n",
            BACKEND,
        ),
        "routes[0].split_header",
        6,
        "only applies to a route with `split`",
    );
}

#[test]
fn referenced_clusters_exist() {
    one_error(
        &cfg("  - name: r\n    cluster: backnd\n", BACKEND),
        "routes[0].cluster",
        5,
        "unknown cluster `backnd` (did you mean `backend`?)",
    );
    one_error(
        &cfg(
            "  - name: r\n    split:\n      - { cluster: backend, weight: 1 }\n      - { cluster: zzz, weight: 1 }\n",
            BACKEND,
        ),
        "routes[0].split[1].cluster",
        7,
        "unknown cluster `zzz`",
    );
}

#[test]
fn split_rules() {
    one_error(
        &cfg(
            "  - name: r\n    split: [{ cluster: backend, weight: 0 }]\n",
            BACKEND,
        ),
        "routes[0].split",
        5,
        "all split weights are 0",
    );
    one_error(
        &cfg("  - name: r\n    split: []\n", BACKEND),
        "routes[0].split",
        5,
        "at least one target",
    );
    one_error(
        &cfg("  - name: r\n    split: [{ cluster: backend }]\n", BACKEND),
        "routes[0].split[0]",
        5,
        "missing required key `weight`",
    );
}

#[test]
fn rewrite_needs_a_prefix_match() {
    one_error(
        &cfg("  - name: r\n    match: { path: /a }\n    cluster: backend\n    rewrite: { prefix: /b }\n", BACKEND),
        "routes[0].rewrite.prefix",
        7,
        "needs the route to match with `path_prefix`",
    );
}

#[test]
fn statuses() {
    one_error(
        &cfg(
            "  - name: r\n    redirect: { location: /x, status: 300 }\n",
            BACKEND,
        ),
        "routes[0].redirect.status",
        5,
        "redirect status 300 is not one of 301, 302, 303, 307, 308",
    );
    one_error(
        &cfg(
            "  - name: r\n    direct_response: { status: 600 }\n",
            BACKEND,
        ),
        "routes[0].direct_response.status",
        5,
        "status 600 is not between 100 and 599",
    );
    one_error(
        &cfg("  - name: r\n    direct_response: { body: x }\n", BACKEND),
        "routes[0].direct_response",
        5,
        "missing required key `status`",
    );
}

#[test]
fn match_syntax() {
    let route = |m: &str| {
        cfg(
            &format!("  - name: r\n    match: {m}\n    cluster: backend\n"),
            BACKEND,
        )
    };
    one_error(
        &route("{ methods: [GET, \"PO ST\"] }"),
        "routes[0].match.methods[1]",
        5,
        "invalid HTTP method \"PO ST\"",
    );
    one_error(
        &route("{ host: \"api.example.com:443\" }"),
        "routes[0].match.host",
        5,
        "without a port",
    );
    one_error(
        &route("{ host: \"a.*.com\" }"),
        "routes[0].match.host",
        5,
        "invalid host",
    );
    one_error(
        &route("{ path_prefix: v1/ }"),
        "routes[0].match.path_prefix",
        5,
        "must start with `/`",
    );
    one_error(
        &route("{ path_template: \"/a/x{id}\" }"),
        "routes[0].match.path_template",
        5,
        "a parameter must be a whole segment",
    );
    one_error(
        &route("{ path_template: \"/a/{id}/{id}\" }"),
        "routes[0].match.path_template",
        5,
        "parameter `id` appears twice",
    );
    one_error(
        &route("{ path_template: \"/a/{*rest}/b\" }"),
        "routes[0].match.path_template",
        5,
        "must be the last segment",
    );
    one_error(
        &route("{ path: /a, path_prefix: /b }"),
        "routes[0].match.path_prefix",
        5,
        "`path_prefix` conflicts with `path`",
    );
    one_error(
        &route("{ headers: [{ name: \"x y\" }] }"),
        "routes[0].match.headers[0].name",
        5,
        "invalid header name",
    );
    one_error(
        &route("{ headers: [{ name: x, present: false }] }"),
        "routes[0].match.headers[0].present",
        5,
        "not supported",
    );
    let c = ok(&route(
        "{ host: API.Example.COM, methods: [get], headers: [{ name: X-A, present: true }] }",
    ));
    assert_eq!(c.routes[0].matcher.host.as_deref(), Some("api.example.com"));
    assert_eq!(c.routes[0].matcher.methods, vec!["GET"]);
    assert_eq!(c.routes[0].matcher.headers[0].name, "x-a");
}

#[test]
fn header_ops_syntax() {
    one_error(
        &cfg("  - name: r\n    cluster: backend\n    request_headers: { set: { \"bad name\": x } }\n", BACKEND),
        "routes[0].request_headers.set.bad name",
        6,
        "invalid header name",
    );
    one_error(
        &cfg(
            "  - name: r\n    cluster: backend\n    response_headers: { remove: [\"a:b\"] }\n",
            BACKEND,
        ),
        "routes[0].response_headers.remove[0]",
        6,
        "invalid header name",
    );
}

#[test]
fn endpoints() {
    let with = |e: &str| {
        cfg(
            "  - { name: r, cluster: c }\n",
            &format!("  - name: c\n    endpoints: [{e}]\n"),
        )
    };
    one_error(
        &with("localhost"),
        "clusters[0].endpoints[0]",
        7,
        "invalid endpoint \"localhost\"",
    );
    one_error(
        &with("\"::1:80\""),
        "clusters[0].endpoints[0]",
        7,
        "IPv6 address in brackets",
    );
    one_error(
        &with("{ address: 127.0.0.1:1, weight: 0 }"),
        "clusters[0].endpoints[0].weight",
        7,
        "must be at least 1",
    );
    one_error(
        &with("127.0.0.1:70000"),
        "clusters[0].endpoints[0]",
        7,
        "invalid endpoint",
    );
    one_error(
        &cfg(
            "  - { name: r, cluster: c }\n",
            "  - name: c\n    endpoints: []\n",
        ),
        "clusters[0].endpoints",
        7,
        "at least one endpoint",
    );
}

#[test]
fn cluster_rules() {
    let with = |extra: &str| {
        cfg(
            "  - { name: r, cluster: c }\n",
            &format!("  - name: c\n    endpoints: [127.0.0.1:1]\n{extra}"),
        )
    };
    one_error(
        &with("    protocol: h2\n"),
        "clusters[0].protocol",
        8,
        "protocol `h2` requires `tls`",
    );
    one_error(
        &with("    protocol: auto\n"),
        "clusters[0].protocol",
        8,
        "protocol `auto` requires `tls`",
    );
    ok(&with("    protocol: h2\n    tls: {}\n"));
    one_error(
        &with("    protocol: h3\n"),
        "clusters[0].protocol",
        8,
        "invalid protocol \"h3\" (expected one of: http1, h2, h2c, auto)",
    );
    one_error(
        &with("    pool: { max_connections: 0 }\n"),
        "clusters[0].pool.max_connections",
        8,
        "must be at least 1",
    );
    one_error(
        &with("    pool: { max_pending: 0 }\n"),
        "clusters[0].pool.max_pending",
        8,
        "must be at least 1",
    );
    one_error(
        &with("    tls: { cert: a.pem }\n"),
        "clusters[0].tls",
        8,
        "missing `key`",
    );
}

#[test]
fn listener_rules() {
    one_error(
        "listeners:\n  - name: a\n    listen: 127.0.0.1:1\n    tls: { certs: [] }\n",
        "listeners[0].tls.certs",
        4,
        "at least one certificate",
    );
    one_error(
        "listeners:\n  - name: a\n    listen: localhost:80\n",
        "listeners[0].listen",
        3,
        "invalid address \"localhost:80\" (expected ip:port",
    );
    one_error(
        "listeners:\n  - name: a\n    listen: 127.0.0.1:1\n    limits: { max_connections: 0 }\n",
        "listeners[0].limits.max_connections",
        4,
        "must be at least 1",
    );
}

#[test]
fn dns_ttls_ordered() {
    one_error(
        "dns: { min_ttl: 10m, max_ttl: 1m }\nlisteners: [{ name: a, listen: 127.0.0.1:1 }]\n",
        "dns.min_ttl",
        1,
        "min_ttl (10m) is greater than max_ttl (1m)",
    );
}

#[test]
fn conflicting_matches() {
    let routes = "  - name: b\n    match: { host: API.x.com, path_template: \"/i/{id}\" }\n    cluster: backend\n  - name: other\n    cluster: backend\n  - name: a\n    match: { host: api.x.com, path_template: \"/i/{item}\" }\n    cluster: backend\n";
    one_error(
        &cfg(routes, BACKEND),
        "routes[2].match",
        10,
        "conflicting matches: routes[2] \"a\" and routes[0] \"b\" match the same requests",
    );
    // Two routes without a match: both take every request.
    let e = errs(&cfg(
        "  - { name: x, cluster: backend }\n  - { name: y, cluster: backend }\n",
        BACKEND,
    ));
    assert!(e.0[0].message.contains("conflicting matches"), "{e}");
    // Overlapping methods conflict; disjoint ones do not.
    let two = |m1: &str, m2: &str| {
        cfg(
            &format!("  - {{ name: x, match: {m1}, cluster: backend }}\n  - {{ name: y, match: {m2}, cluster: backend }}\n"),
            BACKEND,
        )
    };
    assert!(
        errs(&two("{ methods: [GET, PUT] }", "{ methods: [put] }")).0[0]
            .message
            .contains("conflicting")
    );
    ok(&two("{ methods: [GET] }", "{ methods: [POST] }"));
    ok(&two(
        "{ headers: [{ name: x, value: a }] }",
        "{ headers: [{ name: x, value: b }] }",
    ));
    assert!(errs(&two(
        "{ headers: [{ name: x, value: a }] }",
        "{ methods: [GET] }"
    ))
    .0[0]
        .message
        .contains("conflicting"));
    // Predicates against none is precedence, not a conflict.
    ok(&two("{ methods: [GET] }", "{ path_prefix: / }"));
    // Different kinds of path match, or different hosts, are ordered by precedence.
    ok(&two("{ path: /a }", "{ path_prefix: /a }"));
    ok(&two("{ host: a.com }", "{ host: \"*.a.com\" }"));
}

#[test]
fn system_roots_and_ca_exclude_each_other() {
    let src = MINIMAL.replace(
        "    endpoints: [127.0.0.1:9000]\n",
        "    endpoints: [127.0.0.1:9000]\n    tls: { ca: ca.pem, system_roots: true }\n",
    );
    one_error(
        &src,
        "clusters[0].tls.system_roots",
        10,
        "use one of the two",
    );
    let src = MINIMAL.replace(
        "    endpoints: [127.0.0.1:9000]\n",
        "    tls: { system_roots: true, extra_ca: internal.pem }\n    endpoints: [127.0.0.1:9000]\n",
    );
    let c = ok(&src);
    let t = c.clusters[0].tls.as_ref().unwrap();
    assert!(t.system_roots && t.extra_ca.is_some());
}
