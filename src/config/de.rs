//! Reading the parsed YAML into the raw config structs, with errors an operator can read.
//!
//! serde_yaml_ng's own `Value` deserializer reports a wrong type in serde's terms ("invalid
//! type: string \"lots\", expected usize"), and anything that shows the parsed value itself
//! would show it in Rust's (`String("lots")`). This deserializer walks the same `Value` but its
//! error type phrases each problem the way the file is written: "expected a whole number (0 or
//! more), got the string \"lots\"". `serde_path_to_error` around it supplies the key path.
//!
//! An empty value (`limits:` with every line under it commented out) reads as an empty
//! section or list, so it means "all defaults", as leaving the key out does.

use serde::de::value::{
    MapAccessDeserializer, MapDeserializer, SeqDeserializer, StringDeserializer,
};
use serde::de::{self, Expected, IntoDeserializer, Unexpected, Visitor};
use serde_yaml_ng::Value;
use std::fmt;

/// Deserialize `value` into `T`; on error, the key path (`limits.max_connections`, `.` for
/// the top level) and the message.
pub(super) fn from_value<T: de::DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(ValueDe(value)).map_err(|e| {
        let path = e.path().to_string();
        (path, e.into_inner().0)
    })
}

/// A deserialization problem, already phrased for the operator.
#[derive(Debug)]
pub(super) struct DeError(String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        let expected = expected(exp);
        let hint = match unexp {
            // `name: 3.10` is read as a number; the fix is quotes, which is not obvious.
            Unexpected::Unsigned(_)
            | Unexpected::Signed(_)
            | Unexpected::Float(_)
            | Unexpected::Bool(_)
                if expected == TEXT =>
            {
                " (put it in quotes)"
            }
            _ => "",
        };
        DeError(format!("expected {expected}, got {}{hint}", got(&unexp)))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        DeError(format!("expected {}, got {}", expected(exp), got(&unexp)))
    }

    fn invalid_length(len: usize, exp: &dyn Expected) -> Self {
        DeError(format!("expected {}, got {len} items", expected(exp)))
    }

    fn unknown_variant(variant: &str, known: &'static [&'static str]) -> Self {
        DeError(format!("{variant:?} is not one of: {}", known.join(", ")))
    }

    fn unknown_field(field: &str, known: &'static [&'static str]) -> Self {
        DeError(match closest(field, known) {
            Some(near) => format!("not a known key (did you mean `{near}`?)"),
            None if known.is_empty() => "not a known key".to_owned(),
            None => format!("not a known key (known here: {})", known.join(", ")),
        })
    }

    fn missing_field(field: &'static str) -> Self {
        DeError(format!("`{field}` is missing (it has no default)"))
    }

    fn duplicate_field(field: &'static str) -> Self {
        DeError(format!("`{field}` is given twice"))
    }
}

/// What serde's wording for a string is turned into.
const TEXT: &str = "text";

/// What was expected, in the file's terms rather than Rust's type names.
fn expected(exp: &dyn Expected) -> String {
    let serde_words = exp.to_string();
    let plain = match serde_words.as_str() {
        "u8" => "a whole number from 0 to 255",
        "u16" => "a whole number from 0 to 65535",
        "u32" => "a whole number from 0 to 4294967295",
        "u64" | "usize" | "u128" => "a whole number (0 or more)",
        "i8" | "i16" | "i32" | "i64" | "isize" | "i128" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a string" | "a borrowed string" | "a character" => TEXT,
        "a sequence" => "a list",
        "a map" => "a mapping of keys",
        other if other.starts_with("struct ") => "a mapping of keys",
        other => return other.to_owned(),
    };
    plain.to_owned()
}

/// What the file holds, as written: `the string "lots"`, `-5`, `a list`.
fn got(unexp: &Unexpected<'_>) -> String {
    match unexp {
        Unexpected::Bool(b) => b.to_string(),
        Unexpected::Unsigned(n) => n.to_string(),
        Unexpected::Signed(n) => n.to_string(),
        Unexpected::Float(n) => n.to_string(),
        // Debug quoting escapes control characters: a hostile file cannot write escape
        // sequences to the operator's terminal through an error message.
        Unexpected::Char(c) => format!("the string {:?}", c.to_string()),
        Unexpected::Str(s) => format!("the string {s:?}"),
        Unexpected::Unit => "an empty value".to_owned(),
        Unexpected::Seq => "a list".to_owned(),
        Unexpected::Map => "a mapping".to_owned(),
        other => other.to_string(),
    }
}

/// `v` in serde's terms, for an error message.
fn unexpected(v: &Value) -> Unexpected<'_> {
    match v {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Unexpected::Unsigned(u),
            (None, Some(i)) => Unexpected::Signed(i),
            (None, None) => Unexpected::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Sequence(_) => Unexpected::Seq,
        Value::Mapping(_) => Unexpected::Map,
        Value::Tagged(_) => Unexpected::Other("a tagged value"),
    }
}

/// A parsed value as written, for a check made after deserializing (`cores: lots`).
pub(super) fn describe(v: &Value) -> String {
    got(&unexpected(v))
}

/// The known key a typo most likely meant: within two edits, or a third of its length.
fn closest<'a>(typed: &str, known: &[&'a str]) -> Option<&'a str> {
    let len = typed.chars().count();
    // No key is this long: no typo of one either (and the distance is quadratic).
    if len > 64 {
        return None;
    }
    let limit = (len / 3).max(2);
    known
        .iter()
        .map(|k| (edit_distance(typed, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over characters (key names are short: quadratic is fine).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row.first().copied().unwrap_or(0);
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let above = row.get(j + 1).copied().unwrap_or(usize::MAX);
            let left = row.get(j).copied().unwrap_or(usize::MAX);
            let substitute = diagonal + usize::from(ca != *cb);
            let best = substitute
                .min(above.saturating_add(1))
                .min(left.saturating_add(1));
            diagonal = above;
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = best;
            }
        }
    }
    row.last().copied().unwrap_or(0)
}

/// One parsed YAML value being read.
struct ValueDe(Value);

impl<'de> IntoDeserializer<'de, DeError> for ValueDe {
    type Deserializer = ValueDe;

    fn into_deserializer(self) -> ValueDe {
        self
    }
}

impl ValueDe {
    fn visit_seq<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value, DeError> {
        let mut access = SeqDeserializer::new(items.into_iter().map(ValueDe));
        let out = visitor.visit_seq(&mut access)?;
        access.end()?;
        Ok(out)
    }

    fn visit_map<'de, V: Visitor<'de>>(
        map: serde_yaml_ng::Mapping,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let mut access =
            MapDeserializer::new(map.into_iter().map(|(k, v)| (ValueDe(k), ValueDe(v))));
        let out = visitor.visit_map(&mut access)?;
        access.end()?;
        Ok(out)
    }
}

impl<'de> de::Deserializer<'de> for ValueDe {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_string(s),
            Value::Sequence(items) => Self::visit_seq(items, visitor),
            Value::Mapping(map) => Self::visit_map(map, visitor),
            Value::Tagged(t) => Err(DeError(format!(
                "YAML tags such as {} are not used in this file",
                t.tag
            ))),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => Self::visit_seq(Vec::new(), visitor),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => Self::visit_map(serde_yaml_ng::Mapping::new(), visitor),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null | Value::Mapping(_) => self.deserialize_map(visitor),
            // serde would fill a struct from a list by position: a section is keys only.
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.0 {
            // `format: json` names a unit variant; `{ variant: value }` one with data.
            Value::String(s) => visitor.visit_enum(StringDeserializer::<DeError>::new(s)),
            Value::Mapping(map) if map.len() == 1 => {
                visitor.visit_enum(MapAccessDeserializer::new(MapDeserializer::new(
                    map.into_iter().map(|(k, v)| (ValueDe(k), ValueDe(v))),
                )))
            }
            other => ValueDe(other).deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct tuple tuple_struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        count: usize,
        #[serde(default)]
        small: u8,
        #[serde(default)]
        name: String,
        #[serde(default)]
        on: bool,
        #[serde(default)]
        list: Vec<u32>,
        #[serde(default)]
        kind: Option<Kind>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Plain,
        Fancy,
    }

    fn error(yaml: &str) -> (String, String) {
        let value: Value = serde_yaml_ng::from_str(yaml).unwrap();
        from_value::<Sample>(value).unwrap_err()
    }

    #[test]
    fn wrong_types_read_as_the_file_is_written() {
        assert_eq!(
            error("count: lots"),
            (
                "count".to_owned(),
                "expected a whole number (0 or more), got the string \"lots\"".to_owned()
            )
        );
        assert_eq!(
            error("count: -5").1,
            "expected a whole number (0 or more), got -5"
        );
        assert_eq!(
            error("count: 1\nsmall: 300").1,
            "expected a whole number from 0 to 255, got 300"
        );
        assert_eq!(
            error("count: 1\nname: 3.5").1,
            "expected text, got 3.5 (put it in quotes)"
        );
        assert_eq!(
            error("count: 1\non: maybe").1,
            "expected true or false, got the string \"maybe\""
        );
        assert_eq!(
            error("count: 1\nlist: [1, x]"),
            (
                "list[1]".to_owned(),
                "expected a whole number from 0 to 4294967295, got the string \"x\"".to_owned()
            )
        );
        assert_eq!(error("- a").1, "expected a mapping of keys, got a list");
    }

    #[test]
    fn unknown_keys_suggest_the_nearest_known_one() {
        assert_eq!(
            error("count: 1\ncuont: 2"),
            (
                "cuont".to_owned(),
                "not a known key (did you mean `count`?)".to_owned()
            )
        );
        let (_, m) = error("count: 1\nzzzzzzzz: 2");
        assert!(
            m.starts_with("not a known key (known here: count, small"),
            "{m}"
        );
    }

    #[test]
    fn enums_missing_keys_and_hostile_text() {
        assert_eq!(
            error("count: 1\nkind: shiny"),
            (
                "kind".to_owned(),
                "\"shiny\" is not one of: plain, fancy".to_owned()
            )
        );
        let value: Value = serde_yaml_ng::from_str("count: 1\nkind: fancy").unwrap();
        assert!(matches!(
            from_value::<Sample>(value).unwrap().kind,
            Some(Kind::Fancy)
        ));
        assert_eq!(
            error("small: 1").1,
            "`count` is missing (it has no default)"
        );
        let (_, m) = error("count: \"\\e[2J\"");
        assert!(!m.contains('\u{1b}'), "{m:?}");
    }

    #[test]
    fn an_empty_section_or_list_means_defaults() {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Outer {
            inner: Inner,
            items: Vec<u32>,
        }
        #[derive(Deserialize)]
        #[serde(default)]
        struct Inner {
            n: u32,
        }
        impl Default for Inner {
            fn default() -> Self {
                Inner { n: 7 }
            }
        }
        let value: Value = serde_yaml_ng::from_str("inner:\nitems:\n").unwrap();
        let o: Outer = from_value(value).unwrap();
        assert_eq!(o.inner.n, 7);
        assert!(o.items.is_empty());
    }

    #[test]
    fn edit_distance_counts_single_changes() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(
            closest("max_auth_trys", &["max_auth_tries", "kex"]),
            Some("max_auth_tries")
        );
        assert_eq!(closest("zzz", &["max_auth_tries", "kex"]), None);
    }
}
