//! SVG chart of latency distributions: one panel per scenario that records latencies (storm
//! cycles, echo keystrokes), one line per server, drawn as a CDF over a log-scaled latency
//! axis so the median and the tail are both readable.

use std::path::Path;

use plotters::prelude::*;

use crate::report::Outcome;

/// Series colours, one per server in order.
const COLOURS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

/// Points per series (the sorted samples are thinned to this many quantiles).
const POINTS: usize = 400;

/// Writes the chart of every outcome with latency samples to `path`. Does nothing (and
/// returns `Ok(false)`) when no outcome has samples.
pub fn write_svg(path: &Path, outcomes: &[Outcome]) -> anyhow::Result<bool> {
    let mut panels: Vec<&'static str> = Vec::new();
    for o in outcomes {
        if !o.latencies_us.is_empty() && !panels.contains(&o.scenario) {
            panels.push(o.scenario);
        }
    }
    if panels.is_empty() {
        return Ok(false);
    }
    let mut servers: Vec<&str> = Vec::new();
    for o in outcomes {
        if !servers.contains(&o.server.as_str()) {
            servers.push(&o.server);
        }
    }
    let height = 420 * u32::try_from(panels.len()).unwrap_or(1);
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let areas = root.split_evenly((panels.len(), 1));
    for (area, scenario) in areas.iter().zip(&panels) {
        let series: Vec<&Outcome> = outcomes
            .iter()
            .filter(|o| o.scenario == *scenario && !o.latencies_us.is_empty())
            .collect();
        let lo = series
            .iter()
            .filter_map(|o| o.latencies_us.first())
            .min()
            .copied()
            .unwrap_or(1)
            .max(1);
        let hi = series
            .iter()
            .filter_map(|o| o.latencies_us.last())
            .max()
            .copied()
            .unwrap_or(2)
            .max(lo + 1);
        let title = series.first().map_or(*scenario, |o| o.latency_label);
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{title} — latency CDF"), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(
                (f64::from(lo) * 0.9..f64::from(hi) * 1.1).log_scale(),
                0.0..100.0,
            )?;
        chart
            .configure_mesh()
            .x_desc("latency (µs, log scale)")
            .y_desc("% of samples ≤ x")
            .draw()?;
        for o in series {
            let idx = servers.iter().position(|s| *s == o.server).unwrap_or(0);
            let colour = COLOURS.get(idx % COLOURS.len()).copied().unwrap_or(BLACK);
            chart
                .draw_series(LineSeries::new(
                    cdf_points(&o.latencies_us),
                    colour.stroke_width(2),
                ))?
                .label(o.server.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(true)
}

/// (latency, cumulative %) at up to [`POINTS`] evenly spaced ranks of sorted samples.
fn cdf_points(sorted: &[u32]) -> Vec<(f64, f64)> {
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let step = (n / POINTS).max(1);
    let mut pts: Vec<(f64, f64)> = (0..n)
        .step_by(step)
        .filter_map(|i| {
            let v = sorted.get(i)?;
            Some((f64::from((*v).max(1)), (i + 1) as f64 * 100.0 / n as f64))
        })
        .collect();
    if let Some(last) = sorted.last() {
        pts.push((f64::from((*last).max(1)), 100.0));
    }
    pts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Outcome;

    #[test]
    fn the_cdf_ends_at_the_largest_sample_and_100_percent() {
        let sorted: Vec<u32> = (1..=10_000).collect();
        let pts = cdf_points(&sorted);
        assert!(pts.len() <= POINTS + 2, "{}", pts.len());
        assert_eq!(pts.last(), Some(&(10_000.0, 100.0)));
        assert!(pts.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn a_chart_with_two_servers_names_both_in_the_svg() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lat.svg");
        let mut a = Outcome::new("alpha", "echo", serde_json::json!({}));
        a.latencies_us = (100..2000).collect();
        a.latency_label = "echo";
        let mut b = Outcome::new("beta", "echo", serde_json::json!({}));
        b.latencies_us = (300..5000).collect();
        assert!(write_svg(&path, &[a, b]).expect("svg"));
        let svg = std::fs::read_to_string(&path).expect("read");
        assert!(svg.starts_with("<svg") && svg.contains("alpha") && svg.contains("beta"));
    }
}
