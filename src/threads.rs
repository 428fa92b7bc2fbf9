//! How a process divides its cores between candle and our own ops. Call `configure` before any
//! thread or tensor exists: candle reads these variables once, when its pools first start.
//!
//! - `CANDLE_NUM_THREADS=1`: candle's element-wise ops run on one process-wide pool whose threads
//!   spin between ops (25,000 spins by default). Our ops (src/ops) parallelise inside each worker's
//!   rayon pool instead; a spinning candle thread beside them takes a core from the GEMM (seen in a
//!   profile of an MLP step: 40% of the samples in candle's spinning thread).
//! - `RAYON_NUM_THREADS=<threads per worker>`: candle sizes its matmul and convolution parallelism
//!   from this variable, and without it parses /proc/cpuinfo on every call (seen in the same
//!   profile). Our pools are built explicitly, so the global pool's size does not limit them.
//!
//! A variable the user has set is left alone.

use std::env;

/// Sets candle's thread variables for `workers` workers sharing `threads` threads.
pub fn configure(threads: usize, workers: usize) {
    let per_worker = (threads / workers.max(1)).max(1);
    set_unless_present("CANDLE_NUM_THREADS", "1".to_string());
    set_unless_present("RAYON_NUM_THREADS", per_worker.to_string());
}

fn set_unless_present(name: &str, value: String) {
    if env::var_os(name).is_none() {
        env::set_var(name, value);
    }
}
