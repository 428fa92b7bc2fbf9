//! The self-test behind `grawa-train selftest` (`cli/selftest.rs`): every CUDA kernel on every
//! visible GPU against its CPU twin, plus copy bandwidths. This module is compiled in every build;
//! the GPU work is in `crate::cuda::selftest` (feature `cuda`), started by
//! `crate::gpus::check_all`. What lives here needs no device, so it is unit-tested on the CPU
//! (`tests/selftest_*.rs`): the comparison of a result with its reference, the report, its table
//! and JSON, and the exit status.
//!
//! Exit status ([`Outcome::exit_status`]):
//! - 0: every check passed, or the binary was built without `cuda` (nothing to test; the message
//!   says so and how to build with it);
//! - 1: some kernel or copy disagreed with its reference, or a CUDA call failed during a check;
//! - 2: the CUDA driver found no GPU or could not start (one-line reason).
//!
//! The report's types and the comparison ([`compare`], [`F32_TOLERANCE`]) live in `report`, the
//! only part the GPU side uses, and are re-exported here; this module adds the printing
//! ([`Report::table`], [`Outcome::render`]) and the exit status ([`Outcome::exit_status`]).

pub mod report;

use std::fmt::Write as _;

pub use report::{
    compare, element_error, Bandwidth, Check, Comparison, DeviceInfo, Outcome, PeerCopy, Report,
    F32_TOLERANCE,
};

/// How to build a binary that can run the self-test (printed by a CPU build).
pub const HOW_TO_BUILD_CUDA: &str =
    "build with the `cuda` feature: `cargo build --release --features cuda` \
     where the CUDA toolkit is installed, or `scripts/gpu-build.sh` on a machine without one";

impl Report {
    /// The human-readable report: devices, one line per check, the copies and bandwidths, and a
    /// verdict line.
    pub fn table(&self) -> String {
        let mut s = String::new();
        self.write_devices(&mut s);
        self.write_checks(&mut s);
        self.write_peer_copies(&mut s);
        self.write_bandwidth(&mut s);
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

    /// The title line and one line per GPU.
    fn write_devices(&self, s: &mut String) {
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
    }

    /// One line per check: its error against the tolerance, and why it failed.
    fn write_checks(&self, s: &mut String) {
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
    }

    /// The copies between GPUs, when there were any (one GPU has none).
    fn write_peer_copies(&self, s: &mut String) {
        if self.peer_copies.is_empty() {
            return;
        }
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

    /// Each kernel's bandwidth next to a copy's, when they were measured.
    fn write_bandwidth(&self, s: &mut String) {
        if self.bandwidth.is_empty() {
            return;
        }
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
