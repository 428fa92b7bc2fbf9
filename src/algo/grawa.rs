//! MGRAWA and LGRAWA (Dimlioglu and Choromanska): the center is a weighted average of the workers
//! whose weights are inversely proportional to their (smoothed, bias-corrected) gradient norms,
//! one weight per worker from the sum of its layer norms (M), or one per worker and layer (L).

use std::sync::Arc;

use super::{AlgoState, Averaging, RoundResult, Snapshot, Target};
use crate::average::{
    lgrawa_weights, mgrawa_weights, model_norm, weighted_center, NormSmoother,
    DEFAULT_NORM_MOMENTUM,
};
use crate::model::LayerEntry;

/// GRAWA's state: one norm smoother per worker.
pub struct Grawa {
    layerwise: bool,
    power: f64,
    lambda: f32,
    smoothers: Vec<NormSmoother>,
    /// The step of the snapshot each smoother last took, so a snapshot reused by an asynchronous
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

impl Averaging for Grawa {
    fn state(&self) -> AlgoState {
        let saved = Saved {
            smoothers: self.smoothers.clone(),
            seen: self.seen.clone(),
            vhat: self.vhat.clone(),
        };
        AlgoState {
            json: serde_json::to_value(saved).unwrap_or_default(),
            tensors: Vec::new(),
        }
    }

    fn restore(&mut self, state: &AlgoState) -> Result<(), String> {
        let saved: Saved =
            serde_json::from_value(state.json.clone()).map_err(|e| format!("GRAWA state: {e}"))?;
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

    fn round(&mut self, snapshots: &[&Snapshot], table: &[LayerEntry]) -> RoundResult {
        for s in snapshots {
            if self.seen[s.worker] == Some(s.step) {
                continue;
            }
            self.seen[s.worker] = Some(s.step);
            let layer = s
                .layer_norms
                .clone()
                .unwrap_or_else(|| vec![0.0; table.len()]);
            let value = if self.layerwise {
                layer
            } else {
                vec![model_norm(&layer)]
            };
            self.vhat[s.worker] = self.smoothers[s.worker].update(&value);
        }
        let vhat: Vec<Vec<f64>> = snapshots
            .iter()
            .map(|s| self.vhat[s.worker].clone())
            .collect();
        let weights = if self.layerwise {
            lgrawa_weights(&vhat, self.power)
        } else {
            mgrawa_weights(&vhat.iter().map(|v| v[0]).collect::<Vec<_>>(), self.power)
        };
        let xs: Vec<&[f32]> = snapshots.iter().map(|s| s.params.as_slice()).collect();
        let mut center = vec![0f32; xs[0].len()];
        weighted_center(&xs, &weights, table, &mut center);
        RoundResult {
            target: Some(Target {
                point: Arc::new(center),
                lambda: self.lambda,
            }),
            weights: Some(weights),
            norms: Some(vhat.concat()),
            leader: None,
        }
    }
}
