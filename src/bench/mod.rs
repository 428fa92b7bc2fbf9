//! `grawa-train bench`: time training steps of one model on random data and report images/s
//! (median, min, max over windows), the forward/backward/optimizer split, peak memory and
//! achieved GFLOP/s. `scripts/bench_pytorch.py` does the same in PyTorch and prints the same JSON
//! line; `scripts/bench-vs-pytorch.sh` runs both and prints the ratio.
//!
//! The pieces: `flops` (analytic FLOP counts), `rss` (peak resident memory), `runner` (the workers
//! and the timed step), `windows` (throughput per window), `report` (what is printed).

pub mod flops;
pub mod report;
pub mod rss;
pub mod runner;
pub mod windows;

use crate::Result;
pub use report::BenchReport;
pub use runner::{RunSpec, WindowLen};

/// Measures `spec` and summarises it.
pub fn bench(spec: &RunSpec) -> Result<BenchReport> {
    // candle's thread variables as training sets them (read once, when candle's pools start).
    crate::threads::configure(spec.threads, spec.workers);
    let measured = runner::measure(spec)?;
    Ok(BenchReport::new(spec, &measured, rss::peak_rss_mb()))
}
