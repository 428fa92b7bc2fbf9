//! Local SGD: every tau steps all workers are replaced by their uniform average.

use std::sync::Arc;

use super::{Averaging, RoundResult, Snapshot, Target};
use crate::average::{uniform_average, Weights};
use crate::model::LayerEntry;

/// Uniform averaging with a full pull (lambda = 1).
pub struct LocalSgd;

impl Averaging for LocalSgd {
    fn round(&mut self, snapshots: &[&Snapshot], _: &[LayerEntry]) -> RoundResult {
        let xs: Vec<&[f32]> = snapshots.iter().map(|s| s.params.as_slice()).collect();
        let mut center = vec![0f32; xs[0].len()];
        uniform_average(&xs, &mut center);
        RoundResult {
            target: Some(Target {
                point: Arc::new(center),
                lambda: 1.0,
            }),
            weights: Some(Weights::uniform(xs.len())),
            ..RoundResult::default()
        }
    }
}
