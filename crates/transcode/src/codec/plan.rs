//! Message plans: what the codec needs per message type, compiled once per descriptor
//! set (field tables by number and by name, wire tags, JSON keys), and the decision of
//! which types the codec handles itself.

use std::collections::HashMap;

use prost::encoding::WireType;
use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, Syntax};

/// Index of a plan in its [`Codec`].
pub(crate) type PlanId = u32;

/// Past this many oneofs a message keeps to the `DynamicMessage` path (the codec tracks
/// oneof members in a fixed array).
pub(crate) const MAX_ONEOFS: usize = 8;

/// The plans of every message type reachable from a transcoder's methods.
#[derive(Debug, Default)]
pub(crate) struct Codec {
    plans: Vec<MsgPlan>,
    ids: HashMap<String, PlanId>,
}

/// One message type the codec handles itself.
#[derive(Debug)]
pub(crate) struct MsgPlan {
    /// In field-number order (the order prost-reflect encodes and serializes in).
    pub fields: Vec<FieldPlan>,
    by_number: ByNumber,
    names: Names,
}

/// One field of a planned message.
#[derive(Debug)]
pub(crate) struct FieldPlan {
    pub number: u32,
    /// The element type (lists), the value type (maps), or the field's type.
    pub ty: Scalar,
    pub shape: Shape,
    /// Set-ness is kept even for default values (messages, oneof members, `optional`).
    pub presence: bool,
    /// Repeated scalars written as one length-delimited run.
    pub packed: bool,
    /// Index of the containing oneof (synthetic ones included).
    pub oneof: Option<u8>,
    /// `"jsonName":` and `"proto_name":`, escaped.
    pub json_key: Box<[u8]>,
    pub proto_key: Box<[u8]>,
    /// The key for the element's own wire type, and for length-delimited.
    pub tag: Tag,
    pub ld_tag: Tag,
}

/// How many values a field holds.
#[derive(Debug)]
pub(crate) enum Shape {
    Single,
    List,
    /// A map: the field's `ty` is the value type; tags of the entry's key and value.
    Map {
        key: Scalar,
        key_tag: Tag,
        value_tag: Tag,
    },
}

/// The type of one value.
#[derive(Debug, Clone)]
pub(crate) enum Scalar {
    Double,
    Float,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Bool,
    String,
    Bytes,
    Enum(EnumDescriptor),
    Message(PlanId),
    /// A message the codec hands to prost-reflect (well-known types with their own JSON
    /// form, proto2 messages): exact by construction, as it is the same code.
    Delegate(Delegated),
}

/// A delegated message type.
#[derive(Debug, Clone)]
pub(crate) struct Delegated {
    pub desc: MessageDescriptor,
    /// The deepest nesting its values can have; `None` if the type is recursive. Decoding
    /// it on its own restarts prost's recursion budget, so deep values must not be
    /// delegated (see `render`).
    pub max_depth: Option<u32>,
}

/// A field key (tag and wire type), varint-encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tag {
    bytes: [u8; 5],
    len: u8,
}

impl Tag {
    fn new(number: u32, wire_type: WireType) -> Tag {
        let mut bytes = [0u8; 5];
        let mut buf = &mut bytes[..];
        prost::encoding::encode_key(number, wire_type, &mut buf);
        let len = 5 - buf.len();
        Tag {
            bytes,
            len: len as u8,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl Scalar {
    /// The wire type of one value of this type.
    pub fn wire_type(&self) -> WireType {
        match self {
            Scalar::Double | Scalar::Fixed64 | Scalar::Sfixed64 => WireType::SixtyFourBit,
            Scalar::Float | Scalar::Fixed32 | Scalar::Sfixed32 => WireType::ThirtyTwoBit,
            Scalar::String | Scalar::Bytes | Scalar::Message(_) | Scalar::Delegate(_) => {
                WireType::LengthDelimited
            }
            _ => WireType::Varint,
        }
    }

    /// True for the types a repeated field may pack.
    pub fn packable(&self) -> bool {
        self.wire_type() != WireType::LengthDelimited
    }
}

#[derive(Debug)]
enum ByNumber {
    /// `index[number]`, `u16::MAX` for none: field numbers are small in practice.
    Dense(Vec<u16>),
    /// `(number, index)` sorted by number.
    Sparse(Vec<(u32, u16)>),
}

#[derive(Debug)]
enum Names {
    /// A few names: a linear scan beats hashing.
    Few(Vec<(Box<str>, u16)>),
    Many(HashMap<Box<str>, u16>),
}

const DENSE_LIMIT: u32 = 1024;
const FEW_NAMES: usize = 12;

impl MsgPlan {
    /// The field with this number.
    #[inline]
    pub fn by_number(&self, number: u32) -> Option<usize> {
        match &self.by_number {
            ByNumber::Dense(v) => match v.get(number as usize) {
                Some(&i) if i != u16::MAX => Some(usize::from(i)),
                _ => None,
            },
            ByNumber::Sparse(v) => v
                .binary_search_by_key(&number, |&(n, _)| n)
                .ok()
                .map(|i| usize::from(v[i].1)),
        }
    }

    /// The field a JSON key names: its JSON name first, then its proto name, as
    /// prost-reflect looks them up.
    #[inline]
    pub fn by_name(&self, name: &str) -> Option<usize> {
        match &self.names {
            Names::Few(v) => v
                .iter()
                .find(|(n, _)| &**n == name)
                .map(|&(_, i)| usize::from(i)),
            Names::Many(m) => m.get(name).map(|&i| usize::from(i)),
        }
    }
}

impl Codec {
    /// Plans every message type reachable from `roots` that the codec can handle.
    pub fn new(roots: impl IntoIterator<Item = MessageDescriptor>) -> Codec {
        let mut codec = Codec::default();
        let mut todo: Vec<MessageDescriptor> = roots.into_iter().collect();
        let mut seen = std::collections::HashSet::new();
        let mut plannable = Vec::new();
        while let Some(m) = todo.pop() {
            if !seen.insert(m.full_name().to_owned()) {
                continue;
            }
            if !locally_plannable(&m) {
                continue;
            }
            for f in m.fields() {
                if let Kind::Message(sub) = f.kind() {
                    if sub.is_map_entry() {
                        if let Kind::Message(v) = sub.map_entry_value_field().kind() {
                            todo.push(v);
                        }
                    } else {
                        todo.push(sub);
                    }
                }
            }
            plannable.push(m);
        }
        for (i, m) in plannable.iter().enumerate() {
            codec.ids.insert(m.full_name().to_owned(), i as PlanId);
        }
        for m in plannable {
            let plan = codec.build(&m);
            codec.plans.push(plan);
        }
        codec
    }

    /// The plan of a message type, if the codec handles it.
    pub fn plan_id(&self, desc: &MessageDescriptor) -> Option<PlanId> {
        self.ids.get(desc.full_name()).copied()
    }

    #[inline]
    pub fn plan(&self, id: PlanId) -> &MsgPlan {
        &self.plans[id as usize]
    }

    fn build(&self, desc: &MessageDescriptor) -> MsgPlan {
        let oneof_names: Vec<String> = desc.oneofs().map(|o| o.full_name().to_owned()).collect();
        let mut fields = Vec::with_capacity(desc.fields().len());
        let mut name_map: HashMap<Box<str>, u16> = HashMap::new();
        let mut by_number = Vec::new();
        for (i, f) in desc.fields().enumerate() {
            let idx = i as u16;
            by_number.push((f.number(), idx));
            fields.push(self.field_plan(&f, &oneof_names));
        }
        // Proto names first so that JSON names win a clash, as in prost-reflect.
        for (i, f) in desc.fields().enumerate() {
            name_map.insert(f.name().into(), i as u16);
        }
        for (i, f) in desc.fields().enumerate() {
            name_map.insert(f.json_name().into(), i as u16);
        }
        let names = if name_map.len() <= FEW_NAMES {
            Names::Few(name_map.into_iter().collect())
        } else {
            Names::Many(name_map)
        };
        let max = by_number.iter().map(|&(n, _)| n).max().unwrap_or(0);
        let by_number = if max < DENSE_LIMIT {
            let mut dense = vec![u16::MAX; max as usize + 1];
            for &(n, i) in &by_number {
                dense[n as usize] = i;
            }
            ByNumber::Dense(dense)
        } else {
            ByNumber::Sparse(by_number)
        };
        MsgPlan {
            fields,
            by_number,
            names,
        }
    }

    fn field_plan(&self, f: &FieldDescriptor, oneof_names: &[String]) -> FieldPlan {
        let (ty, shape) = if let (true, Kind::Message(entry)) = (f.is_map(), f.kind()) {
            let key = self.scalar(&entry.map_entry_key_field().kind());
            let value = self.scalar(&entry.map_entry_value_field().kind());
            let shape = Shape::Map {
                key_tag: Tag::new(1, key.wire_type()),
                value_tag: Tag::new(2, value.wire_type()),
                key,
            };
            (value, shape)
        } else if f.is_list() {
            (self.scalar(&f.kind()), Shape::List)
        } else {
            (self.scalar(&f.kind()), Shape::Single)
        };
        let oneof = f.containing_oneof().and_then(|o| {
            oneof_names
                .iter()
                .position(|n| n == o.full_name())
                .map(|p| p as u8)
        });
        let key = |name: &str| {
            let mut k = serde_json::to_vec(name).unwrap_or_default();
            k.push(b':');
            k.into_boxed_slice()
        };
        FieldPlan {
            number: f.number(),
            packed: f.is_packed() && ty.packable(),
            tag: Tag::new(f.number(), ty.wire_type()),
            ld_tag: Tag::new(f.number(), WireType::LengthDelimited),
            ty,
            shape,
            presence: f.supports_presence(),
            oneof,
            json_key: key(f.json_name()),
            proto_key: key(f.name()),
        }
    }

    fn scalar(&self, kind: &Kind) -> Scalar {
        match kind {
            Kind::Double => Scalar::Double,
            Kind::Float => Scalar::Float,
            Kind::Int32 => Scalar::Int32,
            Kind::Int64 => Scalar::Int64,
            Kind::Uint32 => Scalar::Uint32,
            Kind::Uint64 => Scalar::Uint64,
            Kind::Sint32 => Scalar::Sint32,
            Kind::Sint64 => Scalar::Sint64,
            Kind::Fixed32 => Scalar::Fixed32,
            Kind::Fixed64 => Scalar::Fixed64,
            Kind::Sfixed32 => Scalar::Sfixed32,
            Kind::Sfixed64 => Scalar::Sfixed64,
            Kind::Bool => Scalar::Bool,
            Kind::String => Scalar::String,
            Kind::Bytes => Scalar::Bytes,
            Kind::Enum(e) => Scalar::Enum(e.clone()),
            Kind::Message(m) => match self.plan_id(m) {
                Some(id) => Scalar::Message(id),
                None => Scalar::Delegate(Delegated {
                    desc: m.clone(),
                    max_depth: static_depth(m, &mut Vec::new()),
                }),
            },
        }
    }
}

/// True if the codec can handle a message's own fields: proto3, no extensions, no groups,
/// no `google.protobuf.NullValue` (JSON `null` means a value there), few oneofs, and not a
/// well-known type with its own JSON form.
fn locally_plannable(m: &MessageDescriptor) -> bool {
    if m.full_name().starts_with("google.protobuf.")
        || m.is_map_entry()
        || m.parent_file().syntax() != Syntax::Proto3
        || m.extensions().len() > 0
        || m.oneofs().len() > MAX_ONEOFS
        || m.fields().len() >= usize::from(u16::MAX)
    {
        return false;
    }
    m.fields().all(|f| {
        let kind = if f.is_map() {
            match f.kind() {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                k => k,
            }
        } else {
            f.kind()
        };
        !f.is_group()
            && !matches!(kind, Kind::Enum(e) if e.full_name() == "google.protobuf.NullValue")
    })
}

/// The deepest message nesting a value of `m` can have, `None` if `m` is recursive.
fn static_depth(m: &MessageDescriptor, stack: &mut Vec<String>) -> Option<u32> {
    if stack.iter().any(|s| s == m.full_name()) {
        return None;
    }
    stack.push(m.full_name().to_owned());
    let mut deepest = 0;
    for f in m.fields() {
        if let Kind::Message(sub) = f.kind() {
            deepest = deepest.max(static_depth(&sub, stack)? + 1);
        }
    }
    stack.pop();
    Some(deepest)
}
