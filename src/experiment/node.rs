//! A YAML document as a tree of nodes that remember where they stand in the file.
//!
//! serde-saphyr parses the text into this tree (so syntax errors keep their line and
//! column); variables are substituted on the tree; and the typed model is deserialized
//! from the tree by [`NodeDeserializer`]. Deserializing from our own tree, rather than
//! straight from the text, is what lets one pass report every unknown key (with the
//! nearest valid one) instead of stopping at the first, and lets later semantic checks
//! point at the line of any field by its path.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

/// 1-based line and column in the source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
    /// The scalar came out of `${...}` substitution: a string that may stand for a number
    /// or a boolean, as the same text written plainly in YAML would.
    pub substituted: bool,
    /// The source text of a plain scalar that YAML read as a number or a boolean
    /// (`1.10`, `0x1F`, `true`): a field that expects a string takes this text.
    pub raw: Option<String>,
}

impl Node {
    /// Parses YAML text with the YAML 1.2 core schema: only `true` and `false` are
    /// booleans (`no`, `on`, `yes` are strings). The error carries the location
    /// serde-saphyr found.
    pub fn parse(text: &str) -> Result<Node, (String, Option<Pos>)> {
        let options = serde_saphyr::options! { strict_booleans: true };
        match serde_saphyr::from_str_with_options::<Spanned<RawValue>>(text, options) {
            Ok(spanned) => Ok(Node::from_spanned(spanned, text)),
            Err(e) => {
                let pos = e.location().map(|l| Pos {
                    line: l.line() as u32,
                    column: l.column() as u32,
                });
                Err((syntax_message(&e.to_string()), pos))
            }
        }
    }

    fn from_spanned(s: Spanned<RawValue>, text: &str) -> Node {
        let pos = Pos {
            line: s.referenced.line() as u32,
            column: s.referenced.column() as u32,
        };
        let raw = match s.value {
            RawValue::Bool(_) | RawValue::Int(_) | RawValue::UInt(_) | RawValue::Float(_) => {
                source_text(&s.defined, text)
            }
            _ => None,
        };
        let value = match s.value {
            RawValue::Null => Value::Null,
            RawValue::Bool(b) => Value::Bool(b),
            RawValue::Int(i) => Value::Int(i),
            RawValue::UInt(u) => Value::UInt(u),
            RawValue::Float(f) => Value::Float(f),
            RawValue::Str(s) => Value::Str(s),
            RawValue::Seq(items) => Value::Seq(
                items
                    .into_iter()
                    .map(|i| Node::from_spanned(i, text))
                    .collect(),
            ),
            RawValue::Map(entries) => Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        let name = match k.value {
                            RawKey(name, true) => name,
                            // A number or boolean as a key: keep what was written.
                            RawKey(name, false) => source_text(&k.defined, text).unwrap_or(name),
                        };
                        let key = Key {
                            name,
                            pos: Pos {
                                line: k.referenced.line() as u32,
                                column: k.referenced.column() as u32,
                            },
                        };
                        (key, Node::from_spanned(v, text))
                    })
                    .collect(),
            ),
        };
        Node {
            value,
            pos,
            substituted: false,
            raw,
        }
    }

    /// A scalar as text: a string as it is, a number or boolean as it was written
    /// (`1.10` stays `1.10`). None for null, lists and mappings.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Bool(_) | Value::Int(_) | Value::UInt(_) | Value::Float(_)
                if self.raw.is_some() =>
            {
                self.raw.clone()
            }
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::UInt(u) => Some(u.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn key_pos(&self, key: &str) -> Option<Pos> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.name == key)
                .map(|(k, _)| k.pos),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The position of the node at `path` (map keys and sequence indexes). A path that
    /// ends in a key points at the key itself, which is where an editor puts the cursor;
    /// a path that does not exist resolves to the deepest part that does.
    pub fn pos_of(&self, path: &[PathSeg]) -> Pos {
        let mut node = self;
        let mut pos = self.pos;
        for seg in path {
            let next = match (seg, &node.value) {
                (PathSeg::Key(k), Value::Map(entries)) => entries
                    .iter()
                    .find(|(key, _)| key.name == *k)
                    .map(|(key, v)| (key.pos, v)),
                (PathSeg::Index(i), Value::Seq(items)) => items.get(*i).map(|v| (v.pos, v)),
                _ => None,
            };
            match next {
                Some((p, n)) => {
                    pos = p;
                    node = n;
                }
                None => break,
            }
        }
        pos
    }

    /// The path of the node (or the key) that stands at `pos`, if any.
    pub fn path_at(&self, pos: Pos) -> Option<Vec<PathSeg>> {
        if self.pos == pos {
            return Some(Vec::new());
        }
        let children: Vec<(PathSeg, Option<Pos>, &Node)> = match &self.value {
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| (PathSeg::Key(k.name.clone()), Some(k.pos), v))
                .collect(),
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (PathSeg::Index(i), None, v))
                .collect(),
            _ => return None,
        };
        for (seg, key_pos, child) in children {
            if key_pos == Some(pos) {
                return Some(vec![seg]);
            }
            if let Some(mut rest) = child.path_at(pos) {
                rest.insert(0, seg);
                return Some(rest);
            }
        }
        None
    }

    /// Removes the entry at `path` (a map key or a sequence item). Returns whether it existed.
    pub fn remove(&mut self, path: &[PathSeg]) -> bool {
        let Some((last, parents)) = path.split_last() else {
            return false;
        };
        let mut node = self;
        for seg in parents {
            let next = match (seg, &mut node.value) {
                (PathSeg::Key(k), Value::Map(entries)) => entries
                    .iter_mut()
                    .find(|(key, _)| key.name == *k)
                    .map(|(_, v)| v),
                (PathSeg::Index(i), Value::Seq(items)) => items.get_mut(*i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => return false,
            }
        }
        match (last, &mut node.value) {
            (PathSeg::Key(k), Value::Map(entries)) => {
                let before = entries.len();
                entries.retain(|(key, _)| key.name != *k);
                entries.len() != before
            }
            (PathSeg::Index(i), Value::Seq(items)) if *i < items.len() => {
                items.remove(*i);
                true
            }
            _ => false,
        }
    }

    /// Kind of YAML value, as a user would name it in an error message.
    pub fn describe(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::UInt(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// One step of a path into the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

impl fmt::Display for PathSeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSeg::Key(k) => write!(f, ".{k}"),
            PathSeg::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// Renders a path the way users write it: `faults[0].pause.duration`.
pub fn path_string(path: &[PathSeg]) -> String {
    let s: String = path.iter().map(ToString::to_string).collect();
    s.trim_start_matches('.').to_string()
}

/// The source text a location spans, if serde-saphyr recorded its bytes.
fn source_text(at: &serde_saphyr::Location, text: &str) -> Option<String> {
    let span = at.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len()?).ok()?;
    let s = text.get(start..start.checked_add(len)?)?.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// serde-saphyr's messages already say where; we print the location ourselves.
fn syntax_message(msg: &str) -> String {
    let mut first = msg.lines().next().unwrap_or(msg).trim();
    first = first.strip_prefix("error:").unwrap_or(first).trim_start();
    // "line 3 column 9: mapping values are not allowed" -> keep what follows the location.
    if first.starts_with("line ") {
        if let Some((_, rest)) = first.split_once(": ") {
            first = rest;
        }
    }
    let first = match first.find(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    format!("YAML syntax error: {first}")
}

enum RawValue {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawValue>>),
    Map(Vec<(Spanned<RawKey>, Spanned<RawValue>)>),
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<RawValue, E> {
                Ok(RawValue::Null)
            }
            fn visit_none<E>(self) -> Result<RawValue, E> {
                Ok(RawValue::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawValue, D::Error> {
                RawValue::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawValue, E> {
                Ok(RawValue::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawValue, E> {
                Ok(RawValue::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawValue, E> {
                Ok(RawValue::UInt(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawValue, E> {
                Ok(RawValue::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<RawValue, E> {
                Ok(RawValue::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<RawValue, E> {
                Ok(RawValue::Str(v))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<RawValue, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element()? {
                    items.push(item);
                }
                Ok(RawValue::Seq(items))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<RawValue, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = a.next_entry()? {
                    entries.push((k, v));
                }
                Ok(RawValue::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// A mapping key; YAML allows non-string scalars as keys (`200: ok`), we keep their text.
/// The flag says whether YAML read it as a string.
struct RawKey(String, bool);

impl<'de> Deserialize<'de> for RawKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E>(self, v: &str) -> Result<RawKey, E> {
                Ok(RawKey(v.to_string(), true))
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawKey, E> {
                Ok(RawKey(v.to_string(), false))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawKey, E> {
                Ok(RawKey(v.to_string(), false))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawKey, E> {
                Ok(RawKey(v.to_string(), false))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawKey, E> {
                Ok(RawKey(v.to_string(), false))
            }
            fn visit_unit<E>(self) -> Result<RawKey, E> {
                Ok(RawKey("null".into(), false))
            }
        }
        d.deserialize_any(V)
    }
}

/// An error raised while mapping the tree onto the typed model.
#[derive(Debug, Clone)]
pub struct DeError {
    pub message: String,
    pub pos: Option<Pos>,
}

impl DeError {
    fn at(mut self, pos: Pos) -> Self {
        self.pos.get_or_insert(pos);
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            pos: None,
        }
    }
}

/// An unknown key, collected instead of failing so that every one is reported.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownKey {
    pub key: String,
    pub pos: Pos,
    pub context: String,
    pub expected: &'static [&'static str],
}

impl UnknownKey {
    pub fn message(&self) -> String {
        let mut msg = format!("unknown key `{}` in {}", self.key, self.context);
        if let Some(best) = nearest(&self.key, self.expected) {
            msg.push_str(&format!("; did you mean `{best}`?"));
        } else if !self.expected.is_empty() {
            msg.push_str(&format!("; valid keys: {}", self.expected.join(", ")));
        }
        msg
    }
}

/// The closest candidate by edit distance, if it is close enough to be a likely typo.
pub fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Deserializes the typed model from a [`Node`], collecting unknown keys into `unknown`.
pub struct NodeDeserializer<'a> {
    pub node: &'a Node,
    pub unknown: &'a RefCell<Vec<UnknownKey>>,
}

impl<'a> NodeDeserializer<'a> {
    pub fn new(node: &'a Node, unknown: &'a RefCell<Vec<UnknownKey>>) -> Self {
        NodeDeserializer { node, unknown }
    }

    fn child(&self, node: &'a Node) -> Self {
        NodeDeserializer {
            node,
            unknown: self.unknown,
        }
    }

    fn invalid_type(&self, expected: &str) -> DeError {
        DeError {
            message: format!("expected {expected}, found {}", self.node.describe()),
            pos: Some(self.node.pos),
        }
    }

    /// A substituted scalar is read as YAML would read the same text written plainly.
    fn plain_scalar<'de, V: Visitor<'de>>(&self, s: &str, visitor: V) -> Result<V::Value, DeError> {
        if let Ok(u) = s.parse::<u64>() {
            return visitor.visit_u64(u);
        }
        if let Ok(i) = s.parse::<i64>() {
            return visitor.visit_i64(i);
        }
        if let Ok(f) = s.parse::<f64>() {
            return visitor.visit_f64(f);
        }
        match s {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            _ => visitor.visit_str(s),
        }
    }
}

macro_rules! forward_to_any {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
                self.deserialize_any(visitor)
            }
        )*
    };
}

impl<'de, 'a> Deserializer<'de> for NodeDeserializer<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let pos = self.node.pos;
        let result = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::UInt(u) => visitor.visit_u64(*u),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) if self.node.substituted => self.plain_scalar(s, visitor),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(SeqAccess {
                de: &self,
                items: items.iter(),
            }),
            Value::Map(entries) => visitor.visit_map(MapAccess {
                de: &self,
                entries: entries.iter().collect::<Vec<_>>().into_iter(),
                value: None,
            }),
        };
        result.map_err(|e| e.at(pos))
    }

    /// A field that expects a string takes any scalar as the text it was written as:
    /// `name: no`, `env: on`, `version: 1.10` are "no", "on", "1.10".
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let pos = self.node.pos;
        match &self.node.value {
            Value::Str(s) => visitor.visit_str(s).map_err(|e: DeError| e.at(pos)),
            Value::Bool(_) | Value::Int(_) | Value::UInt(_) | Value::Float(_) => {
                let text = self.node.scalar_text().unwrap_or_default();
                visitor.visit_str(&text).map_err(|e: DeError| e.at(pos))
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    /// Only `true` and `false` are booleans (YAML 1.2); YAML 1.1 spellings get a hint.
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if let Value::Str(s) = &self.node.value {
            const YAML11: &[&str] = &["yes", "no", "on", "off", "y", "n"];
            if !self.node.substituted && YAML11.iter().any(|w| w.eq_ignore_ascii_case(s)) {
                return Err(DeError {
                    message: format!(
                        "`{s}` is text, not a boolean (YAML 1.2): write `true` or `false`"
                    ),
                    pos: Some(self.node.pos),
                });
            }
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let pos = self.node.pos;
        let Value::Map(entries) = &self.node.value else {
            return Err(self.invalid_type(&format!("a mapping ({})", human_name(name))));
        };
        let mut known = Vec::with_capacity(entries.len());
        for entry in entries {
            if fields.contains(&entry.0.name.as_str()) {
                known.push(entry);
            } else {
                self.unknown.borrow_mut().push(UnknownKey {
                    key: entry.0.name.clone(),
                    pos: entry.0.pos,
                    context: human_name(name),
                    expected: fields,
                });
            }
        }
        visitor
            .visit_map(MapAccess {
                de: &self,
                entries: known.into_iter(),
                value: None,
            })
            .map_err(|e| e.at(pos))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let pos = self.node.pos;
        let unknown_variant = |word: &str, at: Pos| {
            let mut message = format!("unknown {} `{word}`", human_name(name));
            match nearest(word, variants) {
                Some(best) => message.push_str(&format!("; did you mean `{best}`?")),
                None => message.push_str(&format!("; expected one of: {}", variants.join(", "))),
            }
            DeError {
                message,
                pos: Some(at),
            }
        };
        match &self.node.value {
            Value::Str(s) => {
                if !variants.contains(&s.as_str()) {
                    return Err(unknown_variant(s, pos));
                }
                visitor
                    .visit_enum(s.as_str().into_deserializer())
                    .map_err(|e: DeError| e.at(pos))
            }
            Value::Map(entries) if entries.len() == 1 => {
                let (key, value) = &entries[0];
                if !variants.contains(&key.name.as_str()) {
                    return Err(unknown_variant(&key.name, key.pos));
                }
                visitor
                    .visit_enum(EnumAccess {
                        de: self.child(value),
                        variant: &key.name,
                    })
                    .map_err(|e| e.at(pos))
            }
            Value::Map(entries) => {
                let names: Vec<_> = entries
                    .iter()
                    .map(|(k, _)| format!("`{}`", k.name))
                    .collect();
                Err(DeError {
                    message: format!(
                        "a {} takes exactly one kind, found {} ({}); write each as its own list item",
                        human_name(name),
                        entries.len(),
                        names.join(", ")
                    ),
                    pos: Some(pos),
                })
            }
            _ => Err(self.invalid_type(&format!(
                "a {} (one of: {})",
                human_name(name),
                variants.join(", ")
            ))),
        }
    }

    forward_to_any! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_f32
        deserialize_f64 deserialize_char deserialize_bytes deserialize_byte_buf
        deserialize_unit deserialize_seq deserialize_map deserialize_identifier
        deserialize_ignored_any
    }

    serde::forward_to_deserialize_any! { unit_struct tuple tuple_struct }
}

/// Rust type names turned into the words a user reads (`HttpProbe` -> `http probe`).
fn human_name(name: &'static str) -> String {
    // A fault's parameters are `<Kind>Fault`: named by the kind as the YAML spells it.
    if let Some(kind) = name.strip_suffix("Fault").filter(|k| !k.is_empty()) {
        let mut snake = String::new();
        for (i, c) in kind.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        }
        let article = if snake.starts_with(['a', 'e', 'i', 'o', 'u', 'h']) {
            "an"
        } else {
            "a"
        };
        return format!("{article} {snake} fault");
    }
    match name {
        "Experiment" => "the experiment",
        "Scenario" => "the scenario",
        "Target" => "target",
        "DockerTarget" => "target.docker",
        "DockerTls" => "target.docker.tls",
        "DockerHost" => "an entry of target.docker.hosts",
        "ComposeService" => "target.docker.compose",
        "KubernetesTarget" => "target.kubernetes",
        "Select" => "target.select",
        "ProbeSpec" => "a probe",
        "HttpProbe" => "an http probe",
        "TcpProbe" => "a tcp probe",
        "CommandProbe" => "a command probe",
        "DockerProbe" => "a docker probe",
        "KubernetesProbe" => "a kubernetes probe",
        "PrometheusProbe" => "a prometheus probe",
        "LatencyBounds" => "a probe's latency bounds",
        "During" => "during",
        "Recovery" => "recovery",
        "Fault" => "fault",
        "HttpRequest" => "an http_call rollback",
        "CommandPlace" => "place (`where`)",
        "ScenarioEntry" => "a scenario experiment",
        "Window" => "window",
        "SelectMode" => "selection mode",
        other => other,
    }
    .to_string()
}

struct SeqAccess<'a, 'b> {
    de: &'b NodeDeserializer<'a>,
    items: std::slice::Iter<'a, Node>,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_, '_> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(node) => seed
                .deserialize(self.de.child(node))
                .map(Some)
                .map_err(|e| e.at(node.pos)),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAccess<'a, 'b> {
    de: &'b NodeDeserializer<'a>,
    entries: std::vec::IntoIter<&'a (Key, Node)>,
    value: Option<&'a Node>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'_, '_> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                let d: de::value::StrDeserializer<DeError> = key.name.as_str().into_deserializer();
                seed.deserialize(d).map(Some).map_err(|e| e.at(key.pos))
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let node = self
            .value
            .take()
            .expect("next_value_seed called before next_key_seed");
        seed.deserialize(self.de.child(node))
            .map_err(|e| e.at(node.pos))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct EnumAccess<'a, 'v> {
    de: NodeDeserializer<'a>,
    variant: &'v str,
}

impl<'de, 'a, 'v> de::EnumAccess<'de> for EnumAccess<'a, 'v> {
    type Error = DeError;
    type Variant = NodeDeserializer<'a>;
    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), DeError> {
        let d: de::value::StrDeserializer<DeError> = self.variant.into_deserializer();
        Ok((seed.deserialize(d)?, self.de))
    }
}

impl<'de> de::VariantAccess<'de> for NodeDeserializer<'_> {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        match &self.node.value {
            Value::Null => Ok(()),
            _ => Err(self.invalid_type("nothing")),
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_struct("", fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_keys_and_values() {
        let node = Node::parse("a: 1\nb:\n  - x\n  - {c: true}\n").unwrap();
        assert_eq!(node.key_pos("b"), Some(Pos { line: 2, column: 1 }));
        let path = [
            PathSeg::Key("b".into()),
            PathSeg::Index(1),
            PathSeg::Key("c".into()),
        ];
        assert_eq!(node.pos_of(&path), Pos { line: 4, column: 6 });
        assert_eq!(node.get("a").unwrap().value, Value::UInt(1));
    }

    #[test]
    fn syntax_error_has_a_location() {
        let (msg, pos) = Node::parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(msg.starts_with("YAML syntax error"), "{msg}");
        assert!(pos.is_some());
    }

    #[test]
    fn nearest_suggests_typos_only() {
        let keys = &["duration", "after", "signal"];
        assert_eq!(nearest("duraton", keys), Some("duration"));
        assert_eq!(nearest("zzzzzz", keys), None);
    }
}
