//! The command line: `validate` reports every error with its YAML path and line, `serve`
//! refuses a bad config, `schema` prints JSON Schema, `--version` and `--help` work.

use std::process::Command;

use sekisho_test_support::write_temp;

fn sekisho(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .args(args)
        .output()
        .expect("run sekisho");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_reports_every_error_with_path_and_line() {
    let bad = r#"listeners:
  - name: public
    listen: 127.0.0.1:8080
routes:
  - name: a
    match: { path_prefix: /a/ }
    cluster: missing
  - name: b
    match: { path_prefix: /b/ }
    cluster: svc
    timeout: 3x
  - name: c
    match: { path_prefx: /c/ }
    cluster: svc
  - name: d
    match: { path_prefix: /b/ }
    cluster: svc
clusters:
  - name: svc
    endpoints: ["127.0.0.1:9"]
"#;
    let (_dir, path) = write_temp("bad.yaml", bad);
    let (code, _out, err) = sekisho(&["validate", "-c", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let expect = [
        ("routes[0].cluster", "line 7"),
        ("routes[1].timeout", "line 11"),
        ("routes[2].match.path_prefx", "line 13"),
        ("routes[3].match", "line 16"),
    ];
    for (path_part, line_part) in expect {
        assert!(
            err.lines()
                .any(|l| l.contains(path_part) && l.contains(line_part)),
            "expected an error at {path_part} ({line_part}) in:\n{err}"
        );
    }
    assert!(err.contains("did you mean"), "{err}");
    assert!(err.contains("conflicting matches"), "{err}");

    let (code, _, err) = sekisho(&["serve", "-c", path.to_str().unwrap()]);
    assert_eq!(code, 1, "serve refuses an invalid config: {err}");
}

#[test]
fn validate_reports_yaml_syntax_and_missing_files() {
    let (_d1, p1) = write_temp(
        "syntax.yaml",
        "listeners:\n  - name: x\n    listen: [unclosed\n",
    );
    let (code, _, err) = sekisho(&["validate", "-c", p1.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("line"), "{err}");

    let tls = r#"listeners:
  - name: public
    listen: 127.0.0.1:8443
    tls: { certs: [{ cert: nope.pem, key: nope.key }] }
routes: [{ name: r, match: { path_prefix: / }, direct_response: { status: 204 } }]
"#;
    let (_d2, p2) = write_temp("tls.yaml", tls);
    let (code, _, err) = sekisho(&["validate", "-c", p2.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("nope.pem") && err.contains("line 4"), "{err}");

    let (code, _, err) = sekisho(&["validate", "-c", "/nonexistent/sekisho.yaml"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/sekisho.yaml"), "{err}");
}

#[test]
fn valid_example_config_and_schema_and_version() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sekisho.yaml");
    let (code, out, err) = sekisho(&["validate", "-c", root.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");

    let (code, out, _) = sekisho(&["schema"]);
    assert_eq!(code, 0);
    let schema: serde_json::Value = serde_json::from_str(&out).expect("schema is JSON");
    assert!(schema["properties"]["routes"].is_object());

    let (code, out, _) = sekisho(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("sekisho "));
    let (code, out, _) = sekisho(&["demo", "--print-config"]);
    assert_eq!(code, 0);
    assert!(out.contains("monolith"));
}
