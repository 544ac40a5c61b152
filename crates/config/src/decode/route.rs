//! `routes[i]`: match, action and the per-route options.

use std::time::Duration;

use super::{Decoder, Fields};
use crate::keys;
use crate::model::{
    BufferRequest, DirectResponse, HeaderMatch, HeaderOps, Mirror, PathMatch, Redirect, Retry,
    RetryOn, Rewrite, Route, RouteAction, RouteMatch, Split, StreamFormat, Transcode,
    WeightedCluster,
};
use crate::syntax;
use crate::yaml::Node;

/// `timeout` when absent.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// `split_header` when absent.
pub(crate) const DEFAULT_SPLIT_HEADER: &str = "x-sekisho-cluster";
/// `direct_response.content_type` when absent.
pub(crate) const DEFAULT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
/// The statuses a redirect may use.
const REDIRECT_STATUSES: &[u16] = &[301, 302, 303, 307, 308];

/// Decodes one route; None only when it is not a mapping.
pub(crate) fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Route> {
    let f = d.map(node, path, keys::ROUTE)?;
    let name = f
        .required(d, "name")
        .and_then(|n| d.nonempty(n, &f.path("name")))
        .unwrap_or_default();
    let matcher = match f.get("match") {
        Some(n) => matcher(d, n, &f.path("match")),
        None => RouteMatch {
            host: None,
            path: PathMatch::Prefix("/".to_string()),
            methods: Vec::new(),
            headers: Vec::new(),
        },
    };
    let action = action(d, &f);
    let rewrite = f
        .get("rewrite")
        .and_then(|n| rewrite(d, n, &f.path("rewrite"), &matcher.path));
    let request_headers = f
        .get("request_headers")
        .map(|n| header_ops(d, n, &f.path("request_headers")))
        .unwrap_or_default();
    let response_headers = f
        .get("response_headers")
        .map(|n| header_ops(d, n, &f.path("response_headers")))
        .unwrap_or_default();
    let timeout = f
        .get("timeout")
        .and_then(|n| d.positive_duration(n, &f.path("timeout")))
        .unwrap_or(DEFAULT_TIMEOUT);
    let buffer_request = f.get("buffer_request").and_then(|n| {
        let path = f.path("buffer_request");
        let b = d.map(n, &path, keys::BUFFER_REQUEST)?;
        let max = b.required(d, "max_bytes")?;
        let max_bytes = d.size(max, &b.path("max_bytes"))?;
        if max_bytes == 0 {
            d.error(&b.path("max_bytes"), max.mark, "must be greater than 0");
        }
        Some(BufferRequest { max_bytes })
    });
    let allow_encoded_slashes = f
        .get("allow_encoded_slashes")
        .and_then(|n| d.bool(n, &f.path("allow_encoded_slashes")))
        .unwrap_or(false);
    let per_try_timeout = f
        .get("per_try_timeout")
        .and_then(|n| d.positive_duration(n, &f.path("per_try_timeout")));
    let retry = f.get("retry").and_then(|n| retry(d, n, &f.path("retry")));
    let mirror = f
        .get("mirror")
        .and_then(|n| mirror(d, n, &f.path("mirror")));
    let transcode = f
        .get("transcode")
        .and_then(|n| transcode(d, n, &f.path("transcode")));
    let auth = f
        .get("auth")
        .map(|n| super::policy::route_auth(d, n, &f.path("auth")))
        .unwrap_or(crate::model::RouteAuth::Inherit);
    let rate_limit = f
        .get("rate_limit")
        .and_then(|n| super::policy::rate_limit(d, n, &f.path("rate_limit")));
    let lock = f
        .get("lock")
        .and_then(|n| super::policy::lock(d, n, &f.path("lock")));
    let cors = f.get("cors").and_then(|n| {
        let grpc_web = transcode.is_some();
        super::cors::decode(d, n, &f.path("cors"), &matcher.methods, grpc_web)
    });
    if transcode.is_some() && !matches!(action, RouteAction::Cluster(_) | RouteAction::Split(_)) {
        if let Some(n) = f.get("transcode") {
            d.error(
                &f.path("transcode"),
                n.mark,
                "`transcode` needs a gRPC upstream: use it with `cluster` or `split`",
            );
        }
    }
    Some(Route {
        name,
        matcher,
        action,
        rewrite,
        request_headers,
        response_headers,
        timeout,
        buffer_request,
        allow_encoded_slashes,
        per_try_timeout,
        retry,
        mirror,
        transcode,
        auth,
        rate_limit,
        lock,
        cors,
        at: f.location(),
    })
}

/// `retry.on` values, as written.
pub(crate) const RETRY_ON: &[(&str, RetryOn)] = &[
    ("connect-failure", RetryOn::ConnectFailure),
    ("reset", RetryOn::Reset),
    ("5xx", RetryOn::Status5xx),
    ("gateway-error", RetryOn::GatewayError),
];
/// `retry.backoff.base` when absent.
pub(crate) const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(25);
/// `retry.backoff.max` when absent.
pub(crate) const DEFAULT_BACKOFF_MAX: Duration = Duration::from_millis(250);
/// The most retries a route may ask for: more only multiplies an outage.
const MAX_RETRY_ATTEMPTS: u32 = 10;

fn retry(d: &mut Decoder, node: &Node, path: &str) -> Option<Retry> {
    let f = d.map(node, path, keys::RETRY)?;
    let attempts = f.required(d, "attempts").and_then(|n| {
        let v: u32 = d.at_least_one(n, &f.path("attempts"))?;
        if v > MAX_RETRY_ATTEMPTS {
            d.error(
                &f.path("attempts"),
                n.mark,
                format!(
                    "at most {MAX_RETRY_ATTEMPTS} retries (retries multiply load during an outage)"
                ),
            );
            return None;
        }
        Some(v)
    })?;
    let on = match f.get("on") {
        Some(n) => {
            let p = f.path("on");
            let items = d.seq(n, &p).unwrap_or_default();
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    d.choice(item, &format!("{p}[{i}]"), "retry condition", RETRY_ON)
                })
                .collect()
        }
        None => vec![RetryOn::ConnectFailure, RetryOn::Reset],
    };
    let statuses = match f.get("statuses") {
        Some(n) => {
            let p = f.path("statuses");
            let items = d.seq(n, &p).unwrap_or_default();
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    let ip = format!("{p}[{i}]");
                    let v: u16 = d.int(item, &ip)?;
                    if !(100..=599).contains(&v) {
                        d.error(&ip, item.mark, format!("invalid status {v} (100-599)"));
                        return None;
                    }
                    Some(v)
                })
                .collect()
        }
        None => Vec::new(),
    };
    let non_idempotent = f
        .get("non_idempotent")
        .and_then(|n| d.bool(n, &f.path("non_idempotent")))
        .unwrap_or(false);
    let (mut backoff_base, mut backoff_max) = (DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_MAX);
    if let Some(n) = f.get("backoff") {
        let p = f.path("backoff");
        if let Some(b) = d.map(n, &p, keys::BACKOFF) {
            if let Some(v) = b
                .get("base")
                .and_then(|n| d.positive_duration(n, &b.path("base")))
            {
                backoff_base = v;
            }
            if let Some(v) = b
                .get("max")
                .and_then(|n| d.positive_duration(n, &b.path("max")))
            {
                backoff_max = v;
            }
            if backoff_base > backoff_max {
                d.error(&p, n.mark, "`base` must not exceed `max`");
            }
        }
    }
    Some(Retry {
        attempts,
        on,
        statuses,
        non_idempotent,
        backoff_base,
        backoff_max,
    })
}

/// `transcode.stream_format` values, as written.
pub(crate) const STREAM_FORMATS: &[(&str, StreamFormat)] = &[
    ("json_array", StreamFormat::JsonArray),
    ("ndjson", StreamFormat::Ndjson),
    ("sse", StreamFormat::Sse),
];
/// `transcode.max_request_bytes` when absent.
pub(crate) const DEFAULT_TRANSCODE_MAX: u64 = 4 * 1024 * 1024;

fn transcode(d: &mut Decoder, node: &Node, path: &str) -> Option<Transcode> {
    let f = d.map(node, path, keys::TRANSCODE)?;
    let descriptors = f
        .required(d, "descriptors")
        .and_then(|n| d.file(n, &f.path("descriptors")));
    let services: Vec<String> = f
        .required(d, "services")
        .map(|n| {
            let p = f.path("services");
            let items = d.seq(n, &p).unwrap_or_default();
            if items.is_empty() {
                d.error(&p, n.mark, "at least one service is required");
            }
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| d.nonempty(item, &format!("{p}[{i}]")))
                .collect()
        })
        .unwrap_or_default();
    let mut flag = |key: &str, default: bool| {
        f.get(key)
            .and_then(|n| d.bool(n, &f.path(key)))
            .unwrap_or(default)
    };
    let auto_mapping = flag("auto_mapping", true);
    let reject_unknown_fields = flag("reject_unknown_fields", false);
    let case_insensitive_enums = flag("case_insensitive_enums", false);
    let use_proto_field_names = flag("use_proto_field_names", false);
    let emit_defaults = flag("emit_defaults", false);
    let stream_format = f
        .get("stream_format")
        .and_then(|n| d.choice(n, &f.path("stream_format"), "stream format", STREAM_FORMATS))
        .unwrap_or(StreamFormat::JsonArray);
    let metadata_headers = match f.get("metadata_headers") {
        Some(n) => {
            let p = f.path("metadata_headers");
            let items = d.seq(n, &p).unwrap_or_default();
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| d.check(item, &format!("{p}[{i}]"), syntax::header_name))
                .collect()
        }
        None => Vec::new(),
    };
    let max_request_bytes = f
        .get("max_request_bytes")
        .and_then(|n| d.size(n, &f.path("max_request_bytes")))
        .unwrap_or(DEFAULT_TRANSCODE_MAX);
    Some(Transcode {
        descriptors: descriptors?,
        services,
        auto_mapping,
        reject_unknown_fields,
        case_insensitive_enums,
        use_proto_field_names,
        emit_defaults,
        stream_format,
        metadata_headers,
        max_request_bytes,
    })
}
fn mirror(d: &mut Decoder, node: &Node, path: &str) -> Option<Mirror> {
    let f = d.map(node, path, keys::MIRROR)?;
    let cluster = f
        .required(d, "cluster")
        .and_then(|n| d.nonempty(n, &f.path("cluster")))?;
    let percent = match f.get("percent") {
        Some(n) => {
            let p = f.path("percent");
            let v = d.check(n, &p, |s| {
                s.parse::<f64>()
                    .ok()
                    .filter(|v| (0.0..=100.0).contains(v))
                    .ok_or_else(|| format!("invalid percent {s:?} (a number from 0 to 100)"))
            })?;
            v
        }
        None => 100.0,
    };
    Some(Mirror { cluster, percent })
}

fn matcher(d: &mut Decoder, node: &Node, path: &str) -> RouteMatch {
    let mut m = RouteMatch {
        host: None,
        path: PathMatch::Prefix("/".to_string()),
        methods: Vec::new(),
        headers: Vec::new(),
    };
    let Some(f) = d.map(node, path, keys::MATCH) else {
        return m;
    };
    m.host = f
        .get("host")
        .and_then(|n| d.check(n, &f.path("host"), syntax::host));
    let written: Vec<&str> = keys::MATCH_PATHS
        .iter()
        .copied()
        .filter(|k| f.get(k).is_some())
        .collect();
    if let Some((first, rest)) = written.split_first() {
        for extra in rest {
            let line = f.key_mark(first).map_or(0, |m| m.line);
            let mark = f.key_mark(extra).unwrap_or(f.mark);
            d.error(
                &f.path(extra),
                mark,
                format!(
                    "`{extra}` conflicts with `{first}` (line {line}): use at most one of `path`, `path_prefix`, `path_template`"
                ),
            );
        }
        if let Some(n) = f.get(first) {
            let p = f.path(first);
            m.path = match *first {
                "path" => d.check(n, &p, syntax::url_path).map(PathMatch::Exact),
                "path_prefix" => d.check(n, &p, syntax::url_path).map(PathMatch::Prefix),
                _ => d.check(n, &p, syntax::template).map(PathMatch::Template),
            }
            .unwrap_or(m.path);
        }
    }
    if let Some(n) = f.get("methods") {
        let p = f.path("methods");
        for (i, item) in d.seq(n, &p).unwrap_or_default().iter().enumerate() {
            if let Some(method) = d.check(item, &format!("{p}[{i}]"), syntax::method) {
                if !m.methods.contains(&method) {
                    m.methods.push(method);
                }
            }
        }
    }
    if let Some(n) = f.get("headers") {
        let p = f.path("headers");
        for (i, item) in d.seq(n, &p).unwrap_or_default().iter().enumerate() {
            if let Some(h) = header_match(d, item, &format!("{p}[{i}]")) {
                m.headers.push(h);
            }
        }
    }
    m
}

fn header_match(d: &mut Decoder, node: &Node, path: &str) -> Option<HeaderMatch> {
    let f = d.map(node, path, keys::HEADER_MATCH)?;
    let name = f.required(d, "name");
    let name = name.and_then(|n| d.check(n, &f.path("name"), syntax::header_name));
    let value = f
        .get("value")
        .and_then(|n| d.check(n, &f.path("value"), syntax::header_value));
    if let Some(n) = f.get("present") {
        let p = f.path("present");
        match d.bool(n, &p) {
            Some(false) => d.error(
                &p,
                n.mark,
                "`present: false` is not supported: a route cannot require a header's absence",
            ),
            Some(true) if f.get("value").is_some() => d.error(
                &p,
                n.mark,
                "write either `value` (an exact match) or `present: true`, not both",
            ),
            _ => {}
        }
    }
    Some(HeaderMatch { name: name?, value })
}

/// The one action of a route. When none (or several) is written, the error is reported
/// and a placeholder returned: the config is rejected anyway.
fn action(d: &mut Decoder, f: &Fields<'_>) -> RouteAction {
    let placeholder = RouteAction::Direct(DirectResponse {
        status: 500,
        body: String::new(),
        content_type: DEFAULT_CONTENT_TYPE.to_string(),
    });
    let written: Vec<&str> = keys::ROUTE_ACTIONS
        .iter()
        .copied()
        .filter(|k| f.get(k).is_some())
        .collect();
    let Some((first, rest)) = written.split_first() else {
        d.error(
            &f.path,
            f.mark,
            "a route needs one of `cluster`, `split`, `direct_response` or `redirect`",
        );
        return placeholder;
    };
    for extra in rest {
        let line = f.key_mark(first).map_or(0, |m| m.line);
        let mark = f.key_mark(extra).unwrap_or(f.mark);
        d.error(
            &f.path(extra),
            mark,
            format!(
                "`{extra}` conflicts with `{first}` (line {line}): a route has exactly one action"
            ),
        );
    }
    if *first != "split" {
        if let Some(mark) = f.get("split_header").and(f.key_mark("split_header")) {
            d.error(
                &f.path("split_header"),
                mark,
                "`split_header` only applies to a route with `split`",
            );
        }
    }
    let Some(n) = f.get(first) else {
        return placeholder;
    };
    let p = f.path(first);
    let action = match *first {
        "cluster" => d.nonempty(n, &p).map(RouteAction::Cluster),
        "split" => split(d, n, &p, f).map(RouteAction::Split),
        "direct_response" => direct(d, n, &p).map(RouteAction::Direct),
        _ => redirect(d, n, &p).map(RouteAction::Redirect),
    };
    action.unwrap_or(placeholder)
}

fn split(d: &mut Decoder, node: &Node, path: &str, route: &Fields<'_>) -> Option<Split> {
    let items = d.seq(node, path)?;
    let mut targets: Vec<WeightedCluster> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let Some(f) = d.map(item, &item_path, keys::SPLIT_TARGET) else {
            continue;
        };
        let cluster = f
            .required(d, "cluster")
            .and_then(|n| d.nonempty(n, &f.path("cluster")));
        let weight = f
            .required(d, "weight")
            .and_then(|n| d.int::<u32>(n, &f.path("weight")));
        let (Some(cluster), Some(weight)) = (cluster, weight) else {
            continue;
        };
        if targets.iter().any(|t| t.cluster == cluster) {
            d.error(
                &f.path("cluster"),
                f.get("cluster").map_or(f.mark, |n| n.mark),
                format!("cluster `{cluster}` appears twice in this split"),
            );
            continue;
        }
        targets.push(WeightedCluster { cluster, weight });
    }
    if items.is_empty() {
        d.error(path, node.mark, "a split needs at least one target");
    } else if !targets.is_empty() && targets.iter().all(|t| t.weight == 0) {
        d.error(
            path,
            node.mark,
            "all split weights are 0: at least one target needs a weight above 0",
        );
    }
    let override_header = route
        .get("split_header")
        .and_then(|n| d.check(n, &route.path("split_header"), syntax::header_name))
        .unwrap_or_else(|| DEFAULT_SPLIT_HEADER.to_string());
    Some(Split {
        targets,
        override_header,
    })
}

fn direct(d: &mut Decoder, node: &Node, path: &str) -> Option<DirectResponse> {
    let f = d.map(node, path, keys::DIRECT_RESPONSE)?;
    let status = f.required(d, "status").and_then(|n| {
        let p = f.path("status");
        let s = d.int::<u16>(n, &p)?;
        if !(100..=599).contains(&s) {
            d.error(&p, n.mark, format!("status {s} is not between 100 and 599"));
            return None;
        }
        Some(s)
    });
    let body = f
        .get("body")
        .and_then(|n| d.string(n, &f.path("body")))
        .unwrap_or_default();
    let content_type = f
        .get("content_type")
        .and_then(|n| d.check(n, &f.path("content_type"), syntax::header_value))
        .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_string());
    Some(DirectResponse {
        status: status?,
        body,
        content_type,
    })
}

fn redirect(d: &mut Decoder, node: &Node, path: &str) -> Option<Redirect> {
    let f = d.map(node, path, keys::REDIRECT)?;
    let location = f.required(d, "location").and_then(|n| {
        let p = f.path("location");
        let l = d.nonempty(n, &p)?;
        d.check(n, &p, syntax::header_value)?;
        Some(l)
    });
    let status = match f.get("status") {
        None => Some(301),
        Some(n) => {
            let p = f.path("status");
            d.int::<u16>(n, &p).and_then(|s| {
                if REDIRECT_STATUSES.contains(&s) {
                    Some(s)
                } else {
                    d.error(
                        &p,
                        n.mark,
                        format!("redirect status {s} is not one of 301, 302, 303, 307, 308"),
                    );
                    None
                }
            })
        }
    };
    let preserve_path = f
        .get("preserve_path")
        .and_then(|n| d.bool(n, &f.path("preserve_path")))
        .unwrap_or(false);
    Some(Redirect {
        location: location?,
        status: status?,
        preserve_path,
    })
}

fn rewrite(d: &mut Decoder, node: &Node, path: &str, matched: &PathMatch) -> Option<Rewrite> {
    let f = d.map(node, path, keys::REWRITE)?;
    let n = f.required(d, "prefix")?;
    let p = f.path("prefix");
    let prefix = d.check(n, &p, syntax::url_path)?;
    if !matches!(matched, PathMatch::Prefix(_)) {
        d.error(
            &p,
            n.mark,
            "`rewrite.prefix` needs the route to match with `path_prefix`",
        );
    }
    Some(Rewrite { prefix })
}

fn header_ops(d: &mut Decoder, node: &Node, path: &str) -> HeaderOps {
    let mut ops = HeaderOps::default();
    let Some(f) = d.map(node, path, keys::HEADER_OPS) else {
        return ops;
    };
    for (key, list) in [("set", &mut ops.set), ("add", &mut ops.add)] {
        let Some(n) = f.get(key) else { continue };
        let p = f.path(key);
        for e in d.free_map(n, &p).unwrap_or_default() {
            let item_path = crate::path::child(&p, &e.key);
            let name = match syntax::header_name(&e.key) {
                Ok(name) => Some(name),
                Err(message) => {
                    d.error(&item_path, e.key_mark, message);
                    None
                }
            };
            let value = d.check(&e.value, &item_path, syntax::header_value);
            if let (Some(name), Some(value)) = (name, value) {
                list.push((name, value));
            }
        }
    }
    if let Some(n) = f.get("remove") {
        let p = f.path("remove");
        for (i, item) in d.seq(n, &p).unwrap_or_default().iter().enumerate() {
            if let Some(name) = d.check(item, &format!("{p}[{i}]"), syntax::header_name) {
                ops.remove.push(name);
            }
        }
    }
    ops
}
