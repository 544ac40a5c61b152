//! The request URI form each protocol needs; nothing else about the request changes.

use http::header::HOST;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Method, Request, Uri, Version};

use crate::endpoints::Origin;

/// HTTP/1.1: origin-form (`/path?q`) with the `Host` header as given. A request that
/// arrived over HTTP/2 carries its authority in the URI and no `Host`: it moves there.
pub(crate) fn to_origin_form<B>(req: &mut Request<B>, origin: &Origin) {
    *req.version_mut() = Version::HTTP_11;
    if req.method() == Method::CONNECT {
        return; // authority-form, as given
    }
    let uri = req.uri();
    if uri.scheme().is_none() && uri.authority().is_none() {
        if !req.headers().contains_key(HOST) {
            req.headers_mut().insert(HOST, origin.host_header.clone());
        }
        return;
    }
    if !req.headers().contains_key(HOST) {
        let host = uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            .unwrap_or_else(|| origin.host_header.clone());
        req.headers_mut().insert(HOST, host);
    }
    let path = req
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    *req.uri_mut() = Uri::from(path);
}

/// HTTP/2: absolute URI, `scheme` of the connection, authority from the `Host` header,
/// else the URI's, else the endpoint's.
pub(crate) fn to_absolute_form<B>(
    req: &mut Request<B>,
    scheme: &Scheme,
    origin: &Origin,
) -> Result<(), http::Error> {
    *req.version_mut() = Version::HTTP_2;
    let from_host = req
        .headers()
        .get(HOST)
        .filter(|h| req.uri().authority().map(|a| a.as_str().as_bytes()) != Some(h.as_bytes()))
        .and_then(|h| Authority::try_from(h.as_bytes()).ok());
    // HTTP/2 carries the host in `:authority` (RFC 9113 §8.3.1). Sending `Host` as well makes
    // nginx (before 1.25, which turns `:authority` into a Host header) answer 400.
    req.headers_mut().remove(HOST);
    let uri = req.uri();
    if from_host.is_none() && uri.scheme() == Some(scheme) && uri.authority().is_some() {
        return Ok(()); // already right: no allocation
    }
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    parts.authority = Some(
        from_host
            .or(parts.authority)
            .unwrap_or_else(|| origin.authority.clone()),
    );
    parts.scheme = Some(scheme.clone());
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    *req.uri_mut() = Uri::from_parts(parts)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        let ep = sekisho_config::Endpoint {
            host: "10.0.0.1".into(),
            port: 8080,
            weight: 1,
            at: Default::default(),
        };
        Origin::new("c", 0, &ep, |_| Ok(None)).expect("origin")
    }

    fn req(uri: &str, host: Option<&str>) -> Request<()> {
        let mut b = Request::builder().uri(uri);
        if let Some(h) = host {
            b = b.header(HOST, h);
        }
        b.body(()).expect("request")
    }

    #[test]
    fn origin_form_keeps_host() {
        let mut r = req("/a?b=1", Some("api.example.com"));
        to_origin_form(&mut r, &origin());
        assert_eq!(r.uri(), "/a?b=1");
        assert_eq!(r.headers()[HOST], "api.example.com");
    }

    #[test]
    fn origin_form_from_absolute_moves_authority_to_host() {
        let mut r = req("https://api.example.com/x", None);
        *r.version_mut() = Version::HTTP_2;
        to_origin_form(&mut r, &origin());
        assert_eq!(r.uri(), "/x");
        assert_eq!(r.headers()[HOST], "api.example.com");
        assert_eq!(r.version(), Version::HTTP_11);
    }

    #[test]
    fn origin_form_without_any_host_uses_endpoint() {
        let mut r = req("/x", None);
        to_origin_form(&mut r, &origin());
        assert_eq!(r.headers()[HOST], "10.0.0.1:8080");
    }

    #[test]
    fn absolute_form_from_host_header() {
        let mut r = req("/a?b=1", Some("api.example.com"));
        to_absolute_form(&mut r, &Scheme::HTTP, &origin()).expect("uri");
        assert_eq!(r.uri(), "http://api.example.com/a?b=1");
        // Only `:authority` carries the host on HTTP/2 (nginx rejects both).
        assert!(r.headers().get(HOST).is_none());
    }

    #[test]
    fn absolute_form_falls_back_to_endpoint() {
        let mut r = req("/a", None);
        to_absolute_form(&mut r, &Scheme::HTTPS, &origin()).expect("uri");
        assert_eq!(r.uri(), "https://10.0.0.1:8080/a");
    }

    #[test]
    fn absolute_form_replaces_scheme_keeps_authority() {
        let mut r = req("https://svc.internal/a", None);
        to_absolute_form(&mut r, &Scheme::HTTP, &origin()).expect("uri");
        assert_eq!(r.uri(), "http://svc.internal/a");
    }
}
