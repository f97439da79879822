//! Where a key is in the file: line and column for an error message.
//!
//! Errors are found on the parsed tree (after environment overrides and validation), which
//! has no positions. To point at the line, the text is read once more by serde_yaml_ng's own
//! parser, walking down the error's key path; at the key's value the walk stops with an error,
//! which the parser stamps with the position of the event it was reading. No second YAML
//! parser, and the position is exactly the one the parser saw.

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Line and column (both from 1) of the value at `key` (`limits.max_connections`,
/// `games[0].command`, `.` for the whole file) in `text`; `None` when the path is not in the
/// text (a default, an environment override) or not a key path at all.
pub(super) fn locate(text: &str, key: &str) -> Option<(usize, usize)> {
    let path = parse_path(key)?;
    let de = serde_yaml_ng::Deserializer::from_str(text);
    match Walk(&path).deserialize(de) {
        Ok(()) => None,
        // The parser prefixes the message with its own idea of the path: look inside.
        Err(e) if e.to_string().contains(FOUND) => e.location().map(|l| (l.line(), l.column())),
        Err(_) => None,
    }
}

/// The sentinel error that ends a successful walk (so the parser stamps its position).
const FOUND: &str = "dungeongate: key found";

/// One step of a key path.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// `a.b[2].c` → `[Key(a), Key(b), Index(2), Key(c)]`; `.` → `[]`.
fn parse_path(key: &str) -> Option<Vec<Step>> {
    if key == "." {
        return Some(Vec::new());
    }
    let mut steps = Vec::new();
    for part in key.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => part.split_at(i),
            None => (part, ""),
        };
        if name.is_empty() {
            return None;
        }
        steps.push(Step::Key(name.to_owned()));
        while let Some(tail) = rest.strip_prefix('[') {
            let (index, after) = tail.split_once(']')?;
            steps.push(Step::Index(index.parse().ok()?));
            rest = after;
        }
        if !rest.is_empty() {
            return None;
        }
    }
    Some(steps)
}

/// Walks down the remaining steps; at the end, fails with [`FOUND`].
struct Walk<'a>(&'a [Step]);

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.0.is_empty() {
            d.deserialize_any(Here)
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping or a list")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Step::Key(want), rest)) = self.0.split_first() else {
            return Ok(());
        };
        while let Some(k) = map.next_key::<serde_yaml_ng::Value>()? {
            if k.as_str() == Some(want.as_str()) {
                return map.next_value_seed(Walk(rest));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Step::Index(want), rest)) = self.0.split_first() else {
            return Ok(());
        };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Walk(rest))?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    // Anything else (a scalar where the path goes deeper): the path is not in the text.
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// At the value the path names: stop, so the parser says where it is.
struct Here;

impl<'de> Visitor<'de> for Here {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
ssh:
  listen: \"0.0.0.0:2222\"
limits:
  max_connections: lots
games:
  - id: nethack
    command: /usr/games/nethack
  - { id: amulet, command: \"builtin:amulet\" }
";

    #[test]
    fn finds_scalars_sections_and_list_items() {
        assert_eq!(locate(TEXT, "ssh.listen"), Some((2, 11)));
        assert_eq!(locate(TEXT, "limits.max_connections"), Some((4, 20)));
        assert_eq!(locate(TEXT, "games[0].command"), Some((7, 14)));
        assert_eq!(locate(TEXT, "games[1].command"), Some((8, 28)));
        assert_eq!(locate(TEXT, "games[1]"), Some((8, 5)));
        assert_eq!(locate(TEXT, "limits"), Some((4, 3)));
    }

    #[test]
    fn a_path_not_in_the_text_has_no_place() {
        assert_eq!(locate(TEXT, "limits.penalty_seconds"), None);
        assert_eq!(locate(TEXT, "games[5].id"), None);
        assert_eq!(locate(TEXT, "ssh.listen.deeper"), None);
        assert_eq!(locate(TEXT, "DUNGEONGATE_NOPE_X"), None);
        assert_eq!(locate(TEXT, "games[x]"), None);
        assert_eq!(locate("", "ssh"), None);
        assert_eq!(locate("ssh: [unclosed", "ssh.listen"), None);
    }

    #[test]
    fn key_paths_parse() {
        assert_eq!(parse_path("."), Some(Vec::new()));
        assert_eq!(
            parse_path("a.b[2][3].c"),
            Some(vec![
                Step::Key("a".into()),
                Step::Key("b".into()),
                Step::Index(2),
                Step::Index(3),
                Step::Key("c".into())
            ])
        );
        assert_eq!(parse_path("a..b"), None);
        assert_eq!(parse_path("a[1"), None);
        assert_eq!(parse_path("a[1]x"), None);
    }
}
