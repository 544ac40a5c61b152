//! `${VAR}` interpolation through the whole pipeline, and redaction.

use std::path::Path;

use super::{ok, MINIMAL};
use crate::parse_with_env;

fn env(name: &str) -> Option<String> {
    match name {
        "TOKEN" => Some("Bearer s3cret".into()),
        "PORT" => Some("9000".into()),
        "TIMEOUT" => Some("nonsense".into()),
        _ => None,
    }
}

fn parse(src: &str) -> Result<crate::Config, crate::ConfigErrors> {
    parse_with_env(src, Path::new("/"), &env)
}

const WITH_ENV: &str = "\
listeners:
  - name: main
    listen: 127.0.0.1:8080
routes:
  - name: all
    cluster: backend
    request_headers: { set: { Authorization: \"${TOKEN}\", x-cost: \"$$5\" } }
    response_headers: { set: { x-env: \"${STAGE:-dev}\" } }
clusters:
  - name: backend
    endpoints: [\"127.0.0.1:${PORT}\", { address: \"127.0.0.1:${PORT}\", weight: 2 }]
";

#[test]
fn values_come_from_the_environment() {
    let c = parse(WITH_ENV).unwrap();
    let set = &c.routes[0].request_headers.set;
    assert_eq!(set[0], ("authorization".into(), "Bearer s3cret".into()));
    assert_eq!(set[1], ("x-cost".into(), "$5".into()));
    assert_eq!(c.routes[0].response_headers.set[0].1, "dev");
    assert_eq!(c.clusters[0].endpoints[0].port, 9000);
    assert_eq!(
        c.secret_paths,
        vec![
            "routes[0].request_headers.set.Authorization",
            "clusters[0].endpoints[0]",
            "clusters[0].endpoints[1].address",
        ]
    );
}

#[test]
fn effective_json_redacts_secrets() {
    let c = parse(WITH_ENV).unwrap();
    let v = c.effective_json();
    let text = v.to_string();
    assert!(!text.contains("s3cret"), "{text}");
    assert!(!text.contains("9000"), "{text}");
    assert_eq!(
        v["routes"][0]["request_headers"]["set"]["authorization"],
        "<redacted>"
    );
    assert_eq!(v["routes"][0]["request_headers"]["set"]["x-cost"], "$5");
    assert_eq!(v["routes"][0]["response_headers"]["set"]["x-env"], "dev");
    assert_eq!(v["clusters"][0]["endpoints"][0], "<redacted>");
    assert_eq!(v["clusters"][0]["endpoints"][1]["address"], "<redacted>");
    assert_eq!(v["clusters"][0]["endpoints"][1]["weight"], 2);
}

#[test]
fn unset_variable_is_an_error_at_its_scalar() {
    let src = MINIMAL.replace("127.0.0.1:9000", "\"${BACKEND_ADDR}\"");
    let e = parse(&src).err().unwrap();
    assert_eq!(e.len(), 1, "{e}");
    assert_eq!(e.0[0].path, "clusters[0].endpoints[0]");
    assert_eq!((e.0[0].line, e.0[0].column), (9, 17));
    assert!(e.0[0].message.contains("`BACKEND_ADDR` is not set"));
}

#[test]
fn secret_values_are_not_quoted_in_errors() {
    let src = MINIMAL.replace(
        "    cluster: backend\n",
        "    cluster: backend\n    timeout: ${TIMEOUT}\n",
    );
    let e = parse(&src).err().unwrap();
    assert!(!e.to_string().contains("nonsense"), "{e}");
    assert!(e.to_string().contains("invalid duration <redacted>"), "{e}");
}

#[test]
fn keys_are_not_interpolated() {
    let src = MINIMAL.replace(
        "    cluster: backend\n",
        "    cluster: backend\n    request_headers: { set: { \"x-${TOKEN}\": a } }\n",
    );
    let e = parse(&src).err().unwrap();
    assert!(
        e.to_string().contains("invalid header name \"x-${TOKEN}\""),
        "{e}"
    );
}

#[test]
fn process_environment_is_used_by_parse_str() {
    // A name no other test uses, so setting it cannot disturb them.
    std::env::set_var("SEKISHO_CONFIG_TEST_PORT", "9123");
    let src = MINIMAL.replace(
        "127.0.0.1:9000",
        "\"127.0.0.1:${SEKISHO_CONFIG_TEST_PORT}\"",
    );
    let c = crate::parse_str(&src, Path::new("/")).unwrap();
    assert_eq!(c.clusters[0].endpoints[0].port, 9123);
    assert_eq!(ok(MINIMAL).secret_paths.len(), 0);
}
