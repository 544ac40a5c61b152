use super::*;
use proptest::prelude::*;

fn ok(raw: &str) -> (String, bool) {
    match normalize_path(raw) {
        Ok(n) => (n.path.into_owned(), n.encoded_separator),
        Err(e) => panic!("{raw:?} refused: {e}"),
    }
}

fn err(raw: &str) -> PathError {
    match normalize_path(raw) {
        Ok(n) => panic!("{raw:?} accepted as {:?}", n.path),
        Err(e) => e,
    }
}

#[test]
fn already_normal_paths_are_borrowed() {
    for raw in [
        "/",
        "/a",
        "/a/",
        "/v1/items/42",
        "/.well-known/acme",
        "/...",
        "/..a/.b",
        "/ü/日本",
        "/a%25b",
        "/a%2Fb",
        "/admin;/",
        "/ADMIN",
    ] {
        let n = normalize_path(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        assert!(matches!(n.path, Cow::Borrowed(_)), "{raw} allocated");
        assert_eq!(n.path, raw);
    }
}

#[test]
fn bypass_attempts() {
    // (input, expected path, encoded separator)
    let table = [
        ("/admin/..%2f", "/admin/..%2F", true),
        ("//admin", "/admin", false),
        ("/%2e%2e/admin", "/admin", false),
        ("/x/%2E%2E/admin", "/admin", false),
        ("/public/../admin", "/admin", false),
        ("/admin;/", "/admin;/", false),
        ("/./admin", "/admin", false),
        ("/ADMIN", "/ADMIN", false),
        ("/x/..%5Cadmin", "/x/..%5Cadmin", true),
        ("/x/%2e/admin", "/x/admin", false),
        ("/x/.%2E/admin", "/admin", false),
        ("/x//..//admin", "/admin", false),
        ("/../../admin", "/admin", false),
    ];
    for (raw, want, sep) in table {
        assert_eq!(ok(raw), (want.to_owned(), sep), "input {raw}");
    }
}

#[test]
fn dot_segments_with_parameters_are_refused() {
    for raw in [
        "/..;/admin",
        "/x/..;/admin",
        "/.;/admin",
        "/..;foo/admin",
        "/%2e%2e;/admin",
        "/%2E.;x",
        "/x/..%3B/admin",
        "/x/..%3b/admin",
        "/x/.;",
    ] {
        assert_eq!(err(raw), PathError::DotSegmentParams, "input {raw}");
    }
}

#[test]
fn other_errors() {
    assert_eq!(err(""), PathError::NotAbsolute);
    assert_eq!(err("*"), PathError::NotAbsolute);
    assert_eq!(err("admin"), PathError::NotAbsolute);
    assert_eq!(err("http://x/a"), PathError::NotAbsolute);
    assert_eq!(err("/a%00b"), PathError::EncodedControl);
    assert_eq!(err("/a%0a"), PathError::EncodedControl);
    assert_eq!(err("/a%7F"), PathError::EncodedControl);
    assert_eq!(err("/a\nb"), PathError::ControlByte);
    assert_eq!(err("/a\0"), PathError::ControlByte);
    assert_eq!(err("/a\x7f"), PathError::ControlByte);
    assert_eq!(err("/%zz"), PathError::BadPercentEncoding);
    assert_eq!(err("/%2"), PathError::BadPercentEncoding);
    assert_eq!(err("/%"), PathError::BadPercentEncoding);
    assert_eq!(err("/a%g1"), PathError::BadPercentEncoding);
    assert_eq!(err("/a\\b"), PathError::Backslash);
    assert_eq!(err("/a/..\\b"), PathError::Backslash);
}

#[test]
fn decoding_and_dot_resolution() {
    let table = [
        ("/%7Euser", "/~user", false),
        ("/%41%62%2D%5f", "/Ab-_", false),
        ("/a%2fb", "/a%2Fb", true),
        ("/a%5cb", "/a%5Cb", true),
        ("/a%2ab", "/a%2Ab", false),
        ("/a%e6%97%a5", "/a%E6%97%A5", false),
        ("/a/b/..", "/a/", false),
        ("/a/b/.", "/a/b/", false),
        ("/a/b/../", "/a/", false),
        ("/..", "/", false),
        ("/.", "/", false),
        ("/../..", "/", false),
        ("//", "/", false),
        ("///a///b///", "/a/b/", false),
        ("/a/./b/../c", "/a/c", false),
    ];
    for (raw, want, sep) in table {
        assert_eq!(ok(raw), (want.to_owned(), sep), "input {raw}");
    }
}

/// Paths built from the pieces that matter to normalization.
fn tricky_path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/"),
        Just("."),
        Just(".."),
        Just("%2e"),
        Just("%2E"),
        Just("%2f"),
        Just("%5C"),
        Just("%3b"),
        Just(";"),
        Just("%41"),
        Just("%25"),
        Just("%"),
        Just("%0"),
        Just("%00"),
        Just("\\"),
        Just("ü"),
        Just("a"),
        Just("b~"),
    ];
    (any::<bool>(), proptest::collection::vec(piece, 0..24)).prop_map(|(slash, pieces)| {
        let mut s = String::from(if slash { "/" } else { "" });
        s.extend(pieces);
        s
    })
}

fn check_output(raw: &str) {
    let Ok(n) = normalize_path(raw) else { return };
    let p = &*n.path;
    assert!(p.starts_with('/'), "{raw:?} -> {p:?}");
    for bad in ["//", "/./", "/../"] {
        assert!(!p.contains(bad), "{raw:?} -> {p:?}");
    }
    assert!(
        !p.ends_with("/.") && !p.ends_with("/.."),
        "{raw:?} -> {p:?}"
    );
    // Idempotent, and the output takes the fast path.
    let again = normalize_path(p).unwrap_or_else(|e| panic!("{raw:?} -> {p:?} refused: {e}"));
    assert!(
        matches!(again.path, Cow::Borrowed(_)),
        "{raw:?} -> {p:?} not stable"
    );
    assert_eq!(again.path, p);
    // The flag describes what the client sent: a dot segment may remove the segment that
    // held the encoded separator ("/%2f/%2e%2e" -> "/"), and the request is still refused,
    // so the output may carry less than the input, never more.
    assert!(
        !again.encoded_separator || n.encoded_separator,
        "{raw:?} -> {p:?}"
    );
}

proptest! {
    #[test]
    fn tricky_paths_normalize_consistently(raw in tricky_path()) {
        check_output(&raw);
        // The fast path agrees with the slow one.
        if already_normal(&raw).is_some() {
            let slow = normalize_slow(&raw).map(|n| n.path.into_owned());
            prop_assert_eq!(slow, Ok(raw.clone()));
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(raw in any::<String>()) {
        check_output(&raw);
        check_output(&format!("/{raw}"));
    }
}

#[test]
fn an_encoded_separator_removed_by_a_dot_segment_still_flags_the_request() {
    let n = normalize_path("/%2f/%2e%2e").expect("a valid path");
    assert_eq!(n.path, "/");
    assert!(n.encoded_separator);
}
