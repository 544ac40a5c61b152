//! Strict decoding errors, many errors at once, syntax errors, files.

use super::{errs, ok, one_error, MINIMAL};

#[test]
fn unknown_keys_suggest_the_close_one() {
    let src = MINIMAL.replace(
        "    cluster: backend\n",
        "    cluster: backend\n    match: { path_prefx: /a }\n",
    );
    one_error(
        &src,
        "routes[0].match.path_prefx",
        7,
        "unknown key `path_prefx` (did you mean `path_prefix`?)",
    );
    let src = MINIMAL.replace(
        "    cluster: backend\n",
        "    cluster: backend\n    frobnicate: { attempts: 2 }\n",
    );
    one_error(
        &src,
        "routes[0].frobnicate",
        7,
        "unknown key `frobnicate` (expected one of: name, match,",
    );
    one_error(
        &format!("{MINIMAL}lisener: x\n"),
        "lisener",
        10,
        "did you mean `listeners`?",
    );
}

#[test]
fn unknown_key_column_points_at_the_key() {
    let e = errs(&format!("{MINIMAL}bogus: 1\n"));
    assert_eq!((e.0[0].line, e.0[0].column), (10, 1));
}

#[test]
fn duplicate_keys() {
    let src = MINIMAL.replace(
        "    listen: 127.0.0.1:8080\n",
        "    listen: 127.0.0.1:8080\n    name: again\n",
    );
    one_error(
        &src,
        "listeners[0].name",
        4,
        "duplicate key `name` (first at line 2)",
    );
}

#[test]
fn wrong_types_and_missing_keys() {
    one_error(
        "listeners: { name: a }\n",
        "listeners",
        1,
        "expected a sequence, found a mapping",
    );
    one_error(
        "listeners:\n  - name: [a]\n    listen: 127.0.0.1:1\n",
        "listeners[0].name",
        2,
        "expected a string, found a sequence",
    );
    one_error(
        "listeners:\n  - name: a\n",
        "listeners[0]",
        2,
        "missing required key `listen`",
    );
    one_error(
        "listeners:\n  - name: a\n    listen: ~\n",
        "listeners[0]",
        2,
        "missing required key `listen`",
    );
    one_error(
        "listeners:\n  - name: a\n    listen: 127.0.0.1:1\n    limits: { max_connections: lots }\n",
        "listeners[0].limits.max_connections",
        4,
        "expected a non-negative integer, found \"lots\"",
    );
    one_error("- a\n", "", 1, "expected a mapping, found a sequence");
}

#[test]
fn durations_and_sizes_report_the_accepted_forms() {
    let src = MINIMAL.replace(
        "    cluster: backend\n",
        "    cluster: backend\n    timeout: 3x\n",
    );
    let e = errs(&src);
    assert_eq!(
        e.to_string(),
        "routes[0].timeout: line 7, column 14: invalid duration \"3x\" (expected e.g. 250ms, 3s, 1m30s)"
    );
    let src = MINIMAL.replace(
        "    cluster: backend\n",
        "    cluster: backend\n    buffer_request: { max_bytes: 1 MiBs }\n",
    );
    one_error(
        &src,
        "routes[0].buffer_request.max_bytes",
        7,
        "64KiB, 1MiB, 1GiB (1024-based), or 1KB",
    );
    let src = MINIMAL.replace(
        "    cluster: backend\n",
        "    cluster: backend\n    buffer_request: { max_bytes: 4096 }\n",
    );
    assert_eq!(
        ok(&src).routes[0]
            .buffer_request
            .as_ref()
            .map(|b| b.max_bytes),
        Some(4096)
    );
}

#[test]
fn many_errors_at_once_in_source_order() {
    let src = "\
listeners:
  - name: a
    listen: nope
routes:
  - name: r
    cluster: missing
    timeout: soon
    match: { host: \"a:1\", methodz: [GET] }
clusters:
  - name: c
    endpoints: [bad]
    lb: fastest
";
    let e = errs(src);
    let lines: Vec<usize> = e.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 6, 7, 8, 8, 11, 12], "{e}");
    let text = e.to_string();
    assert_eq!(text.lines().count(), 7);
    assert!(
        text.contains("routes[0].cluster: line 6, column 14: unknown cluster `missing`"),
        "{text}"
    );
}

#[test]
fn yaml_syntax_error_position() {
    let src = "listeners:\n  - name: a\n    listen: [127.0.0.1:1\nroutes: []\n";
    let e = errs(src);
    assert_eq!(e.len(), 1, "{e}");
    assert!(e.0[0].message.starts_with("YAML syntax error"), "{e}");
    assert_eq!(e.0[0].line, 4, "{e}");
    let e = errs("listeners:\n  - name: a\n   listen: x\n");
    assert!(e.0[0].message.starts_with("YAML syntax error"), "{e}");
    assert_eq!((e.0[0].line, e.0[0].column), (3, 4), "{e}");
}

#[test]
fn unreadable_file_is_one_error_without_position() {
    let e = crate::load_file(std::path::Path::new("/nonexistent/sekisho.yaml"))
        .err()
        .unwrap();
    assert_eq!(e.len(), 1);
    assert_eq!(e.0[0].line, 0);
    assert!(e
        .to_string()
        .starts_with("cannot read config file /nonexistent/sekisho.yaml"));
}

#[test]
fn load_file_resolves_paths_next_to_the_file() {
    let dir = std::env::temp_dir().join(format!("sekisho-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gw.yaml");
    let src = MINIMAL.replace(
        "    listen: 127.0.0.1:8080\n",
        "    listen: 127.0.0.1:8080\n    tls: { certs: [{ cert: c.pem, key: /abs/k.pem }] }\n",
    );
    std::fs::write(&file, src).unwrap();
    let c = crate::load_file(&file).unwrap();
    let certs = &c.listeners[0].tls.as_ref().unwrap().certs;
    assert_eq!(certs[0].cert, dir.join("c.pem"));
    assert_eq!(certs[0].key, std::path::PathBuf::from("/abs/k.pem"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn config_error_at_location() {
    let c = ok(MINIMAL);
    let e = crate::ConfigError::at(&c.clusters[0].at, "cannot resolve");
    assert_eq!(
        e.to_string(),
        "clusters[0]: line 8, column 5: cannot resolve"
    );
}
