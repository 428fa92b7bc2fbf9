//! The numbers a benchmark run ends with, as a table for people and one JSON line for scripts
//! (`scripts/bench_pytorch.py` prints the same keys).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::flops;
use super::runner::{Measured, RunSpec, WindowLen, CLASSES};
use super::windows::{median_min_max, step_edges, steps_per_second, timed_edges};

/// One benchmark's result; serialised as the `--json` line.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// "grawa-train" here, "pytorch" from scripts/bench_pytorch.py.
    pub framework: String,
    pub model: String,
    pub batch: usize,
    pub threads: usize,
    pub workers: usize,
    pub warmup: usize,
    pub windows: usize,
    /// Seconds per window, or null with `steps_per_window`.
    pub window_secs: Option<f64>,
    pub steps_per_window: Option<usize>,
    /// Timed steps, all workers together.
    pub steps: usize,
    /// Measured wall time in seconds.
    pub seconds: f64,
    /// Median over windows, all workers together.
    pub images_per_second: f64,
    pub images_per_second_min: f64,
    pub images_per_second_max: f64,
    /// Mean milliseconds per step of one worker: forward + loss, backward, optimizer.
    pub fwd_ms: f64,
    pub bwd_ms: f64,
    pub opt_ms: f64,
    pub step_ms: f64,
    /// Peak resident memory of the process (VmHWM), MiB; null where unknown.
    pub peak_rss_mb: Option<f64>,
    /// Analytic forward FLOPs per image (conv and linear layers only).
    pub forward_flops_per_image: u64,
    /// Achieved: 3 x forward FLOPs per image x images/s (median), in units of 1e9.
    pub gflops: f64,
    /// The last step's loss (of worker 0).
    pub last_loss: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The line printed before measuring.
pub fn describe(spec: &RunSpec) -> String {
    let window = match spec.window {
        WindowLen::Seconds(s) => format!("{s} s"),
        WindowLen::Steps(n) => format!("{n} steps per worker"),
    };
    format!(
        "bench {}: batch {}, {} threads, {} worker{} ({} threads each), {} warm-up steps, {} windows of {window}",
        spec.model,
        spec.batch,
        spec.threads,
        spec.workers,
        if spec.workers == 1 { "" } else { "s" },
        spec.threads_per_worker(),
        spec.warmup,
        spec.windows,
    )
}

impl BenchReport {
    /// Summarises the measurements of `spec`.
    pub fn new(spec: &RunSpec, m: &Measured, peak_rss_mb: Option<f64>) -> Self {
        let ends: Vec<Vec<f64>> = m
            .workers
            .iter()
            .map(|w| w.iter().map(|r| r.end).collect())
            .collect();
        let edges = match spec.window {
            WindowLen::Seconds(len) => timed_edges(spec.windows, len),
            WindowLen::Steps(n) => step_edges(&ends, spec.windows, n),
        };
        let rates: Vec<f64> = steps_per_second(&ends, &edges)
            .into_iter()
            .map(|s| s * spec.batch as f64)
            .collect();
        let (median, min, max) = median_min_max(&rates);
        let all = m.workers.iter().flatten();
        let steps = all.clone().count();
        let mean = |f: fn(&super::runner::StepRecord) -> Duration| {
            if steps == 0 {
                f64::NAN
            } else {
                all.clone().map(|r| ms(f(r))).sum::<f64>() / steps as f64
            }
        };
        let (fwd, bwd, opt) = (
            mean(|r| r.forward),
            mean(|r| r.backward),
            mean(|r| r.optimizer),
        );
        let forward_flops = flops::forward_flops(spec.model, spec.shape(), CLASSES);
        Self {
            framework: "grawa-train".into(),
            model: spec.model.to_string(),
            batch: spec.batch,
            threads: spec.threads,
            workers: spec.workers,
            warmup: spec.warmup,
            windows: spec.windows,
            window_secs: match spec.window {
                WindowLen::Seconds(s) => Some(s),
                WindowLen::Steps(_) => None,
            },
            steps_per_window: match spec.window {
                WindowLen::Steps(n) => Some(n),
                WindowLen::Seconds(_) => None,
            },
            steps,
            seconds: m.seconds,
            images_per_second: median,
            images_per_second_min: min,
            images_per_second_max: max,
            fwd_ms: fwd,
            bwd_ms: bwd,
            opt_ms: opt,
            step_ms: fwd + bwd + opt,
            peak_rss_mb,
            forward_flops_per_image: forward_flops,
            gflops: 3.0 * forward_flops as f64 * median / 1e9,
            last_loss: m
                .workers
                .first()
                .and_then(|w| w.last())
                .map_or(f64::NAN, |r| f64::from(r.loss)),
        }
    }

    /// The table for people.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "model {}  batch {}  threads {}  workers {}  ({} timed steps in {:.1} s)",
            self.model, self.batch, self.threads, self.workers, self.steps, self.seconds
        );
        let _ = writeln!(
            s,
            "images/s    median {:.1}  min {:.1}  max {:.1}  (all workers, over {} windows)",
            self.images_per_second,
            self.images_per_second_min,
            self.images_per_second_max,
            self.windows
        );
        let pct = |x: f64| 100.0 * x / self.step_ms;
        let _ = writeln!(
            s,
            "ms/step     forward {:.2} ({:.0}%)  backward {:.2} ({:.0}%)  optimizer {:.2} ({:.0}%)  total {:.2}  (per worker)",
            self.fwd_ms,
            pct(self.fwd_ms),
            self.bwd_ms,
            pct(self.bwd_ms),
            self.opt_ms,
            pct(self.opt_ms),
            self.step_ms
        );
        let rss = self
            .peak_rss_mb
            .map_or_else(|| "unknown".to_string(), |mb| format!("{mb:.0} MiB"));
        let _ = writeln!(s, "peak RSS    {rss}");
        let _ = writeln!(
            s,
            "compute     {:.2} GFLOP/s  ({:.2} MFLOP forward per image, x3 for a training step)",
            self.gflops,
            self.forward_flops_per_image as f64 / 1e6
        );
        s
    }
}
