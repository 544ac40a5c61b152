//! Streaming: server streams as a JSON array, NDJSON or SSE; client streams from a JSON array.

use sekisho_transcode::{Options, StreamFormat};
use serde_json::json;

use crate::harness::Harness;

#[tokio::test]
async fn server_streaming_as_json_array() {
    let mut h = Harness::start().await;
    let r = h
        .get("/v1/shelves/2/books?count=3&tags=x&tags=y&genre=SCIENCE")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/json");
    let v = r.json();
    let books = v.as_array().unwrap();
    assert_eq!(books.len(), 3);
    assert_eq!(books[2]["id"], "3");
    assert_eq!(books[0]["tags"], json!(["x", "y"]));
    assert_eq!(books[0]["genre"], "SCIENCE");

    assert_eq!(h.get("/v1/shelves/2/books?count=0").await.json(), json!([]));

    // An error after messages were sent ends the array with an error element.
    let r = h.get("/v1/shelves/2/books?count=2&fail_code=9").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v.as_array().unwrap().len(), 3);
    assert_eq!(v[2]["error"]["code"], 9);
    assert_eq!(v[2]["error"]["message"], "stopped after 2");

    // An error before any message is an ordinary error response.
    let r = h.get("/v1/shelves/2/books?count=0&fail_code=5").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], 5);
}

#[tokio::test]
async fn server_streaming_as_ndjson_and_sse() {
    let mut h = Harness::with(Options {
        stream_format: StreamFormat::Ndjson,
        ..Options::default()
    })
    .await;
    let r = h.get("/v1/shelves/2/books?count=2&fail_code=10").await;
    assert_eq!(r.content_type, "application/x-ndjson");
    let lines: Vec<serde_json::Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["id"], "2");
    assert_eq!(lines[2]["error"]["code"], 10);

    let mut h = Harness::with(Options {
        stream_format: StreamFormat::Sse,
        ..Options::default()
    })
    .await;
    let r = h.get("/v1/shelves/2/books?count=2").await;
    assert_eq!(r.content_type, "text/event-stream");
    let events: Vec<&str> = r.text().split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 2);
    let first: serde_json::Value =
        serde_json::from_str(events[0].strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(first["id"], "1");
}

#[tokio::test]
async fn client_streaming_from_a_json_array() {
    let mut h = Harness::start().await;
    let r = h
        .json(
            "POST",
            "/v1/books:import",
            r#"[{"id":"1","title":"a"},{"id":"2","title":"b"},{"title":"c"}]"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"count": 3, "titles": ["a", "b", "c"], "shelf": "3"})
    );
    // One object is a stream of one message; an empty array a stream of none.
    assert_eq!(
        h.json("POST", "/v1/books:import", r#"{"title":"x"}"#)
            .await
            .json()["count"],
        1
    );
    assert_eq!(
        h.json("POST", "/v1/books:import", "[]").await.json(),
        json!({})
    );
    // A bad element is named by its index.
    let r = h
        .json("POST", "/v1/books:import", r#"[{"title":"a"},{"id":"x"}]"#)
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"].as_str().unwrap().starts_with("[1].id"),
        "{}",
        r.text()
    );
}
