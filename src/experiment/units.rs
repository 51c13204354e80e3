//! Scalar types of the format that carry their own syntax: durations, percentages,
//! bandwidths, count conditions, signals and name matchers. Each parses from the text a
//! user writes and explains, in its error, how to write it correctly.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A bare number where a scalar was expected (YAML `5`, not `"5"`), as the deserializer
/// handed it over.
#[derive(Clone, Copy)]
enum Number {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
}

impl Number {
    fn as_f64(self) -> f64 {
        match self {
            Number::Unsigned(v) => v as f64,
            Number::Signed(v) => v as f64,
            Number::Float(v) => v,
        }
    }

    fn unexpected(self) -> Unexpected<'static> {
        match self {
            Number::Unsigned(v) => Unexpected::Unsigned(v),
            Number::Signed(v) => Unexpected::Signed(v),
            Number::Float(v) => Unexpected::Float(v),
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Unsigned(v) => write!(f, "{v}"),
            Number::Signed(v) => write!(f, "{v}"),
            Number::Float(v) => write!(f, "{v}"),
        }
    }
}

/// A scalar of the format: read from its text by `FromStr`, written back by `Display`.
/// [`scalar_serde!`] gives it serde and JSON Schema impls from these answers.
trait Scalar: FromStr<Err = String> + fmt::Display {
    /// What serde's type errors say was expected.
    const EXPECTING: &'static str;

    /// Whether a bare number is handed to [`Scalar::from_number`]. A scalar that does not
    /// take numbers asks the deserializer for a string, so that the experiment
    /// deserializer hands over any scalar as the text it was written as.
    const TAKES_NUMBERS: bool = true;

    /// What a bare number means, or why it is refused; `None` refuses it as a value of
    /// the wrong type, in serde's words.
    fn from_number(_n: Number) -> Option<Result<Self, String>> {
        None
    }

    /// How the value is written out: as its text, unless the scalar says otherwise.
    fn serialize_scalar<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The one serde visitor of every [`Scalar`].
struct ScalarVisitor<T>(PhantomData<T>);

impl<T: Scalar> ScalarVisitor<T> {
    fn number<E: de::Error>(self, n: Number) -> Result<T, E> {
        match T::from_number(n) {
            Some(parsed) => parsed.map_err(E::custom),
            None => Err(E::invalid_type(n.unexpected(), &self)),
        }
    }
}

impl<T: Scalar> Visitor<'_> for ScalarVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.number(Number::Unsigned(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.number(Number::Signed(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        self.number(Number::Float(v))
    }
}

/// Implements serde and JSON Schema (named as the type) for a [`Scalar`].
macro_rules! scalar_serde {
    ($ty:ident, $schema:tt) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let visitor = ScalarVisitor(PhantomData);
                if <$ty as Scalar>::TAKES_NUMBERS {
                    d.deserialize_any(visitor)
                } else {
                    d.deserialize_str(visitor)
                }
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.serialize_scalar(s)
            }
        }

        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                stringify!($ty).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

/// A duration written with units: `250ms`, `5s`, `2m`, `1h30m`, `1.5s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }
    pub const fn from_secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }
    pub fn std(self) -> std::time::Duration {
        self.0
    }
    pub fn as_millis(self) -> u64 {
        self.0.as_millis() as u64
    }
}

impl FromStr for Duration {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let s = text.trim();
        if s.is_empty() {
            return Err("empty duration: write it with a unit, e.g. 5s".into());
        }
        if s.parse::<f64>().is_ok() {
            return Err(bare_number(s));
        }
        let mut total = 0f64;
        let mut rest = s;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| bare_number(s))?;
            if num_len == 0 {
                return Err(format!(
                    "invalid duration `{s}`: expected a number followed by a unit (ms, s, m, h), e.g. 250ms, 5s, 1h30m"
                ));
            }
            let number: f64 = rest[..num_len]
                .parse()
                .map_err(|_| format!("invalid number in duration `{s}`"))?;
            rest = &rest[num_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let scale = match unit {
                "ms" => 0.001,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                "us" | "µs" => 0.000_001,
                _ => {
                    return Err(format!(
                        "unknown unit `{unit}` in duration `{s}`: use ms, s, m or h (e.g. 250ms, 5s, 2m, 1h30m)"
                    ));
                }
            };
            total += number * scale;
        }
        if !total.is_finite() || total > 365.0 * 24.0 * 3600.0 {
            return Err(format!(
                "duration `{s}` is too long: the limit is 365 days (8760h)"
            ));
        }
        Ok(Duration(std::time::Duration::from_secs_f64(total)))
    }
}

fn bare_number(s: &str) -> String {
    format!("`{s}` is a bare number, but a duration needs a unit: add a unit, e.g. 5s or 500ms")
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        if ms % 1000 != 0 {
            return write!(f, "{ms}ms");
        }
        let mut secs = ms / 1000;
        let h = secs / 3600;
        secs %= 3600;
        let m = secs / 60;
        secs %= 60;
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if secs > 0 {
            write!(f, "{secs}s")?;
        }
        Ok(())
    }
}

impl Scalar for Duration {
    const EXPECTING: &'static str = "a duration with a unit, e.g. 5s";
    /// Read as its text, which `from_str` refuses with how to add a unit.
    fn from_number(n: Number) -> Option<Result<Self, String>> {
        Some(n.to_string().parse())
    }
}

scalar_serde!(Duration, {
    "type": "string",
    "pattern": "^([0-9]+(\\.[0-9]+)?(us|ms|s|m|h))+$",
    "description": "A duration with a unit: 250ms, 5s, 2m, 1h30m.",
    "examples": ["250ms", "5s", "1h30m"]
});

/// A percentage: `5`, `12.5` or `"5%"`.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Default)]
pub struct Percent(pub f64);

impl FromStr for Percent {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let s = text.trim().trim_end_matches('%').trim();
        let v: f64 = s.parse().map_err(|_| {
            format!("invalid percentage `{text}`: write a number such as 5 or \"5%\"")
        })?;
        Percent::checked(v)
    }
}

impl Percent {
    fn checked(v: f64) -> Result<Self, String> {
        if !(0.0..=100.0).contains(&v) || !v.is_finite() {
            return Err(format!("percentage {v} is outside 0..100"));
        }
        Ok(Percent(v))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl Scalar for Percent {
    const EXPECTING: &'static str = "a percentage such as 5 or \"5%\"";
    fn from_number(n: Number) -> Option<Result<Self, String>> {
        Some(Percent::checked(n.as_f64()))
    }
    /// A number in the report, not its text.
    fn serialize_scalar<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

scalar_serde!(Percent, {
    "description": "A percentage: 5, 12.5 or \"5%\".",
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": 100},
        {"type": "string", "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*%?\\s*$"}
    ]
});

/// An amount of bytes with a unit: `256MiB`, `1GiB`, `512MB`, `64KiB`, `100B`.
/// Binary units (KiB, MiB, GiB, TiB) are powers of 1024; decimal ones (KB, MB, GB, TB)
/// of 1000. A bare number is refused: its unit is ambiguous.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteSize {
    pub bytes: u64,
    text: String,
}

impl ByteSize {
    pub fn text(&self) -> &str {
        &self.text
    }
}

const SIZE_HINT: &str = "write a number and a unit: B, KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000), e.g. 256MiB";

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let s = text.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("invalid size `{text}`: {SIZE_HINT}"))?;
        let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "b" => 1.0,
            "kib" | "ki" | "k" => 1024.0,
            "mib" | "mi" | "m" => 1024.0 * 1024.0,
            "gib" | "gi" | "g" => 1024.0 * 1024.0 * 1024.0,
            "tib" | "ti" | "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
            "kb" => 1e3,
            "mb" => 1e6,
            "gb" => 1e9,
            "tb" => 1e12,
            "" => return Err(bare_size(text)),
            other => {
                return Err(format!(
                    "unknown unit `{other}` in size `{text}`: {SIZE_HINT}"
                ));
            }
        };
        let bytes = (value * scale).round();
        if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
            return Err(format!("size `{text}` is out of range: at least 1B"));
        }
        Ok(ByteSize {
            bytes: bytes as u64,
            text: s.to_string(),
        })
    }
}

fn bare_size(text: &str) -> String {
    format!("size `{text}` has no unit: {SIZE_HINT}")
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Scalar for ByteSize {
    const EXPECTING: &'static str = "a size with a unit, e.g. 256MiB";
    fn from_number(n: Number) -> Option<Result<Self, String>> {
        Some(Err(bare_size(&n.to_string())))
    }
}

scalar_serde!(ByteSize, {
    "type": "string",
    "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*([bB]|[kKmMgGtT]([iI]?[bB]?)?)\\s*$",
    "description": "A size with a unit: 256MiB, 1GiB (powers of 1024) or 500MB (powers of 1000).",
    "examples": ["256MiB", "1GiB"]
});

/// A bandwidth in tc's notation: `1mbit`, `500kbit`, `10mbps` (bytes per second).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rate {
    pub bits_per_second: u64,
    text: String,
}

impl Rate {
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let s = text.trim().to_ascii_lowercase();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let hint = "write a number and a unit: bit, kbit, mbit, gbit (bits/s) or bps, kbps, mbps, gbps (bytes/s), e.g. 1mbit";
        let value: f64 = num
            .parse()
            .map_err(|_| format!("invalid rate `{text}`: {hint}"))?;
        let scale: f64 = match unit {
            "bit" => 1.0,
            "kbit" => 1e3,
            "mbit" => 1e6,
            "gbit" => 1e9,
            "bps" => 8.0,
            "kbps" => 8e3,
            "mbps" => 8e6,
            "gbps" => 8e9,
            "" => return Err(format!("rate `{text}` has no unit: {hint}")),
            _ => return Err(format!("unknown unit `{unit}` in rate `{text}`: {hint}")),
        };
        let bits = (value * scale).round();
        if bits < 8.0 {
            return Err(format!("rate `{text}` is too small: at least 8bit"));
        }
        Ok(Rate {
            bits_per_second: bits as u64,
            text: s.clone(),
        })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Scalar for Rate {
    const EXPECTING: &'static str = "a string";
    const TAKES_NUMBERS: bool = false;
}

scalar_serde!(Rate, {
    "type": "string",
    "pattern": "^[0-9]+(\\.[0-9]+)?([kKmMgG]?(bit|bps))$",
    "description": "A bandwidth in tc notation: 1mbit, 500kbit, 2mbps.",
    "examples": ["1mbit", "500kbit"]
});

/// A condition on a count: `2` (means `== 2`), `">= 2"`, `"== 1"`, `"<= 3"`, `"> 0"`, `"< 5"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountExpr {
    pub op: CountOp,
    pub value: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountOp {
    Eq,
    Ge,
    Le,
    Gt,
    Lt,
}

impl CountExpr {
    pub fn holds(&self, n: u64) -> bool {
        match self.op {
            CountOp::Eq => n == self.value,
            CountOp::Ge => n >= self.value,
            CountOp::Le => n <= self.value,
            CountOp::Gt => n > self.value,
            CountOp::Lt => n < self.value,
        }
    }
}

impl FromStr for CountExpr {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let s = text.trim();
        let (op, rest) = [
            (">=", CountOp::Ge),
            ("<=", CountOp::Le),
            ("==", CountOp::Eq),
            (">", CountOp::Gt),
            ("<", CountOp::Lt),
            ("=", CountOp::Eq),
        ]
        .iter()
        .find_map(|(p, op)| s.strip_prefix(p).map(|r| (*op, r)))
        .unwrap_or((CountOp::Eq, s));
        let value = rest.trim().parse().map_err(|_| {
            format!("invalid count condition `{text}`: write a number or a comparison such as \">= 2\" or \"== 1\"")
        })?;
        Ok(CountExpr { op, value })
    }
}

impl fmt::Display for CountExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            CountOp::Eq => "==",
            CountOp::Ge => ">=",
            CountOp::Le => "<=",
            CountOp::Gt => ">",
            CountOp::Lt => "<",
        };
        write!(f, "{op} {}", self.value)
    }
}

impl Scalar for CountExpr {
    const EXPECTING: &'static str = "a count such as 2 or \">= 2\"";
    fn from_number(n: Number) -> Option<Result<Self, String>> {
        match n {
            Number::Unsigned(value) => Some(Ok(CountExpr {
                op: CountOp::Eq,
                value,
            })),
            Number::Signed(v) => Some(Err(format!("a count cannot be negative ({v})"))),
            Number::Float(_) => None,
        }
    }
}

scalar_serde!(CountExpr, {
    "description": "A count: 2 (exactly), or a comparison such as \">= 2\", \"== 1\", \"<= 3\".",
    "anyOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": "^\\s*(>=|<=|==|=|>|<)?\\s*[0-9]+\\s*$"}
    ]
});

/// A Unix signal by name (`SIGKILL`, `KILL`, `TERM`) or number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signal(pub i32);

const SIGNALS: &[(&str, i32)] = &[
    ("SIGHUP", 1),
    ("SIGINT", 2),
    ("SIGQUIT", 3),
    ("SIGABRT", 6),
    ("SIGKILL", 9),
    ("SIGUSR1", 10),
    ("SIGSEGV", 11),
    ("SIGUSR2", 12),
    ("SIGPIPE", 13),
    ("SIGALRM", 14),
    ("SIGTERM", 15),
];

impl Signal {
    pub const KILL: Signal = Signal(9);
    pub fn name(self) -> String {
        SIGNALS
            .iter()
            .find(|(_, n)| *n == self.0)
            .map(|(name, _)| name.to_string())
            .unwrap_or_else(|| self.0.to_string())
    }
}

impl Default for Signal {
    fn default() -> Self {
        Signal::KILL
    }
}

impl FromStr for Signal {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let upper = text.trim().to_ascii_uppercase();
        if let Ok(n) = upper.parse::<i32>() {
            return SIGNALS
                .iter()
                .find(|(_, v)| *v == n)
                .map(|(_, v)| Signal(*v))
                .ok_or_else(|| format!("unsupported signal number {n}"));
        }
        let name = if upper.starts_with("SIG") {
            upper.clone()
        } else {
            format!("SIG{upper}")
        };
        if name == "SIGSTOP" || name == "SIGCONT" {
            return Err(format!(
                "`{text}` is not a kill signal: use the `pause` fault to freeze a target"
            ));
        }
        SIGNALS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| Signal(*v))
            .ok_or_else(|| {
                let names: Vec<&str> = SIGNALS.iter().map(|(n, _)| *n).collect();
                match crate::experiment::node::nearest(&name, &names) {
                    Some(best) => format!("unknown signal `{text}`; did you mean `{best}`?"),
                    None => format!(
                        "unknown signal `{text}`; expected one of: {}",
                        names.join(", ")
                    ),
                }
            })
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Scalar for Signal {
    const EXPECTING: &'static str = "a signal name such as SIGKILL or SIGTERM";
    fn from_number(n: Number) -> Option<Result<Self, String>> {
        matches!(n, Number::Unsigned(_)).then(|| n.to_string().parse())
    }
}

scalar_serde!(Signal, {
    "description": "A signal name (SIGKILL, SIGTERM, KILL, TERM, ...) or number.",
    "anyOf": [{"type": "string"}, {"type": "integer"}]
});

/// A name matcher: an exact name, or a regular expression written between slashes.
#[derive(Clone, Debug)]
pub enum NameMatch {
    Exact(String),
    Regex(regex::Regex),
}

impl NameMatch {
    pub fn matches(&self, name: &str) -> bool {
        let name = name.trim_start_matches('/');
        match self {
            NameMatch::Exact(n) => n == name,
            NameMatch::Regex(r) => r.is_match(name),
        }
    }
}

impl PartialEq for NameMatch {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl FromStr for NameMatch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.len() >= 2 && s.starts_with('/') && s.ends_with('/') {
            let pattern = &s[1..s.len() - 1];
            regex::Regex::new(pattern)
                .map(NameMatch::Regex)
                .map_err(|e| {
                    let detail = e.to_string();
                    let last = detail.lines().last().unwrap_or("").trim();
                    let last = last.strip_prefix("error: ").unwrap_or(last);
                    format!("invalid name regex `{pattern}`: {last}")
                })
        } else if s.is_empty() {
            Err("empty name: write an exact name or a /regex/".into())
        } else {
            Ok(NameMatch::Exact(s.to_string()))
        }
    }
}

impl fmt::Display for NameMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameMatch::Exact(n) => f.write_str(n),
            NameMatch::Regex(r) => write!(f, "/{}/", r.as_str()),
        }
    }
}

impl Scalar for NameMatch {
    const EXPECTING: &'static str = "a string";
    const TAKES_NUMBERS: bool = false;
}

scalar_serde!(NameMatch, {
    "type": "string",
    "description": "An exact name, or a regular expression between slashes: /^web-[0-9]+$/."
});

/// An HTTP status condition: a code (`200`), a class (`2xx`) or a range (`200-299`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusSpec {
    pub low: u16,
    pub high: u16,
}

impl StatusSpec {
    pub fn matches(&self, code: u16) -> bool {
        (self.low..=self.high).contains(&code)
    }
}

impl FromStr for StatusSpec {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let s = text.trim().to_ascii_lowercase();
        let bad = || {
            format!(
                "invalid status `{text}`: write a code (200), a class (2xx) or a range (200-299)"
            )
        };
        let check = |c: u16| {
            if (100..=599).contains(&c) {
                Ok(c)
            } else {
                Err(bad())
            }
        };
        if let Some(class) = s.strip_suffix("xx") {
            let d: u16 = class.parse().map_err(|_| bad())?;
            let low = check(d * 100)?;
            return Ok(StatusSpec {
                low,
                high: low + 99,
            });
        }
        if let Some((a, b)) = s.split_once('-') {
            let low = check(a.trim().parse().map_err(|_| bad())?)?;
            let high = check(b.trim().parse().map_err(|_| bad())?)?;
            if low > high {
                return Err(bad());
            }
            return Ok(StatusSpec { low, high });
        }
        let code = check(s.parse().map_err(|_| bad())?)?;
        Ok(StatusSpec {
            low: code,
            high: code,
        })
    }
}

impl fmt::Display for StatusSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

impl Scalar for StatusSpec {
    const EXPECTING: &'static str = "an HTTP status such as 200, 2xx or 200-299";
    fn from_number(n: Number) -> Option<Result<Self, String>> {
        match n {
            Number::Unsigned(_) | Number::Signed(_) => Some(n.to_string().parse()),
            Number::Float(_) => None,
        }
    }
}

scalar_serde!(StatusSpec, {
    "description": "An HTTP status: 200, \"2xx\" or \"200-299\".",
    "anyOf": [
        {"type": "integer", "minimum": 100, "maximum": 599},
        {"type": "string", "pattern": "^([1-5]xx|[1-5][0-9][0-9](-[1-5][0-9][0-9])?)$"}
    ]
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = |s: &str| s.parse::<Duration>().map(|d| d.as_millis());
        assert_eq!(ms("250ms"), Ok(250));
        assert_eq!(ms("5s"), Ok(5000));
        assert_eq!(ms("2m"), Ok(120_000));
        assert_eq!(ms("1h30m"), Ok(5_400_000));
        assert_eq!(ms("1.5s"), Ok(1500));
        assert!(ms("5").unwrap_err().contains("add a unit, e.g. 5s"));
        assert!(ms("5 parsecs").is_err());
        assert!(ms("5d").unwrap_err().contains("unknown unit `d`"));
        assert_eq!("1h30m".parse::<Duration>().unwrap().to_string(), "1h30m");
        assert_eq!("250ms".parse::<Duration>().unwrap().to_string(), "250ms");
    }

    #[test]
    fn sizes_need_a_unit() {
        let b = |s: &str| s.parse::<ByteSize>().map(|z| z.bytes);
        assert_eq!(b("256MiB"), Ok(256 << 20));
        assert_eq!(b("1GiB"), Ok(1 << 30));
        assert_eq!(b("1.5KiB"), Ok(1536));
        assert_eq!(b("512MB"), Ok(512_000_000));
        assert_eq!(b("100B"), Ok(100));
        assert_eq!(b("2G"), Ok(2 << 30));
        assert!(b("256").unwrap_err().contains("has no unit"));
        assert!(b("5 parsecs").unwrap_err().contains("unknown unit"));
        assert!(b("0MiB").unwrap_err().contains("at least 1B"));
        let bare: Result<ByteSize, _> = serde_json::from_str("256");
        assert!(bare.unwrap_err().to_string().contains("has no unit"));
        assert_eq!("256MiB".parse::<ByteSize>().unwrap().to_string(), "256MiB");
    }

    /// What a bare number (not a string) reads as, scalar by scalar, in serde's words
    /// where it is refused as the wrong type.
    #[test]
    fn bare_numbers() {
        fn read<T: de::DeserializeOwned>(json: &str) -> Result<T, String> {
            serde_json::from_str(json).map_err(|e| e.to_string())
        }
        #[track_caller]
        fn refused<T: de::DeserializeOwned + fmt::Debug>(json: &str, start: &str) {
            let e = read::<T>(json).unwrap_err();
            assert!(e.starts_with(start), "{e}");
        }
        refused::<Duration>("5", "`5` is a bare number, but a duration needs a unit");
        refused::<Duration>("-1.5", "`-1.5` is a bare number");
        assert_eq!(read::<Percent>("12.5"), Ok(Percent(12.5)));
        assert_eq!(read::<Percent>("7"), Ok(Percent(7.0)));
        refused::<Percent>("-1", "percentage -1 is outside 0..100");
        refused::<ByteSize>("256", "size `256` has no unit");
        let two = CountExpr {
            op: CountOp::Eq,
            value: 2,
        };
        assert_eq!(read::<CountExpr>("2"), Ok(two));
        refused::<CountExpr>("-2", "a count cannot be negative (-2)");
        let float = "invalid type: floating point `2.5`, expected a count such as 2";
        refused::<CountExpr>("2.5", float);
        assert_eq!(read::<Signal>("15"), Ok(Signal(15)));
        let negative = "invalid type: integer `-9`, expected a signal name";
        refused::<Signal>("-9", negative);
        let code = StatusSpec {
            low: 204,
            high: 204,
        };
        assert_eq!(read::<StatusSpec>("204"), Ok(code));
        refused::<StatusSpec>("-1", "invalid status `-1`");
        let text_only = "invalid type: integer `5`, expected a string";
        refused::<Rate>("5", text_only);
        refused::<NameMatch>("5", text_only);
        let rate = read::<Rate>("\"1mbit\"").map(|r| r.bits_per_second);
        assert_eq!(rate, Ok(1_000_000));
        // Percentages are written back as numbers, the rest as their text.
        assert_eq!(serde_json::to_string(&Percent(5.0)).unwrap(), "5.0");
        assert_eq!(serde_json::to_string(&Signal(15)).unwrap(), "\"SIGTERM\"");
    }

    #[test]
    fn percents_rates_counts() {
        assert_eq!("5%".parse::<Percent>(), Ok(Percent(5.0)));
        assert!("105".parse::<Percent>().is_err());
        assert_eq!("1mbit".parse::<Rate>().unwrap().bits_per_second, 1_000_000);
        assert_eq!("2kbps".parse::<Rate>().unwrap().bits_per_second, 16_000);
        assert!("1".parse::<Rate>().unwrap_err().contains("no unit"));
        let c: CountExpr = ">= 2".parse().unwrap();
        assert!(c.holds(2) && c.holds(3) && !c.holds(1));
        let c: CountExpr = "== 1".parse().unwrap();
        assert!(c.holds(1) && !c.holds(2));
        assert!("about 3".parse::<CountExpr>().is_err());
    }

    #[test]
    fn signals_and_names() {
        assert_eq!("TERM".parse::<Signal>(), Ok(Signal(15)));
        assert_eq!("sigkill".parse::<Signal>(), Ok(Signal(9)));
        assert!("SIGKIL".parse::<Signal>().unwrap_err().contains("SIGKILL"));
        assert!("SIGSTOP".parse::<Signal>().unwrap_err().contains("pause"));
        let m: NameMatch = "/^web-[0-9]+$/".parse().unwrap();
        assert!(m.matches("web-12") && !m.matches("api-1"));
        assert!(m.matches("/web-3"), "docker prefixes names with a slash");
        assert!("/web-(/".parse::<NameMatch>().is_err());
        let s: StatusSpec = "2xx".parse().unwrap();
        assert!(s.matches(204) && !s.matches(301));
    }
}
