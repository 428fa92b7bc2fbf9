//! MGRAWA and LGRAWA (Dimlioglu and Choromanska): the center is a weighted average of the workers
//! whose weights are inversely proportional to their (smoothed, bias-corrected) gradient norms,
//! one weight per worker from the sum of its layer norms (M), or one per worker and layer (L).

use super::policy::{Mix, Plan, Policy, WorkerStats};
use super::smooth::{NormSmoother, DEFAULT_NORM_MOMENTUM};
use super::weighting::{lgrawa_weights, mgrawa_weights, model_norm};

/// GRAWA's state: one norm smoother per worker. A worker's smoother takes only that worker's own
/// reports, once each, so its bias correction counts the rounds it really reported in.
pub struct Grawa {
    layerwise: bool,
    power: f64,
    lambda: f32,
    smoothers: Vec<NormSmoother>,
    /// The step of the report each smoother last took, so a report reused by an asynchronous
    /// round is not counted twice.
    seen: Vec<Option<u64>>,
    vhat: Vec<Vec<f64>>,
}

impl Grawa {
    /// LGRAWA when `layerwise`, else MGRAWA; weights ~ 1/norm^power; pull strength `lambda`.
    pub fn new(layerwise: bool, power: f64, lambda: f32, workers: usize, layers: usize) -> Self {
        let width = if layerwise { layers } else { 1 };
        Self {
            layerwise,
            power,
            lambda,
            smoothers: (0..workers)
                .map(|_| NormSmoother::new(width, DEFAULT_NORM_MOMENTUM))
                .collect(),
            seen: vec![None; workers],
            vhat: vec![vec![0.0; width]; workers],
        }
    }
}

/// GRAWA's checkpointed state.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    smoothers: Vec<NormSmoother>,
    seen: Vec<Option<u64>>,
    vhat: Vec<Vec<f64>>,
}

impl Policy for Grawa {
    fn state(&self) -> serde_json::Value {
        let saved = Saved {
            smoothers: self.smoothers.clone(),
            seen: self.seen.clone(),
            vhat: self.vhat.clone(),
        };
        serde_json::to_value(saved).unwrap_or_default()
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), String> {
        let saved: Saved =
            serde_json::from_value(state.clone()).map_err(|e| format!("GRAWA state: {e}"))?;
        if saved.smoothers.len() != self.smoothers.len() {
            return Err(format!(
                "GRAWA state for {} workers, the run has {}",
                saved.smoothers.len(),
                self.smoothers.len()
            ));
        }
        self.smoothers = saved.smoothers;
        self.seen = saved.seen;
        self.vhat = saved.vhat;
        Ok(())
    }

    fn decide(&mut self, stats: &[WorkerStats]) -> Plan {
        let mut vhat = Vec::with_capacity(stats.len());
        for s in stats {
            let w = s.worker;
            // A report without norms (none in a correct run) must not steer: weight 0 this round,
            // and nothing folded into the smoother.
            let Some(layer) = &s.layer_norms else {
                vhat.push(vec![f64::NAN; self.vhat[w].len()]);
                continue;
            };
            if self.seen[w] != Some(s.step) {
                self.seen[w] = Some(s.step);
                let value = if self.layerwise {
                    layer.clone()
                } else {
                    vec![model_norm(layer)]
                };
                self.vhat[w] = self.smoothers[w].update(&value);
            }
            vhat.push(self.vhat[w].clone());
        }
        let weights = if self.layerwise {
            lgrawa_weights(&vhat, self.power)
        } else {
            mgrawa_weights(&vhat.iter().map(|v| v[0]).collect::<Vec<_>>(), self.power)
        };
        Plan {
            mix: Some(Mix::Weighted(weights)),
            lambda: self.lambda,
            norms: Some(vhat.concat()),
        }
    }
}
