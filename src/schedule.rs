//! Learning-rate schedules: constant, step decay (milestones in epochs or in seconds of training),
//! cosine annealing, each with an optional linear warm-up.

use serde::{Deserialize, Serialize};

/// Where training stands, as the schedule sees it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// Optimizer steps taken so far (by this worker).
    pub step: u64,
    /// Epochs completed, fractional.
    pub epoch: f64,
    /// Seconds of training so far.
    pub seconds: f64,
    /// Fraction of the budget used, 0..1, when the budget is known.
    pub fraction: Option<f64>,
}

/// The unit step-decay milestones are given in.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MilestoneUnit {
    Epochs,
    Seconds,
}

/// The shape of the schedule after warm-up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Decay {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` at each milestone passed.
    Step {
        milestones: Vec<f64>,
        unit: MilestoneUnit,
        gamma: f64,
    },
    /// `base * (1 + cos(pi * fraction)) / 2` over the budget.
    Cosine,
}

/// A complete schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    pub base: f64,
    pub decay: Decay,
    /// Linear warm-up steps: step s < warmup uses `base * (s + 1) / warmup` times the decay factor.
    pub warmup_steps: u64,
}

impl LrSchedule {
    /// The learning rate for the step about to be taken.
    pub fn lr(&self, p: &Progress) -> f64 {
        let factor = match &self.decay {
            Decay::Constant => 1.0,
            Decay::Step {
                milestones,
                unit,
                gamma,
            } => {
                let at = match unit {
                    MilestoneUnit::Epochs => p.epoch,
                    MilestoneUnit::Seconds => p.seconds,
                };
                let passed = milestones.iter().filter(|&&m| at >= m).count();
                gamma.powi(passed as i32)
            }
            Decay::Cosine => {
                let f = p.fraction.unwrap_or(0.0).clamp(0.0, 1.0);
                0.5 * (1.0 + (std::f64::consts::PI * f).cos())
            }
        };
        let warm = if p.step < self.warmup_steps {
            (p.step + 1) as f64 / self.warmup_steps as f64
        } else {
            1.0
        };
        self.base * factor * warm
    }
}

/// Parses `--milestones`: numbers in epochs ("30,60") or in seconds with an `s` suffix on each
/// ("300s,600s"). Units may not be mixed; milestones must be finite, non-negative and increasing.
pub fn parse_milestones(items: &[String]) -> Result<(Vec<f64>, MilestoneUnit), String> {
    let mut values = Vec::new();
    let mut unit = None;
    for raw in items {
        let item = raw.trim();
        let (num, u) = match item.strip_suffix('s') {
            Some(n) => (n, MilestoneUnit::Seconds),
            None => (item, MilestoneUnit::Epochs),
        };
        if unit.is_some_and(|prev| prev != u) {
            return Err(format!(
                "--milestones: '{item}' mixes units; give all in epochs (30,60) or all in seconds (300s,600s)"
            ));
        }
        unit = Some(u);
        let v: f64 = num.parse().map_err(|_| {
            format!("--milestones: '{item}' is not a number of epochs or seconds (like 30 or 300s)")
        })?;
        if !v.is_finite() || v < 0.0 {
            return Err(format!(
                "--milestones: '{item}' must be a non-negative number"
            ));
        }
        if values.last().is_some_and(|&last| v <= last) {
            return Err(format!(
                "--milestones: '{item}' must be larger than the milestone before it"
            ));
        }
        values.push(v);
    }
    Ok((values, unit.unwrap_or(MilestoneUnit::Epochs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(step: u64, epoch: f64, seconds: f64, fraction: Option<f64>) -> Progress {
        Progress {
            step,
            epoch,
            seconds,
            fraction,
        }
    }

    #[test]
    fn step_decay_in_epochs_and_seconds() {
        let s = LrSchedule {
            base: 0.1,
            decay: Decay::Step {
                milestones: vec![2.0, 4.0],
                unit: MilestoneUnit::Epochs,
                gamma: 0.1,
            },
            warmup_steps: 0,
        };
        assert!((s.lr(&at(0, 1.99, 0.0, None)) - 0.1).abs() < 1e-12);
        assert!((s.lr(&at(0, 2.0, 0.0, None)) - 0.01).abs() < 1e-12);
        assert!((s.lr(&at(0, 5.0, 0.0, None)) - 0.001).abs() < 1e-12);
        let t = LrSchedule {
            decay: Decay::Step {
                milestones: vec![500.0],
                unit: MilestoneUnit::Seconds,
                gamma: 0.1,
            },
            ..s
        };
        assert!((t.lr(&at(0, 9.0, 499.0, None)) - 0.1).abs() < 1e-12);
        assert!((t.lr(&at(0, 0.0, 500.0, None)) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn cosine_and_warmup() {
        let s = LrSchedule {
            base: 0.2,
            decay: Decay::Cosine,
            warmup_steps: 4,
        };
        // Warm-up: (s+1)/4 of the (still ~1) cosine factor at fraction 0.
        assert!((s.lr(&at(0, 0.0, 0.0, Some(0.0))) - 0.05).abs() < 1e-12);
        assert!((s.lr(&at(3, 0.0, 0.0, Some(0.0))) - 0.2).abs() < 1e-12);
        // cos(pi/2) = 0: half the base rate half-way; zero at the end.
        assert!((s.lr(&at(10, 0.0, 0.0, Some(0.5))) - 0.1).abs() < 1e-12);
        assert!(s.lr(&at(10, 0.0, 0.0, Some(1.0))).abs() < 1e-12);
    }

    #[test]
    fn milestones_parse_units_and_reject_bad_input() {
        assert_eq!(
            parse_milestones(&["30".into(), "60".into()]).unwrap(),
            (vec![30.0, 60.0], MilestoneUnit::Epochs)
        );
        assert_eq!(
            parse_milestones(&["500s".into()]).unwrap(),
            (vec![500.0], MilestoneUnit::Seconds)
        );
        assert!(parse_milestones(&["30".into(), "600s".into()])
            .unwrap_err()
            .contains("mixes units"));
        assert!(parse_milestones(&["x".into()]).unwrap_err().contains("'x'"));
        assert!(parse_milestones(&["60".into(), "30".into()])
            .unwrap_err()
            .contains("larger"));
    }
}
