//! `plot`: charts of several runs, each written as SVG and PNG (plotters).
//!
//! - `test_accuracy_vs_time`, `test_accuracy_vs_rounds`, `test_loss_vs_time`,
//!   `test_loss_vs_rounds`: every run's evaluations overlaid, one colour per run, legend = run label
//!   (`"lgrawa s0"`). Time is seconds since training started (minutes or hours for long runs);
//!   rounds are the averaging rounds completed when the evaluation ran.
//! - `weights_<label>`: for each run whose rounds carry GRAWA weights, each worker's weight per
//!   round (for per-layer weights, the worker's mean over layers), with the uniform weight 1/n
//!   dashed for reference.
//!
//! - `test_accuracy_and_link_vs_time`: when runs model a link (`--link`), test accuracy against
//!   time over a second panel of each run's cumulative modelled link seconds (from the `link_ms`
//!   of its round and steps events), so the link's share of the time is visible.
//!
//! The chart pieces live in `report::chart`, shared with the reproduction report.

use std::path::{Path, PathBuf};

use plotters::style::RGBColor;

pub use super::chart::CHART_SIZE;
pub(crate) use super::chart::{
    register_fonts, render, render_panels, render_png, Chart, Legend, Series, XScale, PALETTE,
};
use super::error::ReportError;
use super::reach::{has_link_time, link_curve};
use super::runs::{load_runs, EvalRecord, RunData};

/// Draws every chart of `runs` into `out_dir` (created if missing) and returns the files written,
/// SVG and PNG of each chart in turn.
pub fn plot(runs: &[RunData], out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    if runs.is_empty() {
        return Err(ReportError::Other("plot: no runs given".into()));
    }
    register_fonts()?;
    std::fs::create_dir_all(out_dir).map_err(|e| ReportError::io(out_dir, e))?;

    let mut order: Vec<&RunData> = runs.iter().collect();
    order.sort_by(|a, b| {
        (a.method(), a.summary.seed, &a.dir).cmp(&(b.method(), b.summary.seed, &b.dir))
    });
    let labels = unique_labels(&order);

    let mut written = Vec::new();
    let time = TimeUnit::for_seconds(
        order
            .iter()
            .flat_map(|r| r.evals.iter().map(|e| e.seconds))
            .filter(|s| s.is_finite())
            .fold(0.0, f64::max),
    );
    let rounds: Vec<Vec<u64>> = order.iter().map(|r| r.eval_rounds()).collect();
    for m in &METRICS {
        let [vs_time, vs_rounds] = metric_charts(m, &order, &labels, &time, &rounds);
        written.extend(render(&vs_time, out_dir, &format!("{}_vs_time", m.stem))?);
        written.extend(render(
            &vs_rounds,
            out_dir,
            &format!("{}_vs_rounds", m.stem),
        )?);
    }
    if order.iter().any(|r| has_link_time(r)) {
        let (top, bottom) = link_panels(&order, &labels, &time);
        written.extend(render_panels(
            &top,
            &bottom,
            out_dir,
            "test_accuracy_and_link_vs_time",
        )?);
    }

    written.extend(weights_charts(&order, &labels, out_dir)?);
    Ok(written)
}

/// The charts of one measure, every run overlaid: against training time, and against the rounds
/// completed when each evaluation ran (`rounds`, per run and evaluation).
fn metric_charts(
    m: &Metric,
    order: &[&RunData],
    labels: &[String],
    time: &TimeUnit,
    rounds: &[Vec<u64>],
) -> [Chart; 2] {
    let chart = |title: String, x_label: String, integer_x: bool, series: Vec<Series>| Chart {
        title,
        x_label,
        y_label: m.y_label.to_string(),
        integer_x,
        x_scale: XScale::Linear,
        y_from_zero: false,
        x_range: None,
        legend: m.legend,
        series,
    };
    [
        chart(
            format!("{} against training time", m.y_label),
            format!("training time ({})", time.name),
            false,
            eval_series(order, labels, m.value, &|i, k| {
                order[i].evals[k].seconds / time.seconds
            }),
        ),
        chart(
            format!("{} against averaging rounds", m.y_label),
            "rounds".to_string(),
            true,
            eval_series(order, labels, m.value, &|i, k| rounds[i][k] as f64),
        ),
    ]
}

/// One series per run (colour by its place in `order`): `value` of each of its evaluations at
/// `x_of(run, evaluation)`.
fn eval_series(
    order: &[&RunData],
    labels: &[String],
    value: fn(&EvalRecord) -> f64,
    x_of: &dyn Fn(usize, usize) -> f64,
) -> Vec<Series> {
    order
        .iter()
        .zip(labels)
        .enumerate()
        .map(|(i, (run, label))| Series {
            label: label.clone(),
            color: PALETTE[i % PALETTE.len()],
            dashed: false,
            markers: true,
            band: Vec::new(),
            points: run
                .evals
                .iter()
                .enumerate()
                .map(|(k, e)| (x_of(i, k), value(e)))
                .collect(),
        })
        .collect()
}

/// The GRAWA weights chart of every run that has weights, file names made unique.
fn weights_charts(
    order: &[&RunData],
    labels: &[String],
    out_dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    let mut stems: Vec<String> = Vec::new();
    for (run, label) in order.iter().zip(labels) {
        let Some(chart) = weights_chart(run, label) else {
            continue;
        };
        let mut stem = format!("weights_{}", slug(label));
        let base = stem.clone();
        let mut k = 2;
        while stems.contains(&stem) {
            stem = format!("{base}_{k}");
            k += 1;
        }
        stems.push(stem.clone());
        written.extend(render(&chart, out_dir, &stem)?);
    }
    Ok(written)
}

/// Test accuracy against time over cumulative modelled link seconds against time, one colour per
/// run in both panels, on one shared time axis.
fn link_panels(order: &[&RunData], labels: &[String], time: &TimeUnit) -> (Chart, Chart) {
    let color = |i: usize| PALETTE[i % PALETTE.len()];
    let accuracy = eval_series(order, labels, ACCURACY.value, &|i, k| {
        order[i].evals[k].seconds / time.seconds
    });
    let link: Vec<Series> = order
        .iter()
        .zip(labels)
        .enumerate()
        .map(|(i, (run, label))| Series {
            label: label.clone(),
            color: color(i),
            dashed: false,
            markers: false,
            band: Vec::new(),
            // From (0, 0), a step up at each event's time.
            points: std::iter::once((0.0, 0.0))
                .chain(
                    link_curve(run)
                        .into_iter()
                        .scan(0.0, |prev, (t, total)| {
                            let step = [(t / time.seconds, *prev), (t / time.seconds, total)];
                            *prev = total;
                            Some(step)
                        })
                        .flatten(),
                )
                .collect(),
        })
        .collect();
    let xs = accuracy
        .iter()
        .chain(&link)
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|x| x.is_finite());
    let hi = xs.fold(0.0, f64::max);
    let x_range = Some((0.0, if hi > 0.0 { hi * 1.02 } else { 1.0 }));
    let x_label = format!("training time ({})", time.name);
    (
        Chart {
            title: "test accuracy against training time".to_string(),
            x_label: x_label.clone(),
            y_label: "test accuracy (%)".to_string(),
            integer_x: false,
            x_scale: XScale::Linear,
            y_from_zero: false,
            x_range,
            legend: Legend::LowerRight,
            series: accuracy,
        },
        Chart {
            title: "modelled link time, cumulative (--link)".to_string(),
            x_label,
            y_label: "link seconds".to_string(),
            integer_x: false,
            x_scale: XScale::Linear,
            y_from_zero: true,
            x_range,
            legend: Legend::UpperLeft,
            series: link,
        },
    )
}

/// The chart of each worker's weight per round for a GRAWA run (`None` for other runs).
pub(crate) fn weights_chart(run: &RunData, label: &str) -> Option<Chart> {
    if !run.has_weights() {
        return None;
    }
    let per_round = run.worker_weights();
    let workers = run.summary.workers.max(1);
    let mut series: Vec<Series> = (0..workers)
        .map(|w| Series {
            label: format!("worker {w}"),
            color: PALETTE[w % PALETTE.len()],
            dashed: false,
            markers: true,
            band: Vec::new(),
            points: per_round
                .iter()
                .filter_map(|(round, ws)| Some((*round as f64, *ws.get(w)?)))
                .collect(),
        })
        .collect();
    let uniform = 1.0 / workers as f64;
    let (first, last) = per_round
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (r, _)| {
            (a.min(*r as f64), b.max(*r as f64))
        });
    series.push(Series {
        label: format!("uniform 1/{workers}"),
        color: RGBColor(90, 90, 90),
        dashed: true,
        markers: false,
        band: Vec::new(),
        points: vec![(first, uniform), (last, uniform)],
    });
    let layers = run.weight_layers();
    let what = if layers > 1 {
        format!(" (mean over {layers} layers)")
    } else {
        String::new()
    };
    Some(Chart {
        title: format!("GRAWA weights per worker: {label}{what}"),
        x_label: "round".to_string(),
        y_label: "weight".to_string(),
        integer_x: true,
        x_scale: XScale::Linear,
        y_from_zero: true,
        x_range: None,
        legend: Legend::UpperRight,
        series,
    })
}

/// Loads the run folders `dirs` and plots them into `out_dir`: the whole `plot` command in one
/// call.
pub fn plot_dirs<P: AsRef<Path>>(dirs: &[P], out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    plot(&load_runs(dirs)?, out_dir)
}

/// An evaluation measure charted against time and rounds.
#[derive(Clone, Copy)]
struct Metric {
    /// File name start.
    stem: &'static str,
    y_label: &'static str,
    legend: Legend,
    value: fn(&EvalRecord) -> f64,
}

const ACCURACY: Metric = Metric {
    stem: "test_accuracy",
    y_label: "test accuracy (%)",
    legend: Legend::LowerRight,
    value: |e| 100.0 * e.test_accuracy,
};

const METRICS: [Metric; 2] = [
    ACCURACY,
    Metric {
        stem: "test_loss",
        y_label: "test loss",
        legend: Legend::UpperRight,
        value: |e| e.test_loss,
    },
];

/// Seconds, minutes or hours, whichever keeps the time axis readable.
struct TimeUnit {
    name: &'static str,
    seconds: f64,
}

impl TimeUnit {
    fn for_seconds(max: f64) -> Self {
        if max > 3.0 * 3600.0 {
            TimeUnit {
                name: "h",
                seconds: 3600.0,
            }
        } else if max > 600.0 {
            TimeUnit {
                name: "min",
                seconds: 60.0,
            }
        } else {
            TimeUnit {
                name: "s",
                seconds: 1.0,
            }
        }
    }
}

/// Labels for legends and file names: each run's label, with its folder name added where two runs
/// would otherwise share one.
fn unique_labels(runs: &[&RunData]) -> Vec<String> {
    let plain: Vec<String> = runs.iter().map(|r| r.label()).collect();
    plain
        .iter()
        .zip(runs)
        .map(|(l, r)| {
            if plain.iter().filter(|m| *m == l).count() > 1 {
                let folder = r
                    .dir
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_else(|| r.dir.display().to_string());
                format!("{l} ({folder})")
            } else {
                l.clone()
            }
        })
        .collect()
}

/// A file-name-safe form of a label: ASCII letters and digits, other runs of characters as `_`.
fn slug(label: &str) -> String {
    let mut out = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}
