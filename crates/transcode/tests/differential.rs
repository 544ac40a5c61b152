//! Differential property tests: for random messages of the test service (every field
//! kind, well-known types, maps, oneofs, nesting), under every combination of options,
//! the fast JSON ⇄ protobuf codec gives what the `DynamicMessage` path gives, both ways,
//! including on merged, truncated and corrupted wire bytes and on JSON with unknown
//! fields, nulls, repeated keys, enum numbers and odd letter case.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::sync::OnceLock;

use http::Method;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use prost::Message as _;
use sekisho_test_support::grpc_server::build_descriptor_set;
use sekisho_transcode::differential::{check_request, check_response, check_scanner};
use sekisho_transcode::prost_reflect::{
    DynamicMessage, Kind, MapKey, MessageDescriptor, SerializeOptions, Value,
};
use sekisho_transcode::{Options, Transcoder};

/// Transcoders for all 16 combinations of the message-mapping options.
fn transcoders() -> &'static Vec<Transcoder> {
    static T: OnceLock<Vec<Transcoder>> = OnceLock::new();
    T.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grpc");
        let set = build_descriptor_set(&dir, "bookstore.proto");
        (0..16u8)
            .map(|bits| {
                let opts = Options {
                    reject_unknown_fields: bits & 1 != 0,
                    case_insensitive_enums: bits & 2 != 0,
                    use_proto_field_names: bits & 4 != 0,
                    emit_defaults: bits & 8 != 0,
                    ..Options::default()
                };
                Transcoder::new(&set, &["bookstore.v1.Bookstore".to_string()], opts).unwrap()
            })
            .collect()
    })
}

/// splitmix64: the whole random message follows from one proptest-chosen seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

fn random_string(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => String::new(),
        1 => "héllo".into(),
        2 => "quote\" back\\ nl\n ctl\u{1} tab\t 日本".into(),
        3 => "SCIENCE".into(),
        _ => (0..rng.below(12))
            .map(|_| char::from(b'a' + rng.below(26) as u8))
            .collect(),
    }
}

fn random_scalar(kind: &Kind, rng: &mut Rng, depth: u32) -> Option<Value> {
    let i = rng.next();
    Some(match kind {
        Kind::Double => Value::F64(rng.pick(&[
            0.0,
            -0.0,
            1.5,
            -2.25e300,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            i as f64 / 7.0,
        ])),
        Kind::Float => Value::F32(rng.pick(&[
            0.0,
            -0.0,
            1.5,
            f32::MAX,
            f32::NAN,
            f32::NEG_INFINITY,
            i as f32 / 3.0,
        ])),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(rng.pick(&[0, 1, -1, i32::MAX, i32::MIN, i as i32]))
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(rng.pick(&[0, 1, -1, i64::MAX, i64::MIN, 1 << 53, i as i64]))
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(rng.pick(&[0, 1, u32::MAX, i as u32])),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(rng.pick(&[0, 1, u64::MAX, i])),
        Kind::Bool => Value::Bool(rng.chance(50)),
        Kind::String => Value::String(random_string(rng)),
        Kind::Bytes => Value::Bytes((0..rng.below(7)).map(|_| rng.next() as u8).collect()),
        Kind::Enum(_) => Value::EnumNumber(rng.pick(&[0, 1, 2, 2, 1, 99, -5])),
        Kind::Message(m) => Value::Message(random_message(m, rng, depth + 1)?),
    })
}

/// A message that serializes: well-known types get values in their valid ranges.
fn random_message(desc: &MessageDescriptor, rng: &mut Rng, depth: u32) -> Option<DynamicMessage> {
    if depth > 4 {
        return None;
    }
    let mut msg = DynamicMessage::new(desc.clone());
    match desc.full_name() {
        "google.protobuf.Timestamp" | "google.protobuf.Duration" => {
            msg.set_field_by_name("seconds", Value::I64(rng.below(4_000_000_000) as i64));
            let any_nanos = rng.below(1_000_000_000) as i32;
            let nanos = rng.pick(&[0, 500_000_000, 1_000, any_nanos]);
            msg.set_field_by_name("nanos", Value::I32(nanos));
            return Some(msg);
        }
        "google.protobuf.FieldMask" => {
            let paths = vec![Value::String("a_b".into()), Value::String("c.d_e".into())];
            msg.set_field_by_name("paths", Value::List(paths));
            return Some(msg);
        }
        "google.protobuf.Any" => {
            let book = desc
                .parent_pool()
                .get_message_by_name("bookstore.v1.Book")?;
            let inner = random_message(&book, rng, depth + 1)?;
            let url = "type.googleapis.com/bookstore.v1.Book".to_string();
            msg.set_field_by_name("type_url", Value::String(url));
            msg.set_field_by_name("value", Value::Bytes(inner.encode_to_vec().into()));
            return Some(msg);
        }
        "google.protobuf.Value" => {
            let (name, v) = match rng.below(5) {
                0 => ("null_value", Value::EnumNumber(0)),
                1 => ("number_value", Value::F64(rng.pick(&[1.5, -3.0, 0.0]))),
                2 => ("string_value", Value::String(random_string(rng))),
                3 => ("bool_value", Value::Bool(true)),
                _ => {
                    let st = desc
                        .parent_pool()
                        .get_message_by_name("google.protobuf.Struct")?;
                    (
                        "struct_value",
                        Value::Message(random_message(&st, rng, depth + 1)?),
                    )
                }
            };
            msg.set_field_by_name(name, v);
            return Some(msg);
        }
        _ => {}
    }
    let mut oneofs_set = Vec::new();
    for f in desc.fields() {
        if !rng.chance(55) {
            continue;
        }
        if let Some(o) = f.containing_oneof() {
            if oneofs_set.contains(&o.name().to_owned()) {
                continue;
            }
            oneofs_set.push(o.name().to_owned());
        }
        if f.is_map() {
            let Kind::Message(entry) = f.kind() else {
                continue;
            };
            let mut map = std::collections::HashMap::new();
            for _ in 0..rng.below(4) {
                let key = match random_scalar(&entry.map_entry_key_field().kind(), rng, depth)? {
                    Value::String(s) => MapKey::String(s),
                    Value::I32(v) => MapKey::I32(v),
                    Value::I64(v) => MapKey::I64(v),
                    Value::U32(v) => MapKey::U32(v),
                    Value::U64(v) => MapKey::U64(v),
                    Value::Bool(v) => MapKey::Bool(v),
                    _ => continue,
                };
                let value_kind = entry.map_entry_value_field().kind();
                if let Some(v) = random_scalar(&value_kind, rng, depth) {
                    map.insert(key, v);
                }
            }
            msg.set_field(&f, Value::Map(map));
        } else if f.is_list() {
            let items = (0..rng.below(4))
                .filter_map(|_| random_scalar(&f.kind(), rng, depth))
                .collect();
            msg.set_field(&f, Value::List(items));
        } else if let Some(v) = random_scalar(&f.kind(), rng, depth) {
            msg.set_field(&f, v);
        }
    }
    Some(msg)
}

/// The message as a client might write it: either field names, enums as names or
/// numbers, 64-bit integers as strings or numbers, defaults or not, then a few edits
/// (unknown keys, nulls, repeated keys, enum names in another case).
fn client_json(msg: &DynamicMessage, rng: &mut Rng) -> Option<String> {
    let opts = SerializeOptions::new()
        .use_proto_field_name(rng.chance(50))
        .use_enum_numbers(rng.chance(30))
        .stringify_64_bit_integers(rng.chance(70))
        .skip_default_fields(rng.chance(60));
    let mut v = msg
        .serialize_with_options(serde_json::value::Serializer, &opts)
        .ok()?;
    if let serde_json::Value::Object(obj) = &mut v {
        if rng.chance(20) {
            obj.insert("noSuchField".into(), serde_json::json!({"x": [1, null]}));
        }
        if rng.chance(20) {
            let key = rng.pick(&["i32", "nested", "nums", "labels", "choiceS", "genre", "ts"]);
            obj.insert(key.into(), serde_json::Value::Null);
        }
        if rng.chance(15) {
            lowercase_enum_names(&mut v);
        }
    }
    let mut text = serde_json::to_string(&v).ok()?;
    if rng.chance(10) {
        let dup = rng.pick(&[
            r#""i32":5,"#,
            r#""choice_i":1,"#,
            r#""choiceS":"x","#,
            r#""title":"t","#,
        ]);
        text.insert_str(1, dup);
        if text.ends_with(",}") {
            text = text.replace(",}", "}");
        }
    }
    Some(text)
}

fn lowercase_enum_names(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s)
            if ["FICTION", "SCIENCE", "GENRE_UNSPECIFIED"].contains(&s.as_str()) =>
        {
            *s = s.to_lowercase();
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(lowercase_enum_names),
        serde_json::Value::Object(obj) => obj.values_mut().for_each(lowercase_enum_names),
        _ => {}
    }
}

fn message_type(name: &str) -> MessageDescriptor {
    transcoders()[0].pool().get_message_by_name(name).unwrap()
}

/// Wire bytes the upstream might send: the message, merged with a second one, with an
/// unknown field, truncated, or with one byte changed.
fn upstream_wire(desc: &MessageDescriptor, rng: &mut Rng) -> Vec<u8> {
    let mut wire = random_message(desc, rng, 0)
        .map(|m| m.encode_to_vec())
        .unwrap_or_default();
    match rng.below(8) {
        0 => {
            if let Some(m) = random_message(desc, rng, 0) {
                wire.extend_from_slice(&m.encode_to_vec()); // protobuf merge
            }
        }
        1 => wire.extend_from_slice(&[0xf8, 0x3e, 0x07, 0x9a, 0x3f, 0x02, b'h', b'i']), // unknown 999, 1001
        2 if !wire.is_empty() => {
            let cut = rng.below(wire.len() as u64) as usize;
            wire.truncate(cut);
        }
        3 if !wire.is_empty() => {
            let at = rng.below(wire.len() as u64) as usize;
            wire[at] ^= 1 << rng.below(8);
        }
        _ => {}
    }
    wire
}

/// How often the fast codec answered itself: the tests would prove nothing if it always
/// declined.
#[derive(Default)]
struct Taken {
    yes: AtomicUsize,
    all: AtomicUsize,
}

impl Taken {
    fn count(&self, r: Result<bool, String>) -> Result<(), TestCaseError> {
        let taken = r.map_err(TestCaseError::fail)?;
        self.all.fetch_add(1, Relaxed);
        self.yes.fetch_add(usize::from(taken), Relaxed);
        Ok(())
    }

    fn assert_share(&self, at_least: f64, what: &str) {
        let (yes, all) = (self.yes.load(Relaxed), self.all.load(Relaxed));
        let share = yes as f64 / all.max(1) as f64;
        assert!(
            share >= at_least,
            "the fast codec took only {yes} of {all} {what}"
        );
        eprintln!("the fast codec took {yes} of {all} {what}");
    }
}

fn run(cases: u32, test: impl Fn(u64) -> Result<(), TestCaseError>) {
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    if let Err(e) = runner.run(&any::<u64>(), test) {
        panic!("{e}");
    }
}

fn t_for(rng: &mut Rng) -> &'static Transcoder {
    &transcoders()[rng.below(16) as usize]
}

#[test]
fn responses_render_the_same() {
    let taken = Taken::default();
    run(400, |seed| {
        let mut rng = Rng(seed);
        let t = t_for(&mut rng);
        let everything = message_type("bookstore.v1.Everything");
        let wire = upstream_wire(&everything, &mut rng);
        taken.count(check_response(t, &Method::POST, "/v1/echo", &wire))?;
        let book = message_type("bookstore.v1.Book");
        let wire = upstream_wire(&book, &mut rng);
        taken.count(check_response(
            t,
            &Method::GET,
            "/v1/shelves/1/books/2",
            &wire,
        ))
    });
    // Merged sub-messages, truncation and bit flips decline: about half is expected.
    taken.assert_share(0.4, "responses");
}

#[test]
fn requests_encode_the_same() {
    let taken = Taken::default();
    let scanned = Taken::default();
    run(400, |seed| {
        let mut rng = Rng(seed);
        let t = t_for(&mut rng);
        let json = |name: &str, rng: &mut Rng| {
            random_message(&message_type(name), rng, 0)
                .and_then(|m| client_json(&m, rng))
                .unwrap_or_default()
        };
        let ct = Some("application/json");
        let body = json("bookstore.v1.Everything", &mut rng);
        for (m, p) in [
            (Method::POST, "/v1/echo"),
            (Method::POST, "/bookstore.v1.Bookstore/Ping"),
        ] {
            taken.count(check_request(t, &m, p, None, ct, body.as_bytes()))?;
            scanned.count(check_scanner(t, &m, p, body.as_bytes()))?;
        }
        let book = json("bookstore.v1.Book", &mut rng);
        scanned.count(check_scanner(
            t,
            &Method::POST,
            "/v1/shelves/7/books",
            book.as_bytes(),
        ))?;
        let query = rng.pick(&[
            None,
            Some("request_id=r1&book.title=ignored"),
            Some("shelf=9&requestId=x&unknown=1"),
        ]);
        let p = "/v1/shelves/7/books";
        taken.count(check_request(
            t,
            &Method::POST,
            p,
            query,
            ct,
            book.as_bytes(),
        ))?;
        let q = Some("updateMask=title");
        let p = "/v1/shelves/7/books/0";
        taken.count(check_request(t, &Method::PATCH, p, q, ct, book.as_bytes()))?;
        let p = "/v1/shelves/7/books/12";
        taken.count(check_request(
            t,
            &Method::PATCH,
            p,
            None,
            ct,
            book.as_bytes(),
        ))?;
        let publish = json("bookstore.v1.PublishBookRequest", &mut rng);
        let p = "/v1/shelves/1/books/2:publish";
        taken.count(check_request(
            t,
            &Method::POST,
            p,
            None,
            ct,
            publish.as_bytes(),
        ))
    });
    taken.assert_share(0.4, "requests");
    // Repeated keys, unknown fields under `reject_unknown_fields` and `null` Values
    // decline; most bodies are plain.
    scanned.assert_share(0.5, "requests in the scanner");
}

/// Documents at the edges of what the scanner reads itself (escapes, number forms,
/// whitespace, nulls, ignored and delegated values, nesting): wherever it takes one, it
/// writes what the serde_json pass writes, and the request is what the reference sends.
#[test]
fn the_scanner_writes_what_the_serde_json_pass_writes() {
    let nested_95 = format!(
        "{{\"nested\":{}{{}}{}}}",
        "{\"child\":".repeat(95),
        "}".repeat(95)
    );
    let deep = format!("{{\"st\":{}1{}}}", "{\"a\":[".repeat(60), "]}".repeat(60));
    let deep_nested = format!(
        "{{\"nested\":{}{{}}{}}}",
        "{\"child\":".repeat(110),
        "}".repeat(110)
    );
    let docs = [
        r#"{}"#,
        r#" { } "#,
        "\t{\n\"i32\" :\r 5 ,\"s\":\"x\"\n}\n",
        r#"{"s":"esc\"aped\\ \u00e9 \ud83d\ude00 \n"}"#,
        r#"{"s":"lone \ud800"}"#,
        "{\"s\":\"ctl \u{1}\"}",
        r#"{"s":"utf-8 héllo 日本 and more than eight bytes"}"#,
        r#"{"i32":-0}"#,
        r#"{"i32":0}"#,
        r#"{"i32":007}"#,
        r#"{"i32":-2147483648,"u32":4294967295,"i64":"-9223372036854775808"}"#,
        r#"{"i32":2147483648}"#,
        r#"{"u64":18446744073709551615,"i64":9223372036854775807}"#,
        r#"{"u64":18446744073709551616}"#,
        r#"{"i64":123456789012345678}"#,
        r#"{"i64":1234567890123456789}"#,
        r#"{"i32":1e3,"d":1.5,"f":-2.5e-3,"u32":3.0}"#,
        r#"{"i32":1.5}"#,
        r#"{"d":"NaN","f":"-Infinity","i32":"12","u64":"77"}"#,
        r#"{"d":1.}"#,
        r#"{"d":-}"#,
        r#"{"d":01.5}"#,
        r#"{"b":true,"by":"aGVsbG8=","genre":"SCIENCE","genres":["FICTION",2,"nope"]}"#,
        r#"{"genre":"science"}"#,
        r#"{"genre":7}"#,
        r#"{"genre":1.0}"#,
        r#"{"by":"aGVsbG8-_w"}"#,
        r#"{"by":"!!"}"#,
        r#"{"nums":[1,2,-3, 4 ],"genres":[]}"#,
        r#"{"nums":[1,null]}"#,
        r#"{"nums":[1,]}"#,
        r#"{"labels":{"a":"b","":"","a":"c"},"nestedMap":{"1":{"name":"x"},"-2":{}}}"#,
        r#"{"nestedMap":{"x":{}}}"#,
        r#"{"labels":{"k\n":"v\t"}}"#,
        r#"{"nested":{"name":"a","child":{"n":2}},"nested_map":{}}"#,
        r#"{"i32":null,"nested":null,"nums":null,"labels":null,"ts":null,"val":null}"#,
        r#"{"ts":"2024-01-02T03:04:05Z","dur":"1.5s","mask":"a,bC","wi32":5,"wstr":"s"}"#,
        r#"{"ts":"not a time"}"#,
        r#"{"st":{"a":[1,"x",null,{"b":true}]},"val":[1,{"c":null}],"any":{"@type":"type.googleapis.com/google.protobuf.Duration","value":"2s"}}"#,
        r#"{"unknown":{"x":[1,{"y":"]}"}]},"s":"after"}"#,
        r#"{"unknown":[1,2}"#,
        r#"{"unknown":tru,"s":"x"}"#,
        "{\"unknown\":\"\u{1}\"}",
        r#"{"choiceS":"a","choiceI":1}"#,
        r#"{"choiceS":null,"choiceI":1}"#,
        r#"{"i32":1,"i32":2}"#,
        r#"{"otherName":"r","renamed":"p","snake_name":"s","snakeName":"t"}"#,
        r#"{"i\u0033\u0032":5}"#,
        r#"{"i32":5}x"#,
        r#"{"i32":5"#,
        r#"{"i32" 5}"#,
        r#"{"s":"unterminated}"#,
        r#"[1]"#,
        &nested_95,
    ];
    let mut took = 0;
    for t in transcoders() {
        for doc in &docs {
            let body = doc.as_bytes();
            let scanned = check_scanner(t, &Method::POST, "/v1/echo", body)
                .unwrap_or_else(|e| panic!("{doc}: {e}"));
            took += usize::from(scanned);
            let ct = Some("application/json");
            check_request(t, &Method::POST, "/v1/echo", None, ct, body)
                .unwrap_or_else(|e| panic!("{doc}: {e}"));
        }
    }
    // Across the 16 option sets the plain documents above are mostly the scanner's.
    assert!(
        took >= docs.len() * 4,
        "the scanner took only {took} documents"
    );
    let t = &transcoders()[0];
    // Past its depth limit the scanner declines (the serde_json pass counts the nesting
    // of delegated values with the rest of the document).
    for doc in [&deep, &deep_nested] {
        assert_eq!(
            check_scanner(t, &Method::POST, "/v1/echo", doc.as_bytes()),
            Ok(false)
        );
    }
    for doc in [
        r#"{"s":"esc\"aped"}"#,
        r#"{"i32":-0,"d":1.5,"i64":1234567890123456789}"#,
        r#"{"unknown":{"x":[1,{"y":"]}"}]},"s":"after"}"#,
        r#"{"ts":"2024-01-02T03:04:05Z","st":{"a":[1]}}"#,
    ] {
        assert_eq!(
            check_scanner(t, &Method::POST, "/v1/echo", doc.as_bytes()),
            Ok(true),
            "{doc}"
        );
    }
}

/// Invalid UTF-8 anywhere in a JSON body (a known field, an ignored one, a key) is left to
/// the `DynamicMessage` path, which gives the answer; the codec takes valid bodies.
#[test]
fn bodies_with_invalid_utf8_are_decided_by_the_reference_path() {
    let t = &transcoders()[0];
    let ct = Some("application/json");
    for body in [
        &b"{\"s\":\"a\xffb\"}"[..],
        b"{\"unknownField\":\"\xc3\",\"s\":\"ok\"}",
        b"{\"\xe6\x97\":1}",
    ] {
        let taken = check_request(t, &Method::POST, "/v1/echo", None, ct, body)
            .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(body)));
        assert!(!taken, "{}", String::from_utf8_lossy(body));
    }
    let valid = "{\"s\":\"日本\",\"i32\":1}".as_bytes();
    assert_eq!(
        check_request(t, &Method::POST, "/v1/echo", None, ct, valid),
        Ok(true)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_encodes_the_same(
        sel in 0usize..16,
        body in prop_oneof![
            "\\PC{0,60}",
            "\\{(\"[a-zA-Z_]{1,10}\": ?(-?[0-9]{1,20}(\\.[0-9]{1,3})?(e[0-9])?|\"[a-zA-Z0-9:.=/+_-]{0,12}\"|true|null|\\[\\]|\\{\\}|\\[1, ?\"x\", ?null\\]|\\{\"[a-z0-9]{1,3}\": ?\"v\"\\}),? ?){0,6}\\}",
        ],
    ) {
        let t = &transcoders()[sel];
        let ct = Some("application/json");
        for (m, p) in [(Method::POST, "/v1/echo"), (Method::POST, "/v1/shelves/1/books"), (Method::PATCH, "/v1/shelves/1/books/2")] {
            check_request(t, &m, p, None, ct, body.as_bytes()).map_err(TestCaseError::fail)?;
            check_scanner(t, &m, p, body.as_bytes()).map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn arbitrary_wire_renders_the_same(sel in 0usize..16, wire in proptest::collection::vec(any::<u8>(), 0..64)) {
        let t = &transcoders()[sel];
        check_response(t, &Method::POST, "/v1/echo", &wire).map_err(TestCaseError::fail)?;
    }
}
