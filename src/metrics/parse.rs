//! Reading a scrape back: the samples of a Prometheus text exposition (format 0.0.4), for
//! tests that compare scrapes before and after an event, and for the load harness.
//! Handles what the `prometheus` encoder writes: `name{l="v",…} value`, escaped label values,
//! comments; timestamps are ignored.

use std::collections::BTreeMap;
use thiserror::Error;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name including any `_bucket`/`_sum`/`_count` suffix.
    pub name: String,
    /// Label pairs, sorted by name.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// A line that is not a sample or a comment.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("line {line}: {problem}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// Every sample of `text`, in order.
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |problem| ParseError {
            line: i + 1,
            problem,
        };
        let (name, labels, rest) = match line.find('{') {
            Some(open) => {
                let (name, after) = line.split_at(open);
                let (labels, rest) = parse_labels(after.get(1..).unwrap_or_default())
                    .ok_or_else(|| err("bad label set"))?;
                (name, labels, rest)
            }
            None => {
                let (name, rest) = line.split_once(' ').ok_or_else(|| err("no value"))?;
                (name, BTreeMap::new(), rest)
            }
        };
        if name.is_empty() {
            return Err(err("no metric name"));
        }
        let value_str = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| err("no value"))?;
        let value = match value_str {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| err("bad value"))?,
        };
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(out)
}

/// The value of the sample named `name` whose labels include all of `labels`, summed over
/// every match (so `value(s, "ssh_bytes_transferred_total", &[])` is the total of both
/// directions). `None` if nothing matched.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .reduce(|a, b| a + b)
}

/// Parse `l="v",…}` and return the labels and what follows the `}`.
fn parse_labels(s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (name, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        labels.insert(name.trim().to_string(), value);
        rest = after.get(end + 1..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_with_and_without_labels_are_read() {
        let text = "# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v\",m=\"q\\\"x\"} 3\nb 1.5\nc_bucket{le=\"+Inf\"} 2\n";
        let s = parse(text).unwrap_or_default();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].labels.get("m").map(String::as_str), Some("q\"x"));
        assert_eq!(value(&s, "a_total", &[("k", "v")]), Some(3.0));
        assert_eq!(value(&s, "b", &[]), Some(1.5));
        assert_eq!(value(&s, "a_total", &[("k", "nope")]), None);
    }

    #[test]
    fn a_line_without_a_value_is_an_error() {
        assert_eq!(
            parse("ok 1\nbroken\n"),
            Err(ParseError {
                line: 2,
                problem: "no value"
            })
        );
        assert!(parse("x{a=\"unterminated} 1").is_err());
    }
}
