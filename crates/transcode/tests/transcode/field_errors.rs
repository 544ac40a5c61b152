//! 400s that name the field at fault by its path, spelled as the client wrote it (proto
//! or JSON name), for bad JSON bodies and bad query values alike.

use sekisho_transcode::Options;

use crate::harness::Harness;

/// The start of the error message for `body` posted to `/v1/echo` (`body: "*"`).
async fn body_error(h: &mut Harness, body: &str) -> String {
    let r = h.json("POST", "/v1/echo", body).await;
    assert_eq!(r.status, 400, "{body}: {}", r.text());
    r.json()["message"].as_str().unwrap_or_default().to_owned()
}

async fn query_error(h: &mut Harness, uri: &str) -> String {
    let r = h.get(uri).await;
    assert_eq!(r.status, 400, "{uri}: {}", r.text());
    r.json()["message"].as_str().unwrap_or_default().to_owned()
}

fn assert_names(message: &str, field: &str) {
    assert!(
        message.starts_with(&format!("{field}: ")),
        "expected the message to name {field}: {message}"
    );
}

/// Checks every case and reports all the misnamed ones at once.
fn assert_all(misnamed: Vec<String>) {
    assert!(misnamed.is_empty(), "misnamed:\n{}", misnamed.join("\n"));
}

#[tokio::test]
async fn bad_json_values_name_the_field_path() {
    let mut h = Harness::start().await;
    let mut misnamed = Vec::new();
    for (body, field) in [
        (r#"{"nested": {"child": {"n": "x"}}}"#, "nested.child.n"),
        (r#"{"nested": {"child": 5}}"#, "nested.child"),
        (r#"{"i64": "12x"}"#, "i64"),
        (r#"{"by": "%%%"}"#, "by"),
        (r#"{"ts": "yesterday"}"#, "ts"),
        (r#"{"wi32": "x"}"#, "wi32"),
        (r#"{"items": [{"n": 1}, {"n": "x"}]}"#, "items[1].n"),
        (r#"{"nestedMap": {"3": {"n": "x"}}}"#, "nestedMap[\"3\"].n"),
        (
            r#"{"nested_map": {"3": {"n": "x"}}}"#,
            "nested_map[\"3\"].n",
        ),
        (r#"{"labels": {"k": 5}}"#, "labels[\"k\"]"),
        (r#"{"nums": [1, "x"]}"#, "nums[1]"),
        (r#"{"genres": ["FICTION", 1.5]}"#, "genres[1]"),
        // The client's spelling: JSON name or proto name, as sent.
        (r#"{"otherName": 5}"#, "otherName"),
        (r#"{"renamed": 5}"#, "renamed"),
        (r#"{"snakeName": 5}"#, "snakeName"),
        (r#"{"snake_name": 5}"#, "snake_name"),
        (
            r#"{"s": "ok", "nested": {"name": "n", "child": {"n": 1.5}}}"#,
            "nested.child.n",
        ),
    ] {
        let message = body_error(&mut h, body).await;
        if !message.starts_with(&format!("{field}: ")) {
            misnamed.push(format!("{body} → {message} (expected {field})"));
        }
    }
    assert_all(misnamed);
    // A body bound to one field (`body: "book"`): the path starts at that field.
    let r = h
        .json("POST", "/v1/shelves/3/books", r#"{"published": "soon"}"#)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_names(r.json()["message"].as_str().unwrap(), "book.published");
    // A client stream (a JSON array of messages): the item, then the field in it.
    for (body, field) in [
        (r#"[{"title": "a"}, {"id": "x"}]"#, "[1].id"),
        (r#"[{"title": "a"}, 5]"#, "[1]"),
    ] {
        let r = h.json("POST", "/v1/books:import", body).await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert_names(r.json()["message"].as_str().unwrap(), field);
    }
}

#[tokio::test]
async fn bad_json_values_are_named_with_case_insensitive_enums_too() {
    let mut h = Harness::with(Options {
        case_insensitive_enums: true,
        ..Options::default()
    })
    .await;
    assert_names(
        &body_error(&mut h, r#"{"nested": {"child": {"n": "x"}}}"#).await,
        "nested.child.n",
    );
    assert_names(
        &body_error(&mut h, r#"{"nested": {"child": 5}}"#).await,
        "nested.child",
    );
}

#[tokio::test]
async fn bad_query_values_name_the_parameter_as_sent() {
    let mut h = Harness::start().await;
    let mut misnamed = Vec::new();
    for (query, field) in [
        ("nested.child.n=x", "nested.child.n"),
        ("i64=1.5", "i64"),
        ("choiceI=x", "choiceI"),
        ("choice_i=x", "choice_i"),
        ("otherName=1&wi32=x", "wi32"),
        ("nested.child.name=a&nested.child.n=1e", "nested.child.n"),
        ("ts=soon", "ts"),
        ("by=%25%25", "by"),
    ] {
        let message = query_error(&mut h, &format!("/v1/echo/p?{query}")).await;
        if !message.starts_with(&format!("{field}: ")) {
            misnamed.push(format!("{query} → {message} (expected {field})"));
        }
    }
    assert_all(misnamed);
}
