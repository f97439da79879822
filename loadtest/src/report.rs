//! Results: one [`Outcome`] per scenario run against one server, printed as a human table,
//! written as JSON lines, and (for `compare`) laid out side by side with ratios.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::stats::Errors;

/// Which direction of a metric is good, so a reader of the ratio knows what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// More is better (rates, sessions held).
    Higher,
    /// Less is better (latency, CPU, memory).
    Lower,
    /// Context only (e.g. CPU utilisation of the client).
    Info,
}

/// One named figure of a result.
#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    /// Stable name (`cycles_per_s`, `rtt_p99_us`, ...).
    pub name: &'static str,
    /// The value.
    pub value: f64,
    /// Unit for the table.
    pub unit: &'static str,
    /// Which direction is good.
    pub better: Better,
}

/// The result of one scenario against one server.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Server label.
    pub server: String,
    /// Scenario name.
    pub scenario: &'static str,
    /// The scenario's settings, as given.
    pub params: serde_json::Value,
    /// Figures in display order.
    pub metrics: Vec<Metric>,
    /// Failures by kind.
    pub errors: Errors,
    /// Sorted latency samples in µs (for the chart; not written to JSON).
    #[serde(skip)]
    pub latencies_us: Vec<u32>,
    /// What the latency samples measure (chart title), empty when there are none.
    #[serde(skip)]
    pub latency_label: &'static str,
}

impl Outcome {
    /// A new outcome with no metrics yet.
    pub fn new(server: &str, scenario: &'static str, params: serde_json::Value) -> Outcome {
        Outcome {
            server: server.to_owned(),
            scenario,
            params,
            metrics: Vec::new(),
            errors: Errors::default(),
            latencies_us: Vec::new(),
            latency_label: "",
        }
    }

    /// Appends a metric.
    pub fn push(&mut self, name: &'static str, value: f64, unit: &'static str, better: Better) {
        self.metrics.push(Metric {
            name,
            value,
            unit,
            better,
        });
    }

    /// Pushes the median and 99th percentile of a latency summary (µs samples) in ms, under
    /// the names given (`cycle_p50_ms`, ...): lower is better.
    pub fn push_p50_p99_ms(&mut self, names: [&'static str; 2], s: &crate::stats::Summary) {
        for (name, value) in names.into_iter().zip([s.p50, s.p99]) {
            self.push(name, f64::from(value) / 1e3, "ms", Better::Lower);
        }
    }

    /// Looks a metric up by name.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
    }
}

/// Prints one outcome as a small table.
pub fn print_outcome(o: &Outcome) {
    let mut s = String::new();
    let _ = writeln!(s, "== {} @ {}  {}", o.scenario, o.server, o.params);
    for m in &o.metrics {
        let _ = writeln!(s, "  {:<28} {:>14} {}", m.name, fmt_value(m.value), m.unit);
    }
    if o.errors.total() > 0 {
        let _ = writeln!(s, "  {:<28} {}", "errors", o.errors.describe());
    }
    print!("{s}");
    let _ = std::io::stdout().flush();
}

/// Appends outcomes to `path` as JSON lines.
pub fn write_json(path: &Path, outcomes: &[Outcome]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    for o in outcomes {
        let mut line = serde_json::to_value(o)?;
        if let Some(obj) = line.as_object_mut() {
            obj.insert("machine".into(), crate::machine::facts_json());
        }
        writeln!(f, "{line}")?;
    }
    Ok(())
}

/// The side-by-side table of `compare`: one row per (scenario, metric), one column per server,
/// then `dungeongate/peer` ratios. `first` is the server the ratios are taken for.
pub fn comparison_table(outcomes: &[Outcome], servers: &[String], first: &str) -> String {
    let peers: Vec<&String> = servers.iter().filter(|s| s.as_str() != first).collect();
    let mut out = String::new();
    let _ = write!(out, "{:<11} {:<26} {:<6}", "scenario", "metric", "better");
    for s in servers {
        let _ = write!(out, " {s:>13}");
    }
    for p in &peers {
        let _ = write!(out, " {:>13}", format!("{first}/{p}"));
    }
    let _ = writeln!(out, "  unit");
    let mut scenarios: Vec<&'static str> = Vec::new();
    for o in outcomes {
        if !scenarios.contains(&o.scenario) {
            scenarios.push(o.scenario);
        }
    }
    for sc in scenarios {
        let find = |server: &str| {
            outcomes
                .iter()
                .find(|o| o.scenario == sc && o.server == server)
        };
        // Metric order from the first server that ran this scenario.
        let Some(proto) = servers.iter().find_map(|s| find(s)) else {
            continue;
        };
        for m in &proto.metrics {
            let better = match m.better {
                Better::Higher => "higher",
                Better::Lower => "lower",
                Better::Info => "-",
            };
            let _ = write!(out, "{sc:<11} {:<26} {better:<6}", m.name);
            let value = |s: &str| find(s).and_then(|o| o.get(m.name));
            for s in servers {
                let _ = write!(
                    out,
                    " {:>13}",
                    value(s).map_or_else(|| "n/a".to_owned(), fmt_value)
                );
            }
            for p in &peers {
                let ratio = match (value(first), value(p)) {
                    (Some(a), Some(b)) if b != 0.0 && m.better != Better::Info => {
                        format!("{:.3}", a / b)
                    }
                    _ => "-".to_owned(),
                };
                let _ = write!(out, " {ratio:>13}");
            }
            let _ = writeln!(out, "  {}", m.unit);
        }
        for s in servers {
            if let Some(o) = find(s) {
                if o.errors.total() > 0 {
                    let _ = writeln!(out, "{sc:<11} errors@{s}: {}", o.errors.describe());
                }
            }
        }
    }
    out
}

/// Formats a figure with sensible precision.
fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(server: &str, rate: f64, cpu: f64) -> Outcome {
        let mut o = Outcome::new(server, "storm", serde_json::json!({}));
        o.push("cycles_per_s", rate, "1/s", Better::Higher);
        o.push("server_cpu_per_login_us", cpu, "µs", Better::Lower);
        o
    }

    #[test]
    fn the_comparison_shows_each_server_and_the_ratio_to_each_peer() {
        let outs = vec![
            outcome("dg", 1000.0, 250.0),
            outcome("ossh", 100.0, 16000.0),
        ];
        let t = comparison_table(&outs, &["dg".into(), "ossh".into()], "dg");
        let row = t.lines().find(|l| l.contains("cycles_per_s")).expect("row");
        assert!(
            row.contains("1000") && row.contains("100") && row.contains("10.000"),
            "{row}"
        );
        let row = t.lines().find(|l| l.contains("server_cpu")).expect("row");
        assert!(row.contains("0.016"), "{row}");
    }

    #[test]
    fn a_missing_peer_shows_not_available_instead_of_a_ratio() {
        let outs = vec![outcome("dg", 1000.0, 250.0)];
        let t = comparison_table(&outs, &["dg".into(), "ossh".into()], "dg");
        let row = t.lines().find(|l| l.contains("cycles_per_s")).expect("row");
        assert!(
            row.contains("n/a") && row.trim_end().ends_with("1/s"),
            "{row}"
        );
    }
}
