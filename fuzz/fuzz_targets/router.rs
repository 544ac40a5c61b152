//! Path normalization and route lookup: no panic, normalization is idempotent, and a
//! normalized path never keeps a dot-segment or an empty segment.
#![no_main]

use std::sync::OnceLock;

use http::{HeaderMap, Method};
use libfuzzer_sys::fuzz_target;
use sekisho_router::{normalize_path, HeaderPredicate, HostMatch, PathMatch, RouteSpec, Router, RouterBuilder};

fn router() -> &'static Router<usize> {
    static R: OnceLock<Router<usize>> = OnceLock::new();
    R.get_or_init(|| {
        let mut b = RouterBuilder::new();
        let specs = [
            (HostMatch::Exact("api.example.com".into()), PathMatch::Prefix("/v1/".into())),
            (HostMatch::Wildcard(".example.com".into()), PathMatch::Prefix("/".into())),
            (HostMatch::Any, PathMatch::Exact("/admin/login".into())),
            (HostMatch::Any, PathMatch::Template("/v1/items/{id}".into())),
            (HostMatch::Any, PathMatch::Template("/v1/items/{id}/reviews/{rid}".into())),
            (HostMatch::Any, PathMatch::Template("/static/{rest...}".into())),
            (HostMatch::Any, PathMatch::Prefix("/admin/".into())),
            (HostMatch::Any, PathMatch::Prefix("/".into())),
        ];
        for (i, (host, path)) in specs.into_iter().enumerate() {
            b.add(RouteSpec { host, path, methods: Vec::new(), headers: Vec::new() }, i);
        }
        let mut post = RouteSpec::new(PathMatch::Prefix("/v1/".into()));
        post.methods = vec![Method::POST];
        post.headers = vec![HeaderPredicate { name: http::header::HeaderName::from_static("x-beta"), value: None }];
        b.add(post, 99);
        b.build().expect("fuzz router builds")
    })
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let host = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let method = Method::from_bytes(parts.next().unwrap_or(b"GET")).unwrap_or(Method::GET);
    let Ok(n) = normalize_path(&path) else { return };
    let again = normalize_path(&n.path).expect("a normalized path normalizes again");
    assert_eq!(again.path, n.path, "normalization is idempotent");
    for bad in ["//", "/./", "/../"] {
        assert!(!n.path.contains(bad), "{:?} kept {bad}", n.path);
    }
    assert!(!n.path.ends_with("/.") && !n.path.ends_with("/.."), "{:?}", n.path);
    let mut headers = HeaderMap::new();
    headers.insert("x-beta", http::HeaderValue::from_static("1"));
    let _ = router().find(&host, &n.path, &method, &headers);
    let _ = router().find(&host, &n.path, &method, &HeaderMap::new());
});
