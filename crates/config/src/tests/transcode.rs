//! Route-level `transcode`.

use super::{ok, one_error, MINIMAL};
use crate::StreamFormat;

#[test]
fn transcode_decodes_with_defaults_and_errors_name_their_place() {
    let with = |extra: &str| {
        MINIMAL.replace(
            "    cluster: backend\n",
            &format!("    cluster: backend\n{extra}"),
        )
    };
    let c = ok(&with(
        "    transcode: { descriptors: protos/shop.pb, services: [shop.v1.Items] }\n",
    ));
    let t = c.routes[0].transcode.as_ref().unwrap();
    assert_eq!(
        t.descriptors,
        std::path::Path::new("/etc/sekisho/protos/shop.pb")
    );
    assert_eq!(t.services, ["shop.v1.Items"]);
    assert!(t.auto_mapping && !t.reject_unknown_fields && !t.emit_defaults);
    assert_eq!(
        (t.stream_format, t.max_request_bytes),
        (StreamFormat::JsonArray, 4 * 1024 * 1024)
    );

    let c = ok(&with("    transcode:\n      descriptors: a.pb\n      services: [a.B]\n      stream_format: ndjson\n      metadata_headers: [X-User-Id]\n      emit_defaults: true\n      max_request_bytes: 1KiB\n"));
    let t = c.routes[0].transcode.as_ref().unwrap();
    assert_eq!(
        (t.stream_format, t.max_request_bytes, t.emit_defaults),
        (StreamFormat::Ndjson, 1024, true)
    );
    assert_eq!(t.metadata_headers, ["x-user-id"]);
    assert_eq!(
        c.effective_json()["routes"][0]["transcode"]["stream_format"],
        "ndjson"
    );

    one_error(
        &with("    transcode: { services: [a.B] }\n"),
        "routes[0].transcode",
        7,
        "descriptors",
    );
    one_error(
        &with("    transcode: { descriptors: a.pb, services: [] }\n"),
        "routes[0].transcode.services",
        7,
        "at least one",
    );
    one_error(
        &with("    transcode: { descriptors: a.pb, services: [a.B], stream_format: xml }\n"),
        "routes[0].transcode.stream_format",
        7,
        "xml",
    );
    let direct = MINIMAL.replace(
        "    cluster: backend\n",
        "    direct_response: { status: 200 }\n    transcode: { descriptors: a.pb, services: [a.B] }\n",
    );
    one_error(&direct, "routes[0].transcode", 7, "needs a gRPC upstream");
}
