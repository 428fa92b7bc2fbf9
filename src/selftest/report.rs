//! The self-test's report: what `grawa-train selftest` measured (devices, checks, copies,
//! bandwidths), how it came out ([`Outcome`]), and the pure comparison of a result with its
//! reference ([`compare`]). Plain data and arithmetic, no device and no printing.
//!
//! It sits between the two halves of the self-test so that each depends on it and neither on the
//! other: the GPU side (`crate::cuda::selftest`, feature `cuda`) fills these types, the printing
//! side (`crate::selftest`: the table, the JSON, the exit status) reads them. `crate::selftest`
//! re-exports everything here, and adds the printing side's methods to these types
//! (`Report::table`, `Outcome::render`, `Outcome::exit_status`).
//!
//! How a result is compared ([`compare`]): element by element, the error is
//! `|got - want| / max(|want|, 1)`, relative for references of magnitude 1 or more and absolute
//! below (the self-test's inputs are of order 1, so a cancellation near zero is judged against the
//! scale of the data, not against the tiny result). A check passes when the largest error is at
//! most its tolerance ([`F32_TOLERANCE`] for f32 results) and no value is NaN or infinite.

use serde::Serialize;

/// Tolerance of an f32 result: about 80 ulps at magnitude 1. The element-wise kernels are built
/// to round exactly like their twins (error 0); the f64 sums differ only in summation order.
pub const F32_TOLERANCE: f64 = 1e-5;

/// The error of one element: `|got - want| / max(|want|, 1)`; NaN when either is NaN.
pub fn element_error(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1.0)
}

/// How far a result is from its reference.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// Elements compared.
    pub elements: usize,
    /// Largest [`element_error`] over the elements (0 for none).
    pub max_error: f64,
    /// Where the largest error is.
    pub worst: Option<usize>,
    /// Why the result fails regardless of the tolerance: lengths differ, or a value is not finite.
    pub problem: Option<String>,
}

impl Comparison {
    /// A comparison that could not be made (a CUDA call failed, ...): always fails.
    pub fn failed(problem: impl Into<String>) -> Self {
        Self {
            elements: 0,
            max_error: f64::INFINITY,
            worst: None,
            problem: Some(problem.into()),
        }
    }

    /// True when there is no problem and the largest error is at most `tolerance`.
    pub fn passed(&self, tolerance: f64) -> bool {
        self.problem.is_none() && self.max_error <= tolerance
    }
}

/// Compares `got` with the reference `want` element by element (see the module comment). Empty
/// buffers agree; different lengths, and NaN or infinity on either side, are problems.
pub fn compare<T: Copy + Into<f64>>(got: &[T], want: &[T]) -> Comparison {
    if got.len() != want.len() {
        return Comparison {
            elements: got.len().min(want.len()),
            max_error: f64::INFINITY,
            worst: None,
            problem: Some(format!(
                "{} elements, reference has {}",
                got.len(),
                want.len()
            )),
        };
    }
    let mut max_error = 0.0f64;
    let mut worst = None;
    for (j, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w): (f64, f64) = (g.into(), w.into());
        if !g.is_finite() || !w.is_finite() {
            return Comparison {
                elements: got.len(),
                max_error: f64::INFINITY,
                worst: Some(j),
                problem: Some(format!("element {j}: got {g}, reference {w}")),
            };
        }
        let e = element_error(g, w);
        if e > max_error {
            max_error = e;
            worst = Some(j);
        }
    }
    Comparison {
        elements: got.len(),
        max_error,
        worst,
        problem: None,
    }
}

/// A GPU the self-test ran on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceInfo {
    pub ordinal: usize,
    pub name: String,
    /// "9.0" for an H100.
    pub compute_capability: String,
    pub memory_gib: f64,
}

/// One kernel (or copy) on one GPU against its reference.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    /// The GPU it ran on (the destination, for a copy).
    pub device: usize,
    /// The kernel, e.g. "weighted_center".
    pub kernel: String,
    /// The inputs, e.g. "4 workers, per-layer weights, 9 layers".
    pub case: String,
    pub comparison: Comparison,
    pub tolerance: f64,
    pub passed: bool,
}

impl Check {
    /// A check of `comparison` against `tolerance`.
    pub fn new(
        device: usize,
        kernel: impl Into<String>,
        case: impl Into<String>,
        comparison: Comparison,
        tolerance: f64,
    ) -> Self {
        let passed = comparison.passed(tolerance);
        Self {
            device,
            kernel: kernel.into(),
            case: case.into(),
            comparison,
            tolerance,
            passed,
        }
    }
}

/// A timed copy between two GPUs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeerCopy {
    pub src: usize,
    pub dst: usize,
    /// Direct peer access was on (false: the driver staged the copy through host memory).
    pub peer_access: bool,
    pub bytes: u64,
    pub gb_per_s: f64,
}

/// A kernel's achieved bandwidth next to a plain device-to-device copy moving the same bytes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bandwidth {
    pub device: usize,
    pub kernel: String,
    /// Bytes the kernel reads plus writes per launch.
    pub bytes: u64,
    pub kernel_gb_per_s: f64,
    /// A `cuMemcpyDtoD` of bytes/2 (so it too reads and writes `bytes`).
    pub copy_gb_per_s: f64,
}

impl Bandwidth {
    /// Kernel bandwidth over copy bandwidth: 1.0 means the kernel moves bytes as fast as a copy.
    pub fn ratio(&self) -> f64 {
        self.kernel_gb_per_s / self.copy_gb_per_s
    }
}

/// Everything the GPU self-test measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    /// e.g. "13.0".
    pub driver: String,
    /// Seed of the random inputs (`GRAWA_SELFTEST_SEED` repeats them).
    pub seed: u64,
    pub devices: Vec<DeviceInfo>,
    pub checks: Vec<Check>,
    pub peer_copies: Vec<PeerCopy>,
    pub bandwidth: Vec<Bandwidth>,
}

impl Report {
    /// True when every check passed (a report without checks has tested nothing and fails).
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

/// What a self-test run came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Built without the `cuda` feature: nothing to test.
    NotBuilt,
    /// The driver found no GPU, or could not start; the reason in one line.
    NoDevice(String),
    /// The checks ran.
    Ran(Report),
}
