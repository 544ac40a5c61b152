//! gRPC status to HTTP, error bodies with details, metadata both ways.

use prost::Message as _;
use sekisho_transcode::http_status_for_grpc;
use serde_json::json;

use crate::harness::Harness;

/// `google.rpc.Status`, declared here: the test proto does not import it.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

#[tokio::test]
async fn not_found_with_details_from_the_status_details_trailer() {
    let mut h = Harness::start().await;
    let r = h.call("DELETE", "/v1/shelves/1/books/9", &[], "").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.content_type, "application/json");
    assert_eq!(
        r.json(),
        json!({
            "code": 5,
            "message": "book 9 not found",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "BOOK_MISSING",
                "domain": "bookstore.example",
                "metadata": {"book": "9"}
            }]
        })
    );

    // Protobuf clients get the google.rpc.Status in binary.
    let r = h
        .call(
            "DELETE",
            "/v1/shelves/1/books/9",
            &[("accept", "application/x-protobuf")],
            "",
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.content_type, "application/x-protobuf");
    let st = RpcStatus::decode(r.body.clone()).unwrap();
    assert_eq!((st.code, st.message.as_str()), (5, "book 9 not found"));
    assert_eq!(
        st.details[0].type_url,
        "type.googleapis.com/google.rpc.ErrorInfo"
    );
}

#[tokio::test]
async fn every_grpc_code_maps_to_its_http_status() {
    let mut h = Harness::start().await;
    let r = h.get("/v1/fail/0").await;
    assert_eq!((r.status.as_u16(), r.json()), (200, json!({})));
    for code in 1..=16u32 {
        let r = h.get(&format!("/v1/fail/{code}")).await;
        assert_eq!(r.status, http_status_for_grpc(code), "code {code}");
        let v = r.json();
        assert_eq!(v["code"], code, "code {code}");
        assert_eq!(v["message"], format!("failed with {code}"));
    }
    // The table itself, as Envoy and grpc-gateway define it.
    let table: Vec<u16> = (0..=16).map(|c| http_status_for_grpc(c).as_u16()).collect();
    assert_eq!(
        table,
        [200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401]
    );
}

#[tokio::test]
async fn metadata_goes_up_and_comes_back_as_headers() {
    let mut h = Harness::start().await;
    let r = h
        .call(
            "POST",
            "/v1/echo",
            &[
                ("content-type", "application/json"),
                ("x-user-id", "u7"),
                ("cookie", "c"),
            ],
            "{}",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-echo-user"], "u7");
    assert_eq!(r.headers["x-echo-trailer"], "done");
    assert!(r.headers.get("grpc-status").is_none());
}
