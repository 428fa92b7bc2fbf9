//! EASGD (Zhang et al. 2015), synchronous form: with M workers and moving rate beta,
//! `x_i <- (1 - beta/M) x_i + (beta/M) c_old` and `c <- (1 - beta) c_old + beta * mean_i(x_i)`,
//! the mean taken before the pull. The center c starts at the common initial point and is what
//! gets evaluated.

use std::sync::Arc;

use super::{AlgoState, Averaging, RoundResult, Snapshot, Target};
use crate::average::uniform_average;
use crate::model::LayerEntry;

/// EASGD's center and moving rate.
pub struct Easgd {
    center: Arc<Vec<f32>>,
    beta: f32,
}

impl Easgd {
    /// A center starting at `x0`.
    pub fn new(x0: Vec<f32>, beta: f32) -> Self {
        Self {
            center: Arc::new(x0),
            beta,
        }
    }
}

impl Averaging for Easgd {
    fn round(&mut self, snapshots: &[&Snapshot], _: &[LayerEntry]) -> RoundResult {
        let m = snapshots.len();
        let xs: Vec<&[f32]> = snapshots.iter().map(|s| s.params.as_slice()).collect();
        let mut mean = vec![0f32; xs[0].len()];
        uniform_average(&xs, &mut mean);
        let old = self.center.clone();
        let b = self.beta;
        let new: Vec<f32> = old
            .iter()
            .zip(&mean)
            .map(|(&c, &x)| (1.0 - b) * c + b * x)
            .collect();
        self.center = Arc::new(new);
        RoundResult {
            target: Some(Target {
                point: old,
                lambda: b / m as f32,
            }),
            ..RoundResult::default()
        }
    }

    fn evaluation_point(&self) -> Option<Arc<Vec<f32>>> {
        Some(self.center.clone())
    }

    fn state(&self) -> AlgoState {
        AlgoState {
            json: serde_json::Value::Null,
            tensors: vec![("easgd.center".into(), self.center.to_vec())],
        }
    }

    fn restore(&mut self, state: &AlgoState) -> Result<(), String> {
        let (_, c) = state
            .tensors
            .iter()
            .find(|(n, _)| n == "easgd.center")
            .ok_or("the checkpoint has no EASGD center")?;
        if c.len() != self.center.len() {
            return Err(format!(
                "EASGD center holds {} values, the model {}",
                c.len(),
                self.center.len()
            ));
        }
        self.center = Arc::new(c.clone());
        Ok(())
    }
}
