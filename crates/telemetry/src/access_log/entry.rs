//! One access log record and its JSON line.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use super::json::{write_addr, write_secs, write_str, write_time, write_u64};

/// One finished request, borrowed from the request's own state.
///
/// Fields that come from headers are `&str`: the caller converts raw header
/// bytes first (e.g. `String::from_utf8_lossy`), and the writer escapes
/// anything that could break the line.
#[derive(Debug, Clone, Copy)]
pub struct AccessLogEntry<'a> {
    /// When the request finished (`time`, RFC 3339 UTC with milliseconds).
    pub time: SystemTime,
    /// The client's address (`remote_addr`).
    pub remote_addr: SocketAddr,
    /// Request method (`method`).
    pub method: &'a str,
    /// Request target as received (`uri`).
    pub uri: &'a str,
    /// Response status code (`status`).
    pub status: u16,
    /// Response body bytes sent (`size`).
    pub size: u64,
    /// `User-Agent`, `null` when absent (`ua`).
    pub ua: Option<&'a str>,
    /// Time from request received to response finished (`ptime`, seconds).
    pub ptime: Duration,
    /// `Host` / `:authority`, empty when absent (`host`).
    pub host: &'a str,
    /// The request id sent upstream (`request_id`).
    pub request_id: &'a str,
    /// Matched route name, empty when none matched (`route`).
    pub route: &'a str,
    /// Chosen cluster, empty when none (`cluster`).
    pub cluster: &'a str,
    /// Upstream endpoint of the last attempt, `null` when none (`upstream_addr`).
    pub upstream_addr: Option<SocketAddr>,
    /// Time spent on the upstream, `null` when none was used (`upstream_time`).
    pub upstream_time: Option<Duration>,
    /// How the request was authenticated (`jwt`, `api_key`, `ext_auth`, `anonymous`), `null`
    /// on routes without auth and for refused requests (`auth`).
    pub auth: Option<&'a str>,
    /// Who: the API key's configured name or the JWT `sub`, `null` when unknown (`auth_id`).
    pub auth_id: Option<&'a str>,
}

impl AccessLogEntry<'_> {
    /// Appends the JSON object and a trailing newline to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"time\":");
        write_time(out, self.time);
        out.extend_from_slice(b",\"remote_addr\":");
        write_addr(out, self.remote_addr);
        out.extend_from_slice(b",\"method\":");
        write_str(out, self.method);
        out.extend_from_slice(b",\"uri\":");
        write_str(out, self.uri);
        out.extend_from_slice(b",\"status\":");
        write_u64(out, u64::from(self.status));
        out.extend_from_slice(b",\"size\":");
        write_u64(out, self.size);
        out.extend_from_slice(b",\"ua\":");
        match self.ua {
            Some(ua) => write_str(out, ua),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"ptime\":");
        write_secs(out, self.ptime);
        out.extend_from_slice(b",\"host\":");
        write_str(out, self.host);
        out.extend_from_slice(b",\"request_id\":");
        write_str(out, self.request_id);
        out.extend_from_slice(b",\"route\":");
        write_str(out, self.route);
        out.extend_from_slice(b",\"cluster\":");
        write_str(out, self.cluster);
        out.extend_from_slice(b",\"upstream_addr\":");
        match self.upstream_addr {
            Some(a) => write_addr(out, a),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"upstream_time\":");
        match self.upstream_time {
            Some(t) => write_secs(out, t),
            None => out.extend_from_slice(b"null"),
        }
        for (key, value) in [
            (&b",\"auth\":"[..], self.auth),
            (b",\"auth_id\":", self.auth_id),
        ] {
            out.extend_from_slice(key);
            match value {
                Some(v) => write_str(out, v),
                None => out.extend_from_slice(b"null"),
            }
        }
        out.extend_from_slice(b"}\n");
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    /// A fully populated entry for tests.
    pub(crate) fn sample() -> AccessLogEntry<'static> {
        AccessLogEntry {
            time: UNIX_EPOCH + Duration::from_millis(1_714_566_896_789),
            remote_addr: "127.0.0.1:51234".parse().unwrap(),
            method: "GET",
            uri: "/v1/items/42?q=\"x\"",
            status: 200,
            size: 1234,
            ua: Some("curl/8.0\u{1b}[0m"),
            ptime: Duration::from_micros(2_500),
            host: "api.example.com",
            request_id: "0123456789abcdef0123456789abcdef",
            route: "items",
            cluster: "items-v2",
            upstream_addr: Some("[::1]:9102".parse().unwrap()),
            upstream_time: Some(Duration::from_micros(1_800)),
            auth: Some("api_key"),
            auth_id: Some("partner-\"acme\""),
        }
    }

    #[test]
    fn exact_field_set_and_values() {
        let mut out = Vec::new();
        sample().write_json(&mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let obj = v.as_object().unwrap();
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        let mut expected = vec![
            "time",
            "remote_addr",
            "method",
            "uri",
            "status",
            "size",
            "ua",
            "ptime",
            "host",
            "request_id",
            "route",
            "cluster",
            "upstream_addr",
            "upstream_time",
            "auth",
            "auth_id",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected); // serde_json's map is sorted
        assert_eq!(v["time"], "2024-05-01T12:34:56.789Z");
        assert_eq!(v["remote_addr"], "127.0.0.1:51234");
        assert_eq!(v["uri"], "/v1/items/42?q=\"x\"");
        assert_eq!(v["status"], 200);
        assert_eq!(v["size"], 1234);
        assert_eq!(v["ua"], "curl/8.0\u{1b}[0m");
        assert_eq!(v["ptime"], 0.0025);
        assert_eq!(v["upstream_addr"], "[::1]:9102");
        assert_eq!(v["upstream_time"], 0.0018);
        assert_eq!(v["auth"], "api_key");
        assert_eq!(v["auth_id"], "partner-\"acme\"");
    }

    #[test]
    fn field_order_and_nulls() {
        let mut e = sample();
        e.ua = None;
        e.upstream_addr = None;
        e.upstream_time = None;
        e.auth = None;
        e.auth_id = None;
        let mut out = Vec::new();
        e.write_json(&mut out);
        let line = String::from_utf8(out).unwrap();
        assert!(line.starts_with("{\"time\":\"2024-05-01T12:34:56.789Z\",\"remote_addr\":"));
        assert!(line.contains(",\"ua\":null,"));
        assert!(line.ends_with(
            ",\"upstream_addr\":null,\"upstream_time\":null,\"auth\":null,\"auth_id\":null}\n"
        ));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(v["upstream_time"].is_null());
    }
}
