//! Replays the saved fuzz inputs of `fuzz/regressions/router` with the fuzz target's checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use http::{HeaderMap, Method};
use sekisho_router::{normalize_path, HostMatch, PathMatch, RouteSpec, RouterBuilder};

#[test]
fn saved_fuzz_inputs_keep_their_properties() {
    let mut b = RouterBuilder::new();
    for (i, (host, path)) in [
        (
            HostMatch::Exact("api.example.com".into()),
            PathMatch::Prefix("/v1/".into()),
        ),
        (
            HostMatch::Wildcard(".example.com".into()),
            PathMatch::Prefix("/".into()),
        ),
        (
            HostMatch::Any,
            PathMatch::Template("/v1/items/{id}/reviews/{rid}".into()),
        ),
        (
            HostMatch::Any,
            PathMatch::Template("/static/{rest...}".into()),
        ),
        (HostMatch::Any, PathMatch::Prefix("/".into())),
    ]
    .into_iter()
    .enumerate()
    {
        b.add(
            RouteSpec {
                host,
                path,
                methods: Vec::new(),
                headers: Vec::new(),
            },
            i,
        );
    }
    let router = b.build().expect("router");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/router");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let mut parts = data.splitn(3, |b| *b == 0);
        let host = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        let method = Method::from_bytes(parts.next().unwrap_or(b"GET")).unwrap_or(Method::GET);
        n += 1;
        let Ok(norm) = normalize_path(&path) else {
            continue;
        };
        assert_eq!(normalize_path(&norm.path).unwrap().path, norm.path);
        for bad in ["//", "/./", "/../"] {
            assert!(!norm.path.contains(bad), "{:?}", norm.path);
        }
        let _ = router.find(&host, &norm.path, &method, &HeaderMap::new());
    }
    assert!(n >= 5, "expected the saved inputs in {}", dir.display());
}
