//! Message mapping: every field kind through JSON and query parameters, well-known
//! types, Any, binary protobuf, HttpBody and the JSON options.

use bytes::Bytes;
use prost::Message as _;
use sekisho_transcode::prost_reflect::{DescriptorPool, DynamicMessage};
use sekisho_transcode::Options;
use serde_json::json;

use crate::harness::{descriptors, Harness};

fn everything() -> serde_json::Value {
    json!({
        "d": 1.5, "f": -2.25, "i32": -7, "i64": "-9007199254740993", "u32": 7,
        "u64": "18446744073709551615", "s32": -3, "s64": "-4", "fx32": 5, "fx64": "6",
        "sf32": -8, "sf64": "-9", "b": true, "s": "héllo", "by": "AQID/w==", "genre": "SCIENCE",
        "nested": {"name": "n", "n": 1, "child": {"name": "c"}}, "nums": [1, 2, 3],
        "genres": ["FICTION", "SCIENCE"], "labels": {"k": "v"},
        "nestedMap": {"3": {"name": "three"}},
        "ts": "2024-01-02T03:04:05.500Z", "dur": "1.500s", "mask": "title,book.author",
        "wi32": 7, "wstr": "w", "wbool": false, "wi64": "64",
        "any": {"@type": "type.googleapis.com/bookstore.v1.Book", "id": "9", "title": "t"},
        "st": {"a": [1.5, "x", null, {"b": true}]}, "val": "v", "path": "p",
        "snakeName": "sn", "otherName": "on", "choiceI": 9,
        "items": [{"name": "i1"}, {"name": "i2"}]
    })
}

#[tokio::test]
async fn every_field_kind_round_trips_as_json() {
    let mut h = Harness::start().await;
    let sent = everything();
    let r = h.json("POST", "/v1/echo", &sent.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), sent);
    // Either name is accepted on the way in.
    let r = h
        .json(
            "POST",
            "/v1/echo",
            r#"{"snake_name":"a","renamed":"b","nested_map":{"1":{"n":2}}}"#,
        )
        .await;
    assert_eq!(
        r.json(),
        json!({"snakeName": "a", "otherName": "b", "nestedMap": {"1": {"n": 2}}})
    );
}

#[tokio::test]
async fn query_parameters_map_every_unbound_field() {
    let mut h = Harness::start().await;
    let q = "d=1.5&i64=-9007199254740993&u64=18446744073709551615&b=true&s=hi+there%21\
             &by=AQID_w&genre=SCIENCE&genres=1&genres=FICTION&nums=1&nums=2\
             &nested.name=n&nested.child.n=5&labels[k]=v&ts=2024-01-02T03:04:05Z&dur=1.5s\
             &mask=a,b.c&wi32=7&wstr=x&wbool=false&snakeName=sn&other_name_unknown=1\
             &otherName=on&choice_i=9&path=ignored&fx64=12";
    let r = h.get(&format!("/v1/echo/p?{q}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({
            "d": 1.5, "i64": "-9007199254740993", "u64": "18446744073709551615", "b": true,
            "s": "hi there!", "by": "AQID/w==", "genre": "SCIENCE", "genres": ["FICTION", "FICTION"],
            "nums": [1, 2], "nested": {"name": "n", "child": {"n": 5}}, "labels": {"k": "v"},
            "ts": "2024-01-02T03:04:05Z", "dur": "1.500s", "mask": "a,b.c", "wi32": 7,
            "wstr": "x", "wbool": false, "snakeName": "sn", "otherName": "on", "choiceI": 9,
            "path": "p", "fx64": "12"
        })
    );
    for (bad, field) in [
        ("i32=abc", "i32"),
        ("genre=POETRY", "genre"),
        ("ts=yesterday", "ts"),
        ("nested=1", "nested"),
        ("by=%%%", "by"),
        ("nums=x", "nums"),
    ] {
        let r = h.get(&format!("/v1/echo/p?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(
            r.json()["message"].as_str().unwrap().starts_with(field),
            "{bad}: {}",
            r.text()
        );
    }
}

#[tokio::test]
async fn any_resolves_through_the_descriptor_set() {
    let mut h = Harness::start().await;
    let sent =
        json!({"any": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "2s"}});
    let r = h.json("POST", "/v1/echo", &sent.to_string()).await;
    assert_eq!(r.json(), sent);
    let r = h
        .json(
            "POST",
            "/v1/echo",
            r#"{"any": {"@type": "type.googleapis.com/no.Such", "x": 1}}"#,
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn binary_protobuf_in_and_out() {
    let mut h = Harness::start().await;
    let pool = DescriptorPool::decode(descriptors()).unwrap();
    let desc = pool.get_message_by_name("bookstore.v1.Everything").unwrap();
    let msg = DynamicMessage::deserialize(desc.clone(), everything()).unwrap();
    let bin = msg.encode_to_vec();
    let proto = [("content-type", "application/x-protobuf")];
    let r = h.call("POST", "/v1/echo", &proto, bin.clone()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/x-protobuf");
    assert_eq!(
        DynamicMessage::decode(desc.clone(), r.body.clone()).unwrap(),
        msg
    );

    // Path fields are merged into a binary body and win over it.
    let shelf_desc = pool.get_message_by_name("bookstore.v1.Book").unwrap();
    let book = DynamicMessage::deserialize(shelf_desc.clone(), json!({"id": "1", "title": "bin"}))
        .unwrap();
    let r = h
        .call(
            "PATCH",
            "/v1/shelves/4/books/77",
            &[("content-type", "application/protobuf")],
            book.encode_to_vec(),
        )
        .await;
    let got = DynamicMessage::decode(shelf_desc.clone(), r.body.clone()).unwrap();
    let got = serde_json::to_value(&got).unwrap();
    assert_eq!(
        got,
        json!({"id": "77", "title": "bin", "author": "mask=|shelf=4"})
    );

    // A GET asks for protobuf with Accept.
    let r = h
        .call(
            "GET",
            "/v1/shelves/8",
            &[("accept", "application/x-protobuf")],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.content_type, "application/x-protobuf");
    let shelf = pool.get_message_by_name("bookstore.v1.Shelf").unwrap();
    let got = DynamicMessage::decode(shelf, r.body.clone()).unwrap();
    assert_eq!(
        serde_json::to_value(&got).unwrap(),
        json!({"id": "8", "theme": "theme 8"})
    );

    // Garbage in a binary body is the upstream's to reject: INVALID_ARGUMENT / INTERNAL.
    let r = h.call("POST", "/v1/echo", &proto, vec![0xff, 0xff]).await;
    assert!(
        r.status.is_client_error() || r.status.is_server_error(),
        "{:?}",
        r.status
    );
}

#[tokio::test]
async fn http_body_in_requests_and_responses() {
    let mut h = Harness::start().await;
    let r = h.get("/v1/files/readme").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "text/html; charset=utf-8");
    assert_eq!(r.text(), "<h1>readme</h1>");

    let r = h
        .call(
            "POST",
            "/v1/files/notes",
            &[("content-type", "text/plain")],
            "hello, world",
        )
        .await;
    assert_eq!(
        r.json(),
        json!({"name": "notes", "contentType": "text/plain", "size": 12, "text": "hello, world"})
    );
}

#[tokio::test]
async fn json_options_names_defaults_unknown_fields_enum_case() {
    let mut h = Harness::with(Options {
        use_proto_field_names: true,
        emit_defaults: true,
        reject_unknown_fields: true,
        case_insensitive_enums: true,
        ..Options::default()
    })
    .await;
    let r = h.get("/v1/shelves/0").await;
    assert_eq!(r.json(), json!({"id": "0", "theme": "theme 0"}));
    let r = h
        .json("POST", "/v1/echo", r#"{"snakeName":"a","genre":"science"}"#)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["snake_name"], "a");
    assert_eq!(v["genre"], "SCIENCE");
    assert_eq!(v["i64"], "0", "defaults are written");
    let r = h.json("POST", "/v1/echo", r#"{"s":"x","nope":1}"#).await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"].as_str().unwrap().starts_with("nope"),
        "{}",
        r.text()
    );
    assert_eq!(h.get("/v1/echo/p?nope=1").await.status, 400);
    assert_eq!(
        h.get("/v1/echo/p?genre=fiction").await.json()["genre"],
        "FICTION"
    );

    // The defaults: unknown fields ignored, enum case matters.
    let mut h = Harness::start().await;
    let r = h.json("POST", "/v1/echo", r#"{"s":"x","nope":1}"#).await;
    assert_eq!(r.json(), json!({"s": "x"}));
    // Like protojson's DiscardUnknown, ignoring unknown fields also drops unknown enum names.
    let r = h
        .json("POST", "/v1/echo", r#"{"genre":"science","s":"y"}"#)
        .await;
    assert_eq!(r.json(), json!({"s": "y"}));
    // In a query, a wrong enum name is always an error naming the field.
    assert_eq!(h.get("/v1/echo/p?genre=fiction").await.status, 400);
}
