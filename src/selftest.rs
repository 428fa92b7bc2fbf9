//! `grawa-train selftest`: every CUDA kernel on every visible GPU against its CPU twin, plus copy
//! bandwidths. This module is compiled in every build; the GPU work is in `crate::cuda::selftest`
//! (feature `cuda`). What lives here needs no device, so it is unit-tested on the CPU
//! (`tests/selftest_*.rs`): the comparison of a result with its reference, the report, its table
//! and JSON, and the exit status.
//!
//! Exit status of [`run`]:
//! - 0: every check passed, or the binary was built without `cuda` (nothing to test; the message
//!   says so and how to build with it);
//! - 1: some kernel or copy disagreed with its reference, or a CUDA call failed during a check;
//! - 2: the CUDA driver found no GPU or could not start (one-line reason).
//!
//! How a result is compared ([`compare`]): element by element, the error is
//! `|got - want| / max(|want|, 1)`, relative for references of magnitude 1 or more and absolute
//! below (the self-test's inputs are of order 1, so a cancellation near zero is judged against the
//! scale of the data, not against the tiny result). A check passes when the largest error is at
//! most its tolerance ([`F32_TOLERANCE`] for f32 results) and no value is NaN or infinite.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde::Serialize;

/// Tolerance of an f32 result: about 80 ulps at magnitude 1. The element-wise kernels are built
/// to round exactly like their twins (error 0); the f64 sums differ only in summation order.
pub const F32_TOLERANCE: f64 = 1e-5;

/// How to build a binary that can run the self-test (printed by a CPU build).
pub const HOW_TO_BUILD_CUDA: &str =
    "build with the `cuda` feature: `cargo build --release --features cuda` \
     where the CUDA toolkit is installed, or `scripts/gpu-build.sh` on a machine without one";

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

    /// The human-readable report: devices, one line per check, the copies and bandwidths, and a
    /// verdict line.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "grawa-train selftest: {} GPU(s), CUDA driver {}, seed {}",
            self.devices.len(),
            self.driver,
            self.seed
        );
        for d in &self.devices {
            let _ = writeln!(
                s,
                "  GPU {}: {}, compute {}, {:.1} GiB",
                d.ordinal, d.name, d.compute_capability, d.memory_gib
            );
        }
        let _ = writeln!(
            s,
            "\nkernels against their CPU twins (error |got-want|/max(|want|,1)):"
        );
        let _ = writeln!(
            s,
            "  {:>3}  {:<16} {:<44} {:>10} {:>10} {:>9}  result",
            "GPU", "kernel", "case", "elements", "max error", "tolerance"
        );
        for c in &self.checks {
            let verdict = match (&c.comparison.problem, c.passed) {
                (_, true) => "ok".to_string(),
                (Some(p), false) => format!("FAIL: {p}"),
                (None, false) => match c.comparison.worst {
                    Some(j) => format!("FAIL (worst at element {j})"),
                    None => "FAIL".to_string(),
                },
            };
            let _ = writeln!(
                s,
                "  {:>3}  {:<16} {:<44} {:>10} {:>10.2e} {:>9.0e}  {verdict}",
                c.device,
                c.kernel,
                c.case,
                c.comparison.elements,
                c.comparison.max_error,
                c.tolerance
            );
        }
        if !self.peer_copies.is_empty() {
            let _ = writeln!(s, "\ncopies between GPUs:");
            let _ = writeln!(
                s,
                "  {:>3} -> {:<3}  {:<12} {:>9} {:>9}",
                "src", "dst", "path", "MiB", "GB/s"
            );
            for p in &self.peer_copies {
                let path = if p.peer_access { "peer" } else { "via host" };
                let _ = writeln!(
                    s,
                    "  {:>3} -> {:<3}  {:<12} {:>9.1} {:>9.1}",
                    p.src,
                    p.dst,
                    path,
                    p.bytes as f64 / (1u64 << 20) as f64,
                    p.gb_per_s
                );
            }
        }
        if !self.bandwidth.is_empty() {
            let _ = writeln!(
                s,
                "\nbandwidth against a device-to-device copy moving the same bytes (read + write):"
            );
            let _ = writeln!(
                s,
                "  {:>3}  {:<16} {:>10} {:>12} {:>10} {:>12}",
                "GPU", "kernel", "MiB moved", "kernel GB/s", "copy GB/s", "kernel/copy"
            );
            for b in &self.bandwidth {
                let _ = writeln!(
                    s,
                    "  {:>3}  {:<16} {:>10.1} {:>12.1} {:>10.1} {:>12.2}",
                    b.device,
                    b.kernel,
                    b.bytes as f64 / (1u64 << 20) as f64,
                    b.kernel_gb_per_s,
                    b.copy_gb_per_s,
                    b.ratio()
                );
            }
        }
        let failed = self.failures().count();
        let _ = if self.checks.is_empty() {
            writeln!(s, "\nFAILED: no check ran")
        } else if failed == 0 {
            writeln!(s, "\npassed: {} checks", self.checks.len())
        } else {
            writeln!(s, "\nFAILED: {failed} of {} checks", self.checks.len())
        };
        s
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

impl Outcome {
    /// The process exit status (see the module comment).
    pub fn exit_status(&self) -> u8 {
        match self {
            Outcome::NotBuilt => 0,
            Outcome::NoDevice(_) => 2,
            Outcome::Ran(r) if r.passed() => 0,
            Outcome::Ran(_) => 1,
        }
    }

    /// The output: the table (or a one-line message), or one JSON object with `status`
    /// ("passed", "failed", "no_device", "not_built"), `reason` where there is one, and the
    /// `report` when the checks ran.
    pub fn render(&self, json: bool) -> String {
        if json {
            let v = match self {
                Outcome::NotBuilt => serde_json::json!({
                    "status": "not_built",
                    "reason": not_built_reason(),
                }),
                Outcome::NoDevice(reason) => serde_json::json!({
                    "status": "no_device",
                    "reason": reason,
                }),
                Outcome::Ran(r) => serde_json::json!({
                    "status": if r.passed() { "passed" } else { "failed" },
                    "report": r,
                }),
            };
            return format!("{v}\n");
        }
        match self {
            Outcome::NotBuilt => format!(
                "grawa-train selftest: nothing to test: {}\n",
                not_built_reason()
            ),
            Outcome::NoDevice(reason) => format!("grawa-train selftest: no GPU: {reason}\n"),
            Outcome::Ran(r) => r.table(),
        }
    }
}

fn not_built_reason() -> String {
    format!(
        "this grawa-train was built without the `cuda` feature, so it has no GPU kernels; \
         {HOW_TO_BUILD_CUDA}"
    )
}

/// Runs the self-test on every visible GPU and prints the table (or JSON with `json`) on stdout.
/// Exit status: 0 passed or nothing to test (CPU build), 1 a mismatch, 2 no GPU or driver.
pub fn run(json: bool) -> ExitCode {
    let outcome = check_all();
    print!("{}", outcome.render(json));
    ExitCode::from(outcome.exit_status())
}

/// Runs every check on every visible GPU and returns the outcome without printing anything
/// ([`Outcome::NotBuilt`] in a build without `cuda`).
pub fn check_all() -> Outcome {
    #[cfg(feature = "cuda")]
    {
        crate::cuda::selftest::run_checks()
    }
    #[cfg(not(feature = "cuda"))]
    {
        Outcome::NotBuilt
    }
}

/// How many GPUs this binary can use, for validating `--gpus N`: `Ok(n)` with the `cuda` feature
/// (0 when the driver sees none); `Err` with a one-line reason when the build has no CUDA support
/// or the driver cannot start.
pub fn gpu_count() -> Result<usize, String> {
    #[cfg(feature = "cuda")]
    {
        crate::cuda::device_count().map_err(|e| format!("the CUDA driver cannot start: {e}"))
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(format!(
            "this grawa-train was built without the `cuda` feature; {HOW_TO_BUILD_CUDA}"
        ))
    }
}
