//! The parts of a run's resolved configuration (`config.json`) the reports read. Everything is
//! optional: the summary holds what the reports need, the config only adds detail, and fields
//! newer trainers add (the link, worker speeds, provenance) are absent from older runs.

use serde::Deserialize;

/// The parts of the resolved configuration (`config.json`) the reports use. Everything is optional:
/// the summary holds what the reports need, the config only adds detail.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RunConfig {
    pub dataset: Option<String>,
    pub model: Option<String>,
    pub workers: Option<usize>,
    pub seed: Option<u64>,
    pub algo: Option<AlgoConfig>,
    pub batch_size: Option<usize>,
    /// `{ "epochs", "steps", "minutes" }`, whichever were given.
    #[serde(default)]
    pub budget: Option<BudgetConfig>,
    /// The learning-rate schedule: `base` and `decay` (kept as JSON: [`RunConfig::decay_words`]).
    #[serde(default)]
    pub schedule: Option<serde_json::Value>,
    /// Steps, or a clock form; kept as JSON ([`RunConfig::eval_every_words`]).
    #[serde(default)]
    pub eval_every: Option<serde_json::Value>,
    /// The evaluation clock (`--eval-every 10s`), in seconds; absent for a step cadence.
    #[serde(default)]
    pub eval_every_seconds: Option<f64>,
    /// The modelled interconnect (`--link`), absent without one.
    #[serde(default)]
    pub link: Option<LinkConfig>,
    /// Each worker's speed factor (`--worker-speed`), absent when all run at full speed.
    #[serde(default)]
    pub worker_speed: Option<Vec<f64>>,
    /// Images held out of every shard for validation (`--val-split`).
    #[serde(default)]
    pub val_split: Option<u64>,
    /// Where and from what the run was made.
    #[serde(default)]
    pub provenance: Option<Provenance>,
    /// Class names of a folder data set, in label order.
    #[serde(default)]
    pub classes: Option<Vec<String>>,
}

/// The `budget` object of `config.json`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct BudgetConfig {
    pub epochs: Option<f64>,
    pub steps: Option<u64>,
    pub minutes: Option<f64>,
}

/// The `link` object of `config.json`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct LinkConfig {
    pub bandwidth_bytes_per_s: Option<f64>,
    pub latency_s: Option<f64>,
    /// The preset's name (`10gbe`, `nvlink4`), absent for a link given by its figures.
    #[serde(default)]
    pub preset: Option<String>,
}

impl LinkConfig {
    /// The preset's name, or the figures as `--link` takes them (`1 Gbit/s, 50 us`).
    pub fn words(&self) -> String {
        if let Some(p) = &self.preset {
            return p.clone();
        }
        let bw = self.bandwidth_bytes_per_s.map_or("?".to_string(), |b| {
            format!("{} Gbit/s", short(b * 8.0 / 1e9))
        });
        let lat = self
            .latency_s
            .map_or("?".to_string(), |l| format!("{} us", short(l * 1e6)));
        format!("{bw}, {lat}")
    }
}

/// `x` to 4 significant digits without trailing zeros (`1`, `0.25`, `49.99999` -> `50`).
fn short(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return x.to_string();
    }
    let decimals = (3 - x.abs().log10().floor() as i32).clamp(0, 9) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The `provenance` object of `config.json`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Provenance {
    /// The commit the binary was built from, or `unknown`.
    pub commit: Option<String>,
    pub cpu: Option<String>,
    pub cores: Option<usize>,
    #[serde(default)]
    pub load_average: Option<serde_json::Value>,
    #[serde(default)]
    pub gpus: Option<serde_json::Value>,
}

impl RunConfig {
    /// The base learning rate (`schedule.base`).
    pub fn lr(&self) -> Option<f64> {
        self.schedule.as_ref()?.get("base")?.as_f64()
    }

    /// The learning-rate decay in words: `constant`, `cosine`, or `step x0.1 at 120s`.
    pub fn decay_words(&self) -> String {
        let Some(d) = self.schedule.as_ref().and_then(|s| s.get("decay")) else {
            return String::new();
        };
        let kind = d["kind"].as_str().unwrap_or("-");
        if kind != "step" {
            return kind.to_string();
        }
        let unit = if d["unit"].as_str() == Some("seconds") {
            "s"
        } else {
            " epochs"
        };
        let at: Vec<String> = d["milestones"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|v| Some(format!("{}{unit}", v.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default();
        format!("step x{} at {}", d["gamma"], at.join(" "))
    }

    /// The evaluation cadence as given: `128` (steps) or `10s`; empty when not recorded.
    pub fn eval_every_words(&self) -> String {
        if let Some(s) = self.eval_every_seconds {
            return format!("{s}s");
        }
        match &self.eval_every {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Object(o)) => o
                .iter()
                .map(|(k, v)| match k.as_str() {
                    "seconds" | "Seconds" => format!("{v}s"),
                    _ => v.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" "),
            Some(v) => v.to_string(),
        }
    }

    /// The worker speeds joined with `;` (`1;1;1;0.5`), empty when all run at full speed.
    pub fn worker_speed_words(&self) -> String {
        self.worker_speed
            .as_ref()
            .map(|v| {
                v.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(";")
            })
            .unwrap_or_default()
    }
}

/// The `algo` object of `config.json`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AlgoConfig {
    pub kind: Option<String>,
    pub schedule: Option<String>,
    /// Local steps between rounds.
    pub tau: Option<u64>,
    /// Pull strength toward the center or leader.
    pub pull: Option<f64>,
    /// GRAWA's norm source (`probe` or `accumulated`).
    #[serde(default)]
    pub norm_source: Option<String>,
    /// GRAWA's weight power.
    #[serde(default)]
    pub weight_power: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_reads_as_its_flag_would_give_it() {
        let link = |b: f64, l: f64| LinkConfig {
            bandwidth_bytes_per_s: Some(b),
            latency_s: Some(l),
            preset: None,
        };
        // 1 Gbit/s is 1.25e8 bytes/s; 50 us parsed as 5e-5 s reads back as 4.9999...e-5.
        assert_eq!(
            link(1.25e8, 4.9999999999999996e-05).words(),
            "1 Gbit/s, 50 us"
        );
        assert_eq!(link(3.15e9, 1e-6).words(), "25.2 Gbit/s, 1 us");
        assert_eq!(link(1.25e5, 0.0).words(), "0.001 Gbit/s, 0 us");
        let preset = LinkConfig {
            preset: Some("10gbe".to_string()),
            ..link(1.25e9, 2e-5)
        };
        assert_eq!(preset.words(), "10gbe");
    }
}
