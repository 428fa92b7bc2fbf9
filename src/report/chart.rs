//! The chart pieces shared by `plot` and the reproduction report: a [`Chart`] of [`Series`]
//! (lines, markers, shaded bands), linear or log x axes, drawn with plotters as SVG and PNG, on
//! one panel or two stacked panels that share their x axis ([`render_panels`]).
//!
//! Text in the PNGs is drawn with DejaVu Sans compiled into the binary (crate `dejavu`, drawn by
//! ab_glyph), so no system font, fontconfig or FreeType is needed. The SVGs name the `sans-serif`
//! family and leave the font to the viewer.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::error::ReportError;

/// Chart size in pixels (PNG) and user units (SVG).
pub const CHART_SIZE: (u32, u32) = (960, 600);

/// Tableau 10: distinct, colour-blind-friendlier than plotters' default palette.
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Where the legend sits (the corner the curves usually leave free).
#[derive(Clone, Copy)]
pub(crate) enum Legend {
    UpperRight,
    LowerRight,
    UpperLeft,
}

/// How x values are placed along the axis. Points are given in data units either way; a log
/// axis takes only positive x and labels its ticks in data units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum XScale {
    Linear,
    /// Base 2: with `integer_x`, ticks at powers of two (4, 8, 16 workers; tau 8, 32, 128).
    Log2,
    /// Base 10 (counts over several decades: rounds against all-reduce steps).
    Log10,
}

impl XScale {
    /// Data units to axis position.
    fn axis(self, x: f64) -> f64 {
        match self {
            XScale::Linear => x,
            XScale::Log2 => x.log2(),
            XScale::Log10 => x.log10(),
        }
    }

    /// Axis position back to data units (tick labels).
    fn data(self, v: f64) -> f64 {
        match self {
            XScale::Linear => v,
            XScale::Log2 => v.exp2(),
            XScale::Log10 => 10f64.powf(v),
        }
    }
}

pub(crate) struct Series {
    pub label: String,
    pub color: RGBColor,
    pub dashed: bool,
    /// Dots at the points (when there are at most 60 of them).
    pub markers: bool,
    /// A shaded band under the line, as `(x, low, high)`; empty for none.
    pub band: Vec<(f64, f64, f64)>,
    pub points: Vec<(f64, f64)>,
}

pub(crate) struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Ticks at whole numbers only (rounds), on the axis scale.
    pub integer_x: bool,
    pub x_scale: XScale,
    /// The y axis starts at 0 (weights).
    pub y_from_zero: bool,
    /// The x range in data units, when several panels must share it; else from the points.
    pub x_range: Option<(f64, f64)>,
    pub legend: Legend,
    pub series: Vec<Series>,
}

/// DejaVu Sans registered once for the process as plotters' `sans-serif` family.
pub(crate) fn register_fonts() -> Result<(), ReportError> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .and_then(|_| register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold()))
            .map_err(|_| "plot: the embedded DejaVu Sans font does not load".to_string())
    })
    .clone()
    .map_err(ReportError::Other)
}

/// Writes `chart` as `stem.svg` and `stem.png` in `out_dir`.
pub(crate) fn render(
    chart: &Chart,
    out_dir: &Path,
    stem: &str,
) -> Result<[PathBuf; 2], ReportError> {
    let svg = out_dir.join(format!("{stem}.svg"));
    let fail = |path: &Path, e: String| ReportError::Other(format!("{}: {e}", path.display()));
    {
        let root = SVGBackend::new(&svg, CHART_SIZE).into_drawing_area();
        draw(&root, chart).map_err(|e| fail(&svg, e))?;
        root.present().map_err(|e| fail(&svg, e.to_string()))?;
    }
    Ok([svg, render_png(chart, out_dir, stem)?])
}

/// Writes `chart` as `stem.png` in `out_dir` (created if missing), with the embedded font.
pub(crate) fn render_png(
    chart: &Chart,
    out_dir: &Path,
    stem: &str,
) -> Result<PathBuf, ReportError> {
    register_fonts()?;
    std::fs::create_dir_all(out_dir).map_err(|e| ReportError::io(out_dir, e))?;
    let png = out_dir.join(format!("{stem}.png"));
    {
        let fail = |e: String| ReportError::Other(format!("{}: {e}", png.display()));
        let root = BitMapBackend::new(&png, CHART_SIZE).into_drawing_area();
        draw(&root, chart).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok(png)
}

/// The axis range covering `values`, padded by 5% (a unit wide when all are equal or none).
fn axis_range(values: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if from_zero {
        lo = lo.min(0.0);
    }
    if hi - lo < 1e-12 {
        hi += 0.5;
        lo -= if from_zero && lo >= 0.0 { 0.0 } else { 0.5 };
    }
    let pad = 0.05 * (hi - lo);
    let lo = if from_zero && lo >= 0.0 { lo } else { lo - pad };
    (lo, hi + pad)
}

/// Tick labels with as many decimals as the axis span needs.
fn tick_formatter(span: f64) -> impl Fn(&f64) -> String {
    let step = span / 10.0;
    let decimals = if step > 0.0 && step.is_finite() {
        (-step.log10()).ceil().clamp(0.0, 6.0) as usize
    } else {
        0
    };
    move |v: &f64| format!("{v:.decimals$}")
}

/// A chart's plotting area: f64 coordinates on both axes (the x axis already on its scale).
type Plot<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let ((x0, x1), (y0, y1)) = ranges(chart);
    let mut ctx = ChartBuilder::on(root)
        .caption(&chart.title, ("sans-serif", 24).into_font())
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    draw_mesh(&mut ctx, chart, x1 - x0, y1 - y0)?;
    draw_series(&mut ctx, chart)?;
    ctx.configure_series_labels()
        .position(match chart.legend {
            Legend::UpperRight => SeriesLabelPosition::UpperRight,
            Legend::LowerRight => SeriesLabelPosition::LowerRight,
            Legend::UpperLeft => SeriesLabelPosition::UpperLeft,
        })
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// The x and y ranges of the plotting area, x on the axis scale: the chart's own x range or one
/// covering its points, and a y range covering points and bands with room for the legend.
fn ranges(chart: &Chart) -> ((f64, f64), (f64, f64)) {
    let scale = chart.x_scale;
    let to_x = |x: f64| scale.axis(x);
    let points = || chart.series.iter().flat_map(|s| s.points.iter());
    let band_ys = || {
        chart
            .series
            .iter()
            .flat_map(|s| s.band.iter().flat_map(|b| [b.1, b.2]))
    };
    let x = if let Some((lo, hi)) = chart.x_range {
        (to_x(lo), to_x(hi))
    } else if scale != XScale::Linear {
        axis_range(points().map(|p| to_x(p.0)), false)
    } else if chart.integer_x {
        let (lo, hi) = axis_range(points().map(|p| p.0), true);
        (lo.min(0.0), hi)
    } else {
        axis_range(points().map(|p| p.0).chain([0.0]), true)
    };
    let (y0, y1) = axis_range(points().map(|p| p.1).chain(band_ys()), chart.y_from_zero);
    // Room for the legend in its corner, so it never hides a curve: a legend entry is about 20
    // pixels of a plotting area about 480 high.
    let f = ((20.0 * chart.series.len() as f64 + 20.0) / 480.0).min(0.6);
    let grown = (y1 - y0) / (1.0 - f);
    let y = match chart.legend {
        Legend::UpperRight | Legend::UpperLeft => (y0, y0 + grown),
        Legend::LowerRight => (y1 - grown, y1),
    };
    (x, y)
}

/// The grid, the axis labels and the tick labels (in data units on a log axis, whole numbers
/// for `integer_x`, else with as many decimals as the span `x_span` or `y_span` needs).
fn draw_mesh<DB: DrawingBackend>(
    ctx: &mut Plot<'_, DB>,
    chart: &Chart,
    x_span: f64,
    y_span: f64,
) -> Result<(), String> {
    let scale = chart.x_scale;
    let x_fmt = tick_formatter(x_span);
    let int_fmt = |v: &f64| format!("{v:.0}");
    let log_fmt = |v: &f64| significant(scale.data(*v));
    let y_fmt = tick_formatter(y_span);
    let x_ticks = if chart.integer_x {
        (x_span.floor() as usize + 1).clamp(2, 11)
    } else {
        10
    };
    let mut mesh = ctx.configure_mesh();
    mesh.x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .x_labels(x_ticks)
        .y_labels(8)
        .y_label_formatter(&y_fmt)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 18))
        .light_line_style(RGBColor(235, 235, 235));
    if scale != XScale::Linear {
        mesh.x_label_formatter(&log_fmt);
    } else if chart.integer_x {
        mesh.x_label_formatter(&int_fmt);
    } else {
        mesh.x_label_formatter(&x_fmt);
    }
    mesh.draw().map_err(|e| e.to_string())
}

/// Every series' band, then every series' line (so each line stays visible over the bands),
/// with its legend entry and its markers.
fn draw_series<DB: DrawingBackend>(ctx: &mut Plot<'_, DB>, chart: &Chart) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let to_x = |x: f64| chart.x_scale.axis(x);
    for s in &chart.series {
        let band: Vec<(f64, f64, f64)> = s
            .band
            .iter()
            .map(|&(x, lo, hi)| (to_x(x), lo, hi))
            .filter(|(x, lo, hi)| x.is_finite() && lo.is_finite() && hi.is_finite())
            .collect();
        if band.len() >= 2 {
            let outline: Vec<(f64, f64)> = band
                .iter()
                .map(|b| (b.0, b.2))
                .chain(band.iter().rev().map(|b| (b.0, b.1)))
                .collect();
            ctx.draw_series([Polygon::new(outline, s.color.mix(0.18).filled())])
                .map_err(err)?;
        }
    }
    for s in &chart.series {
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|&(x, y)| (to_x(x), y))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        let color = s.color;
        let style = color.stroke_width(2);
        let drawn = if s.dashed {
            ctx.draw_series(DashedLineSeries::new(pts.clone(), 8, 6, style))
                .map_err(err)?
        } else {
            ctx.draw_series(LineSeries::new(pts.clone(), style))
                .map_err(err)?
        };
        drawn.label(s.label.as_str()).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
        });
        // Markers show where the measurements are when there are few of them.
        if s.markers && pts.len() <= 60 {
            ctx.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(err)?;
        }
    }
    Ok(())
}

/// A tick label in data units with two significant digits at most (3, 32, 320, 3.2k, 3.2M).
fn significant(v: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let (scaled, suffix) = match v.abs() {
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let decimals = if scaled.abs() >= 10.0 || scaled == scaled.round() {
        0
    } else {
        1
    };
    let rounded = if scaled.abs() >= 10.0 {
        let p = 10f64.powf(scaled.abs().log10().floor() - 1.0);
        (scaled / p).round() * p
    } else {
        scaled
    };
    format!("{rounded:.decimals$}{suffix}")
}

/// Writes `top` over `bottom` (each half the height, sharing the x range of both) as
/// `stem.svg` and `stem.png` in `out_dir` (created if missing).
pub(crate) fn render_panels(
    top: &Chart,
    bottom: &Chart,
    out_dir: &Path,
    stem: &str,
) -> Result<[PathBuf; 2], ReportError> {
    register_fonts()?;
    std::fs::create_dir_all(out_dir).map_err(|e| ReportError::io(out_dir, e))?;
    let size = (CHART_SIZE.0, CHART_SIZE.1 * 3 / 2);
    let fail = |path: &Path, e: String| ReportError::Other(format!("{}: {e}", path.display()));
    let svg = out_dir.join(format!("{stem}.svg"));
    let png = out_dir.join(format!("{stem}.png"));
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        let (a, b) = root.split_vertically(size.1 / 2);
        draw(&a, top)
            .and_then(|_| draw(&b, bottom))
            .map_err(|e| fail(&svg, e))?;
        root.present().map_err(|e| fail(&svg, e.to_string()))?;
    }
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        let (a, b) = root.split_vertically(size.1 / 2);
        draw(&a, top)
            .and_then(|_| draw(&b, bottom))
            .map_err(|e| fail(&png, e))?;
        root.present().map_err(|e| fail(&png, e.to_string()))?;
    }
    Ok([svg, png])
}
