//! The compiled transcoder: descriptor pool, bindings and the path trie.

use std::sync::Arc;

use http::Method;
use prost_reflect::{DescriptorPool, DeserializeOptions, SerializeOptions, Value};

use crate::codec::Codec;
use crate::error::TranscodeError;
use crate::fast::FastPlans;
use crate::request::{BodyFormat, Matched};
use crate::rules::{auto_binding, bindings_from_rule, Binding, Body};
use crate::trie::Trie;

/// How a server-streaming response is written to the HTTP client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StreamFormat {
    /// One JSON array, an element per message (Envoy's and grpc-gateway's default shape).
    #[default]
    JsonArray,
    /// One JSON object per line (`application/x-ndjson`).
    Ndjson,
    /// Server-Sent Events: `data: {json}` per message (`text/event-stream`).
    Sse,
}

/// Transcoding options (the route's `transcode:` settings).
#[derive(Debug, Clone)]
pub struct Options {
    /// Map methods without an http rule as `POST /pkg.Service/Method` (default true).
    pub auto_mapping: bool,
    /// Reject unknown JSON fields and query parameters with 400 (default: ignore them).
    pub reject_unknown_fields: bool,
    /// Accept enum names in any letter case (default false).
    pub case_insensitive_enums: bool,
    /// Write proto field names (`page_size`) instead of lowerCamelCase / `json_name`.
    pub use_proto_field_names: bool,
    /// Write fields that hold their default value (default false).
    pub emit_defaults: bool,
    /// How server streams are written.
    pub stream_format: StreamFormat,
    /// The largest gRPC message accepted from the upstream, in bytes (default 4 MiB).
    pub max_message_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            auto_mapping: true,
            reject_unknown_fields: false,
            case_insensitive_enums: false,
            use_proto_field_names: false,
            emit_defaults: false,
            stream_format: StreamFormat::JsonArray,
            max_message_bytes: 4 << 20,
        }
    }
}

/// Shared, read-only state of one transcoder; cloned cheaply into response transcoders.
#[derive(Debug)]
pub(crate) struct Shared {
    pub pool: DescriptorPool,
    pub opts: Options,
    pub ser: SerializeOptions,
    pub de: DeserializeOptions,
    /// Plans of the fast JSON ⇄ protobuf codec.
    pub codec: Codec,
}

/// HTTP/JSON and HTTP/Protobuf to gRPC for the chosen services of one descriptor set.
///
/// Built once per config load; immutable and cheap to share.
#[derive(Debug)]
pub struct Transcoder {
    pub(crate) shared: Arc<Shared>,
    pub(crate) bindings: Vec<Binding>,
    trie: Trie,
}

impl Transcoder {
    /// Loads a `FileDescriptorSet` (`protoc --include_imports --descriptor_set_out`) and
    /// compiles the `google.api.http` rules of `services` (full names, `pkg.Service`).
    pub fn new(
        descriptor_set: &[u8],
        services: &[String],
        opts: Options,
    ) -> Result<Transcoder, TranscodeError> {
        let pool = DescriptorPool::decode(descriptor_set)
            .map_err(|e| TranscodeError::Descriptors(e.to_string()))?;
        let http_ext = pool.get_extension_by_name("google.api.http");
        let mut bindings = Vec::new();
        for name in services {
            let svc = pool
                .get_service_by_name(name)
                .ok_or_else(|| TranscodeError::UnknownService(name.clone()))?;
            for method in svc.methods() {
                let options = method.options();
                let rule = http_ext
                    .as_ref()
                    .filter(|ext| options.has_extension(ext))
                    .map(|ext| options.get_extension(ext));
                match rule.as_deref() {
                    Some(Value::Message(rule)) => bindings_from_rule(&method, rule, &mut bindings)?,
                    _ if opts.auto_mapping => bindings.push(auto_binding(&method)?),
                    _ => {}
                }
            }
        }
        let mut trie = Trie::default();
        for (id, b) in bindings.iter().enumerate() {
            if let Err(first) = trie.insert(&b.template, b.http_method.clone(), id) {
                let first = &bindings[first];
                if first.method == b.method {
                    continue; // the same method mapped twice by its own bindings
                }
                return Err(TranscodeError::Conflict {
                    first: first.method.full_name().to_owned(),
                    second: b.method.full_name().to_owned(),
                    pattern: format!(
                        "{} {}",
                        b.http_method.as_ref().map_or("*", |m| m.as_str()),
                        describe(b)
                    ),
                });
            }
        }
        let codec = Codec::new(bindings.iter().flat_map(|b| {
            let body = match &b.body {
                Body::Field(f) => match f.kind() {
                    prost_reflect::Kind::Message(m) => Some(m),
                    _ => None,
                },
                _ => None,
            };
            [Some(b.method.input()), Some(b.method.output()), body]
                .into_iter()
                .flatten()
        }));
        for b in &mut bindings {
            b.fast = FastPlans::new(b, &codec);
        }
        let ser = SerializeOptions::new()
            .stringify_64_bit_integers(true)
            .use_proto_field_name(opts.use_proto_field_names)
            .skip_default_fields(!opts.emit_defaults);
        let de = DeserializeOptions::new().deny_unknown_fields(opts.reject_unknown_fields);
        Ok(Transcoder {
            shared: Arc::new(Shared {
                pool,
                opts,
                ser,
                de,
                codec,
            }),
            bindings,
            trie,
        })
    }

    /// Finds the method for a request: `path` is the normalized path without the query,
    /// `query` the raw query string (without `?`). `None` means no rule matches.
    pub fn route<'a>(
        &'a self,
        method: &Method,
        path: &'a str,
        query: Option<&'a str>,
    ) -> Option<Matched<'a>> {
        let (id, verb) = self.trie.find(method, path)?;
        let binding = self.bindings.get(id)?;
        Some(Matched {
            transcoder: self,
            binding,
            path,
            verb_len: verb.map_or(0, |v| v.len() + 1),
            query,
        })
    }

    /// The descriptor pool (to render `Any` and error details, or to look up messages).
    pub fn pool(&self) -> &DescriptorPool {
        &self.shared.pool
    }

    /// The options this transcoder was built with.
    pub fn options(&self) -> &Options {
        &self.shared.opts
    }

    /// Every mapped `(HTTP method or "*", template, gRPC path)`, for diagnostics and docs.
    pub fn rules(&self) -> impl Iterator<Item = (&str, String, &str)> + '_ {
        self.bindings.iter().map(|b| {
            (
                b.http_method.as_ref().map_or("*", |m| m.as_str()),
                describe(b),
                &*b.grpc_path,
            )
        })
    }

    /// The request format for a content type; see [`BodyFormat::from_content_type`].
    pub fn body_format(content_type: Option<&str>) -> Result<BodyFormat, TranscodeError> {
        BodyFormat::from_content_type(content_type)
    }
}

fn describe(b: &Binding) -> String {
    use crate::template::Segment;
    let mut s = String::new();
    for seg in &b.template.segments {
        s.push('/');
        match seg {
            Segment::Literal(l) => s.push_str(l),
            Segment::Single => s.push('*'),
            Segment::Multi => s.push_str("**"),
        }
    }
    if s.is_empty() {
        s.push('/');
    }
    if let Some(v) = &b.template.verb {
        s.push(':');
        s.push_str(v);
    }
    s
}
