//! The reproduction's charts: one line per method with its seeds shaded (mean ± std), drawn by
//! `report::plot` as PNG.

use std::path::{Path, PathBuf};

use super::methods::color;
use crate::report::bands::{seed_band, Grid};
use crate::report::error::ReportError;
use crate::report::plot::{render_png, Chart, Legend, Series, XScale};
use crate::report::verdict::Stat;

/// Axis titles and scale of a chart.
pub struct Axes {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_scale: XScale,
    pub integer_x: bool,
}

/// One method's curves, one per seed, as `(x, y)`.
pub type SeedCurves = (String, Vec<Vec<(f64, f64)>>);

/// A chart of each method's seeds as mean ± std on `grid`, written to `dir/stem.png`. Methods
/// whose curves do not overlap are left out.
pub fn seed_chart(
    axes: Axes,
    methods: &[SeedCurves],
    grid: Grid,
    dir: &Path,
    stem: &str,
) -> Result<PathBuf, ReportError> {
    let series = methods
        .iter()
        .filter_map(|(m, curves)| {
            let band = seed_band(curves, grid);
            if band.is_empty() {
                return None;
            }
            Some(Series {
                label: format!("{m} (n={})", curves.len()),
                color: color(m),
                dashed: false,
                markers: false,
                band: band
                    .iter()
                    .map(|p| (p.x, p.mean - p.std, p.mean + p.std))
                    .collect(),
                points: band.iter().map(|p| (p.x, p.mean)).collect(),
            })
        })
        .collect();
    draw(axes, series, dir, stem)
}

/// A chart of each method's stat at a few x values (worker counts, tau), mean ± std.
pub fn stat_chart(
    axes: Axes,
    methods: &[(String, Vec<(f64, Stat)>)],
    scale: f64,
    dir: &Path,
    stem: &str,
) -> Result<PathBuf, ReportError> {
    let series = methods
        .iter()
        .map(|(m, pts)| Series {
            label: m.clone(),
            color: color(m),
            dashed: false,
            markers: true,
            band: pts
                .iter()
                .map(|(x, s)| (*x, scale * (s.mean - s.std), scale * (s.mean + s.std)))
                .collect(),
            points: pts.iter().map(|(x, s)| (*x, scale * s.mean)).collect(),
        })
        .collect();
    draw(axes, series, dir, stem)
}

fn draw(axes: Axes, series: Vec<Series>, dir: &Path, stem: &str) -> Result<PathBuf, ReportError> {
    let chart = Chart {
        title: axes.title,
        x_label: axes.x_label,
        y_label: axes.y_label,
        integer_x: axes.integer_x,
        x_scale: axes.x_scale,
        y_from_zero: false,
        x_range: None,
        legend: Legend::LowerRight,
        series,
    };
    render_png(&chart, dir, stem)
}
