//! google.api.http rule families: templates, bodies, response_body, additional_bindings,
//! custom verbs and methods, auto mapping.

use serde_json::json;

use crate::harness::Harness;

#[tokio::test]
async fn path_templates_bind_fields() {
    let mut h = Harness::start().await;
    let r = h.get("/v1/shelves/3").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/json");
    assert_eq!(r.json(), json!({"id": "3", "theme": "theme 3"}));

    let r = h.get("/v1/shelves/3/books/7").await;
    assert_eq!(
        r.json(),
        json!({"id": "7", "title": "Book 7 on shelf 3", "author": "Ada", "genre": "FICTION",
               "published": "2023-11-14T22:13:20Z", "tags": ["a", "b"]})
    );
    // `{path=**}` captures the rest, decoded except for encoded slashes.
    let r = h.get("/v1/echo/a/b%20c/d%2Fe").await;
    assert_eq!(r.json()["path"], "a/b c/d%2Fe");
    // A value that does not parse as the field's type is the client's fault, by name.
    let r = h.get("/v1/shelves/abc").await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"].as_str().unwrap().contains("shelf"),
        "{}",
        r.text()
    );
    assert_eq!(h.get("/v1/shelves").await.status, 404);
    assert_eq!(h.call("POST", "/v1/shelves/3", &[], "").await.status, 404);
}

#[tokio::test]
async fn bodies_star_field_and_nested_path_fields() {
    let mut h = Harness::start().await;
    // body: "book", plus a query parameter for an unbound field.
    let r = h
        .json(
            "POST",
            "/v1/shelves/3/books?request_id=r1",
            r#"{"title":"T","author":"A","genre":"SCIENCE"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"title": "T", "author": "A|shelf=3|rid=r1", "genre": "SCIENCE"})
    );

    // `{book.id}` points inside the body field; the path wins over the body.
    let r = h
        .json(
            "PATCH",
            "/v1/shelves/3/books/42?update_mask=title,author",
            r#"{"id":"1","title":"New"}"#,
        )
        .await;
    assert_eq!(
        r.json(),
        json!({"id": "42", "title": "New", "author": "mask=title,author|shelf=3"})
    );

    // body: "*" with an empty body is an empty message.
    let r = h.call("POST", "/v1/echo", &[], "").await;
    assert_eq!(r.json(), json!({}));

    // A body that does not parse is a 400 naming the field.
    let r = h
        .json("POST", "/v1/shelves/3/books", r#"{"title": 5}"#)
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("book.title"),
        "{}",
        r.text()
    );
    let r = h
        .json("POST", "/v1/echo", r#"{"nested": {"child": {"n": "x"}}}"#)
        .await;
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("nested.child.n"),
        "{}",
        r.text()
    );
    let r = h.json("POST", "/v1/echo", "{").await;
    assert_eq!(r.status, 400);
    let r = h
        .call("POST", "/v1/echo", &[("content-type", "text/plain")], "x")
        .await;
    assert_eq!(r.status, 415);
}

#[tokio::test]
async fn response_body_selects_a_field() {
    let mut h = Harness::start().await;
    let r = h.get("/v1/shelves/1/books/2/title").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!("Book 2 on shelf 1"));
}

#[tokio::test]
async fn additional_bindings_and_custom_methods() {
    let mut h = Harness::start().await;
    let r = h.get("/v2/books/5").await;
    assert_eq!(r.json()["id"], "5");
    // custom { kind: "HEAD" }
    let r = h.call("HEAD", "/v1/shelves/1/books/6", &[], "").await;
    assert_eq!(r.json()["title"], "Book 6 on shelf 1");
    // custom { kind: "*" } takes every method.
    for m in ["GET", "PUT", "OPTIONS", "FOO"] {
        let r = h.call(m, "/v1/any/hello", &[], "").await;
        assert_eq!(r.json(), json!({"s": "hello"}), "{m}");
    }
    let rules: Vec<_> = h.t.rules().map(|(m, t, _)| format!("{m} {t}")).collect();
    assert!(
        rules.contains(&"HEAD /v1/shelves/*/books/*".to_string()),
        "{rules:?}"
    );
}

#[tokio::test]
async fn custom_verb_with_pattern_variable() {
    let mut h = Harness::start().await;
    let r = h
        .json(
            "POST",
            "/v1/shelves/1/books/2:publish",
            r#"{"note":"n","genre":"SCIENCE"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"title": "shelves/1/books/2", "author": "n", "genre": "SCIENCE"})
    );
    // The pattern `shelves/*/books/*` must match: other shapes are not routed.
    assert_eq!(
        h.json("POST", "/v1/shelves/1:publish", "{}").await.status,
        404
    );
    assert_eq!(
        h.json("POST", "/v1/shelves/1/books/2:unknown", "{}")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn auto_mapping_for_methods_without_rules() {
    let mut h = Harness::start().await;
    let r = h
        .json(
            "POST",
            "/bookstore.v1.Bookstore/Ping",
            r#"{"s":"x","i64":"5"}"#,
        )
        .await;
    assert_eq!(r.json(), json!({"s": "x", "i64": "5"}));
    // Only POST, and only for methods without an http rule.
    assert_eq!(h.get("/bookstore.v1.Bookstore/Ping").await.status, 404);
    assert_eq!(
        h.json("POST", "/bookstore.v1.Bookstore/GetShelf", "{}")
            .await
            .status,
        404
    );
}
