//! `veilgrid rates --plot FILE.svg`: the value of every currency in the numeraire after
//! each cleared round (the table refitted to the history up to that round), one line
//! per currency, log scale. SVG only: plotters writes labels as `<text>` elements, so
//! no system fonts are needed.

use std::{collections::BTreeMap, path::Path};

use plotters::prelude::*;
use veilgrid_matcher::rates::{fit, latest_per_pair};
use veilgrid_proto::matching::v1 as pb;

use crate::Error;

/// One line per currency: `(round index, value in the numeraire)`.
pub(crate) type Series = BTreeMap<String, Vec<(usize, f64)>>;

/// The value of every currency after each round of `history`.
pub(crate) fn series(numeraire: &str, history: &[pb::PairClearing]) -> Result<Series, Error> {
    let mut out = Series::new();
    for i in 1..=history.len() {
        let table = fit(numeraire, &latest_per_pair(&history[..i]))
            .map_err(|e| Error::Service(e.to_string()))?;
        for (c, v) in &table.log_values {
            if c != numeraire {
                out.entry(c.clone()).or_default().push((i, v.exp()));
            }
        }
    }
    Ok(out)
}

fn chart_error<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> Error + '_ {
    move |e| Error::Service(format!("drawing {}: {e}", path.display()))
}

/// Draw `series` into an SVG file at `path`; returns the number of points drawn.
pub(crate) fn draw(path: &Path, numeraire: &str, series: &Series) -> Result<usize, Error> {
    let fail = chart_error(path);
    let rounds = series
        .values()
        .flat_map(|s| s.iter().map(|p| p.0))
        .max()
        .unwrap_or(1)
        .max(1);
    let (lo, hi) = series
        .values()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let (lo, hi) = if lo.is_finite() && hi.is_finite() && lo > 0.0 {
        (lo / 1.25, hi * 1.25)
    } else {
        (0.1, 10.0)
    };
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(&fail)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("value of one unit in {numeraire}, after each cleared round"),
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0usize..rounds + 1, (lo..hi).log_scale())
        .map_err(&fail)?;
    chart
        .configure_mesh()
        .x_desc("cleared round")
        .y_desc(format!("value in {numeraire} (log scale)"))
        .draw()
        .map_err(&fail)?;
    let mut points = 0;
    for (i, (currency, line)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        points += line.len();
        chart
            .draw_series(LineSeries::new(line.iter().copied(), color.stroke_width(2)))
            .map_err(&fail)?
            .label(currency.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(line.iter().map(|p| Circle::new(*p, 3, color.filled())))
            .map_err(&fail)?;
    }
    if !series.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(&fail)?;
    }
    root.present().map_err(&fail)?;
    Ok(points)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn h(base: &str, quote: &str, rate: f64) -> pb::PairClearing {
        pb::PairClearing {
            base: base.into(),
            quote: quote.into(),
            rate,
            volume: 10,
            ..Default::default()
        }
    }

    #[test]
    fn series_follow_the_refitted_table_and_the_chart_names_every_currency() {
        let history = [
            h("ALC", "VG", 2.0),
            h("BOB", "VG", 0.5),
            h("ALC", "VG", 1.0), // ALC falls
        ];
        let s = series("VG", &history).unwrap();
        assert_eq!(s["ALC"], vec![(1, 2.0), (2, 2.0), (3, 1.0)]);
        assert_eq!(s["BOB"].len(), 2);
        assert!(!s.contains_key("VG"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rates.svg");
        assert_eq!(draw(&path, "VG", &s).unwrap(), 5);
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        for label in ["ALC", "BOB", "cleared round", "value in VG"] {
            assert!(svg.contains(label), "{label} missing");
        }
        // an empty history still draws an (empty) chart
        let empty = dir.path().join("empty.svg");
        assert_eq!(draw(&empty, "VG", &Series::new()).unwrap(), 0);
    }
}
