//! Where and how a run was made, for `config.json`'s `provenance`: the commit the binary was
//! built from (`unknown` outside a checkout; `-dirty` when the tree had changes), the CPU, its
//! cores, the load average when the run started (a busy machine explains slow timings) and the
//! GPUs the CUDA driver sees (none in a build without `cuda`).

use serde::Serialize;

use crate::config::RunConfig;

/// The build and the machine of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Provenance {
    /// `git rev-parse HEAD` at build time, `-dirty` appended for a tree with changes; `unknown`
    /// when built without git or outside a checkout.
    pub commit: String,
    /// The CPU's model name (`/proc/cpuinfo`), or `unknown`.
    pub cpu: String,
    /// Cores this process may use.
    pub cores: usize,
    /// The 1, 5 and 15 minute load averages (`/proc/loadavg`); absent where there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_average: Option<[f64; 3]>,
    /// Names of the GPUs the CUDA driver sees, by ordinal; empty without the `cuda` feature.
    pub gpus: Vec<String>,
}

/// The commit embedded by build.rs.
pub const COMMIT: &str = match option_env!("GRAWA_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

impl Provenance {
    /// This build on this machine, now.
    pub fn collect() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        Self {
            commit: COMMIT.to_string(),
            cpu: read("/proc/cpuinfo")
                .and_then(|t| cpu_model(&t))
                .unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            load_average: read("/proc/loadavg").and_then(|t| load_average(&t)),
            gpus: gpu_names(),
        }
    }
}

/// `config.json` of a new run: the configuration with this run's `provenance` added. Kept out of
/// [`RunConfig`] itself, which `--resume` rebuilds from the flags to compare experiments: the
/// load average of another moment would differ.
pub fn config_json(cfg: &RunConfig) -> crate::Result<serde_json::Value> {
    let mut v = serde_json::to_value(cfg).map_err(|e| crate::Error::Internal(e.to_string()))?;
    let p = serde_json::to_value(Provenance::collect())
        .map_err(|e| crate::Error::Internal(e.to_string()))?;
    if let Some(map) = v.as_object_mut() {
        map.insert("provenance".into(), p);
    }
    Ok(v)
}

/// The first `model name` of a `/proc/cpuinfo` text.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_string())
    })
}

/// The three load averages at the start of a `/proc/loadavg` text.
fn load_average(loadavg: &str) -> Option<[f64; 3]> {
    let mut fields = loadavg.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// The GPUs' names, straight from the driver (no context is created).
#[cfg(feature = "cuda")]
fn gpu_names() -> Vec<String> {
    use candle_core::cuda_backend::cudarc::driver::{result, CudaContext};
    let Ok(n) = CudaContext::device_count() else {
        return Vec::new();
    };
    (0..n)
        .map(|i| {
            result::device::get(i)
                .and_then(result::device::get_name)
                .unwrap_or_else(|e| format!("unknown ({e})"))
        })
        .collect()
}

#[cfg(not(feature = "cuda"))]
fn gpu_names() -> Vec<String> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cpu_model_and_the_load() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(cpu_model("processor : 0\n"), None);
        assert_eq!(
            load_average("0.52 1.03 2.50 3/412 12345\n"),
            Some([0.52, 1.03, 2.5])
        );
        assert_eq!(load_average("0.52 x"), None);
    }

    #[test]
    fn collects_something_sensible_here() {
        let p = Provenance::collect();
        assert!(p.cores >= 1);
        assert!(!p.commit.is_empty() && !p.cpu.is_empty());
        let v = serde_json::to_value(&p).unwrap();
        for key in ["commit", "cpu", "cores", "gpus"] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
    }
}
