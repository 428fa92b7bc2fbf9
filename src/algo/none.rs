//! Algorithms without averaging rounds (single-worker SGD, DDP, DDP-SAM): their workers agree
//! through the gradient, and meet at rounds only to be evaluated.

use super::{Averaging, RoundResult, Snapshot};
use crate::model::LayerEntry;

/// Nobody is pulled.
pub struct NoAveraging;

impl Averaging for NoAveraging {
    fn round(&mut self, _: &[&Snapshot], _: &[LayerEntry]) -> RoundResult {
        RoundResult::default()
    }
}
