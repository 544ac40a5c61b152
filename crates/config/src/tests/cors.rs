//! `routes[i].cors`: origins, defaults that fit the route, errors with path and line.

use std::time::Duration;

use super::{ok, one_error, MINIMAL};
use crate::OriginPattern;

fn with_route_keys(extra: &str) -> String {
    MINIMAL.replace(
        "    cluster: backend\n",
        &format!("    cluster: backend\n{extra}"),
    )
}

#[test]
fn cors_decodes_with_defaults() {
    let c = ok(&with_route_keys(
        "    cors: { allow_origins: [\"https://app.example.com\", \"https://*.example.org\"] }\n",
    ));
    let cors = c.routes[0].cors.as_ref().unwrap();
    assert_eq!(
        cors.allow_origins[0],
        OriginPattern::Exact("https://app.example.com".into())
    );
    assert!(cors.allow_origins[1].matches("https://a.example.org"));
    assert_eq!(
        cors.allow_methods,
        ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    );
    assert_eq!(cors.allow_headers, ["content-type"]);
    assert!(cors.expose_headers.is_empty());
    assert_eq!((cors.max_age, cors.allow_credentials), (None, false));

    let c = ok(&with_route_keys(
        "    cors:\n      allow_origins: [\"*\"]\n      allow_methods: [get, POST]\n      allow_headers: [X-Token]\n      expose_headers: [X-Total]\n      max_age: 10m\n",
    ));
    let cors = c.routes[0].cors.as_ref().unwrap();
    assert_eq!(cors.allow_methods, ["GET", "POST"]);
    assert_eq!(cors.allow_headers, ["x-token"]);
    assert_eq!(cors.expose_headers, ["x-total"]);
    assert_eq!(cors.max_age, Some(Duration::from_secs(600)));
    let json = c.effective_json();
    assert_eq!(json["routes"][0]["cors"]["max_age"], "10m");
    assert_eq!(json["routes"][0]["cors"]["allow_origins"][0], "*");
}

#[test]
fn cors_errors_name_their_place() {
    one_error(
        &with_route_keys("    cors: { allow_methods: [GET] }\n"),
        "routes[0].cors",
        7,
        "allow_origins",
    );
    one_error(
        &with_route_keys("    cors: { allow_origins: [] }\n"),
        "routes[0].cors.allow_origins",
        7,
        "at least one origin",
    );
    one_error(
        &with_route_keys("    cors:\n      allow_origins:\n        - https://ok.example.com\n        - app.example.com\n"),
        "routes[0].cors.allow_origins[1]",
        10,
        "no scheme",
    );
    one_error(
        &with_route_keys("    cors: { allow_origins: [\"https://a.example.com/app\"] }\n"),
        "routes[0].cors.allow_origins[0]",
        7,
        "no path",
    );
    one_error(
        &with_route_keys("    cors: { allow_origins: [\"*\"], allow_credentials: true }\n"),
        "routes[0].cors.allow_origins",
        7,
        "allow_credentials",
    );
    one_error(
        &with_route_keys("    cors: { allow_origins: [\"*\"], allow_headers: [\"bad header\"] }\n"),
        "routes[0].cors.allow_headers[0]",
        7,
        "invalid header name",
    );
    one_error(
        &with_route_keys("    cors: { allow_origins: [\"*\"], max_age: soon }\n"),
        "routes[0].cors.max_age",
        7,
        "",
    );
    one_error(
        &with_route_keys("    cors: { allow_origins: [\"*\"], allow: [GET] }\n"),
        "routes[0].cors.allow",
        7,
        "",
    );
}
