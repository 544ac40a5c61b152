//! CORS for browsers (`routes[i].cors`): preflights answered here, before auth and never
//! forwarded; actual answers from allowed origins get the `Access-Control-*` headers. The
//! policy is compiled once per plan, so a request only compares strings.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use sekisho_config::{Cors, OriginPattern};

use crate::body::ResponseBody;
use crate::respond::GatewayError;

/// A route's CORS policy, ready to apply.
#[derive(Debug)]
pub struct CorsPolicy {
    origins: Vec<OriginPattern>,
    methods: Vec<String>,
    allow_methods: HeaderValue,
    headers: Vec<String>,
    allow_headers: Option<HeaderValue>,
    expose: Vec<String>,
    max_age: Option<HeaderValue>,
    credentials: bool,
}

/// The method a CORS preflight announces: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`. Any other `OPTIONS` is an ordinary request.
pub fn preflight_method(method: &Method, headers: &HeaderMap) -> Option<Method> {
    if method != Method::OPTIONS || !headers.contains_key(header::ORIGIN) {
        return None;
    }
    let announced = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD)?;
    Method::from_bytes(announced.as_bytes()).ok()
}

impl CorsPolicy {
    /// Compiles the config's policy; the config has checked every name already.
    pub fn compile(c: &Cors) -> Result<CorsPolicy, String> {
        let joined = |list: &[String]| -> Result<Option<HeaderValue>, String> {
            if list.is_empty() {
                return Ok(None);
            }
            HeaderValue::from_str(&list.join(", "))
                .map(Some)
                .map_err(|_| format!("cors: invalid header list {list:?}"))
        };
        Ok(CorsPolicy {
            origins: c.allow_origins.clone(),
            methods: c.allow_methods.clone(),
            allow_methods: joined(&c.allow_methods)?.unwrap_or(HeaderValue::from_static("")),
            headers: c.allow_headers.clone(),
            allow_headers: joined(&c.allow_headers)?,
            expose: c.expose_headers.clone(),
            max_age: c.max_age.map(|d| HeaderValue::from(d.as_secs())),
            credentials: c.allow_credentials,
        })
    }

    fn allows_origin(&self, origin: &HeaderValue) -> bool {
        origin
            .to_str()
            .is_ok_and(|o| self.origins.iter().any(|p| p.matches(o)))
    }

    /// Answers a preflight: 204 with the policy, or a 403 saying what is not allowed.
    pub fn preflight(&self, headers: &HeaderMap) -> Result<Response<ResponseBody>, GatewayError> {
        let origin = headers
            .get(header::ORIGIN)
            .ok_or_else(|| GatewayError::Internal("preflight without Origin".into()))?;
        if !self.allows_origin(origin) {
            return Err(GatewayError::CorsRejected(format!(
                "origin {} is not allowed on this route",
                String::from_utf8_lossy(origin.as_bytes())
            )));
        }
        let method = headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
            .unwrap_or_default();
        if !self.methods.iter().any(|m| m.eq_ignore_ascii_case(&method)) {
            return Err(GatewayError::CorsRejected(format!(
                "method {method} is not allowed cross-origin on this route"
            )));
        }
        for requested in headers.get_all(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            let list = String::from_utf8_lossy(requested.as_bytes()).to_ascii_lowercase();
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if !self.headers.iter().any(|h| h == name) {
                    return Err(GatewayError::CorsRejected(format!(
                        "request header {name} is not allowed cross-origin on this route"
                    )));
                }
            }
        }
        let mut resp = Response::new(ResponseBody::empty());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        let h = resp.headers_mut();
        self.allow(origin, h);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            self.allow_methods.clone(),
        );
        if let Some(v) = &self.allow_headers {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
        }
        if let Some(v) = &self.max_age {
            h.insert(header::ACCESS_CONTROL_MAX_AGE, v.clone());
        }
        Ok(resp)
    }

    /// Adds the CORS headers to an actual answer (the upstream's or the gateway's own):
    /// allowed origins may read it and the exposed headers; others get nothing, so the
    /// browser hides it. The answer varies with `Origin` either way.
    pub fn decorate(&self, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
        add_vary_origin(headers);
        let Some(origin) = origin.filter(|o| self.allows_origin(o)) else {
            return;
        };
        self.allow(origin, headers);
        if self.expose.is_empty() {
            return;
        }
        // Keep what the upstream or the gRPC-Web translation already exposes.
        let mut names: Vec<String> = headers
            .get_all(header::ACCESS_CONTROL_EXPOSE_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|n| n.trim().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        for name in &self.expose {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        if let Ok(v) = HeaderValue::from_str(&names.join(", ")) {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
        }
    }

    /// `Allow-Origin` (the request's origin: exact, so credentials work and caches key on
    /// it), `Allow-Credentials` and `Vary: Origin`.
    fn allow(&self, origin: &HeaderValue, headers: &mut HeaderMap) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        if self.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        add_vary_origin(headers);
    }
}

fn add_vary_origin(headers: &mut HeaderMap) {
    let present = headers.get_all(header::VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("origin") || t.trim() == "*")
        })
    });
    if !present {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> CorsPolicy {
        CorsPolicy::compile(&Cors {
            allow_origins: vec![OriginPattern::Exact("https://app.test".into())],
            allow_methods: vec!["POST".into()],
            allow_headers: vec!["content-type".into(), "x-grpc-web".into()],
            expose_headers: vec!["grpc-status".into(), "grpc-message".into()],
            max_age: Some(std::time::Duration::from_secs(600)),
            allow_credentials: true,
        })
        .unwrap()
    }

    fn preflight(origin: &str, method: &str, headers: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        h.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_str(method).unwrap(),
        );
        h.insert(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_str(headers).unwrap(),
        );
        h
    }

    #[test]
    fn preflights_are_answered_or_refused() {
        let p = policy();
        let r = p
            .preflight(&preflight(
                "https://app.test",
                "POST",
                "Content-Type, x-grpc-web",
            ))
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], "https://app.test");
        assert_eq!(h["access-control-allow-methods"], "POST");
        assert_eq!(
            h["access-control-allow-headers"],
            "content-type, x-grpc-web"
        );
        assert_eq!(h["access-control-max-age"], "600");
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert_eq!(h["vary"], "Origin");
        for (origin, method, headers) in [
            ("https://evil.test", "POST", "content-type"),
            ("https://app.test", "DELETE", "content-type"),
            ("https://app.test", "POST", "content-type,x-secret"),
        ] {
            let e = p
                .preflight(&preflight(origin, method, headers))
                .unwrap_err();
            assert_eq!(
                e.status(),
                StatusCode::FORBIDDEN,
                "{origin} {method} {headers}"
            );
        }
    }

    #[test]
    fn actual_answers_expose_headers_to_allowed_origins_only() {
        let p = policy();
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("grpc-status, x-upstream"),
        );
        p.decorate(Some(&HeaderValue::from_static("https://app.test")), &mut h);
        assert_eq!(h["access-control-allow-origin"], "https://app.test");
        assert_eq!(
            h["access-control-expose-headers"],
            "grpc-status, x-upstream, grpc-message"
        );
        let mut h = HeaderMap::new();
        p.decorate(Some(&HeaderValue::from_static("https://evil.test")), &mut h);
        assert!(!h.contains_key("access-control-allow-origin"));
        assert_eq!(h["vary"], "Origin");
        let mut h = HeaderMap::new();
        h.insert(
            header::VARY,
            HeaderValue::from_static("accept-encoding, origin"),
        );
        p.decorate(None, &mut h);
        assert_eq!(h.get_all(header::VARY).iter().count(), 1);
    }

    #[test]
    fn only_options_with_origin_and_a_method_is_a_preflight() {
        let h = preflight("https://app.test", "POST", "x");
        assert_eq!(preflight_method(&Method::OPTIONS, &h), Some(Method::POST));
        assert_eq!(preflight_method(&Method::POST, &h), None);
        let mut no_origin = h.clone();
        no_origin.remove(header::ORIGIN);
        assert_eq!(preflight_method(&Method::OPTIONS, &no_origin), None);
    }
}
