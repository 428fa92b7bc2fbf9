//! What a round hands back to the workers, and the arithmetic that applies it to a worker's
//! parameters wherever they live.

use std::sync::Arc;

use crate::buffer::{Flat, FlatBuffer, RoundBuffer};

/// A point to pull toward, or (async EASGD) an exchange with the center. `B` is the buffer the
/// round works in: [`Flat`] in the trainer (host or GPU), any [`RoundBuffer`] in tests.
#[derive(Debug)]
pub enum Target<B = Flat> {
    /// `x <- (1 - lambda) x + lambda point`, for every worker that takes the round.
    Pull { point: Arc<B>, lambda: f32 },
    /// `x <- x - diff` for `worker` alone: its share of an elastic exchange whose other half,
    /// `c <- c + diff`, the center has taken already (asynchronous EASGD).
    Exchange { worker: usize, diff: Arc<B> },
}

impl<B> Clone for Target<B> {
    fn clone(&self) -> Self {
        match self {
            Target::Pull { point, lambda } => Target::Pull {
                point: point.clone(),
                lambda: *lambda,
            },
            Target::Exchange { worker, diff } => Target::Exchange {
                worker: *worker,
                diff: diff.clone(),
            },
        }
    }
}

impl<B: RoundBuffer> Target<B> {
    /// The point later proximal steps go toward (the pulled-to center or leader).
    pub fn anchor(&self) -> Option<&Arc<B>> {
        match self {
            Target::Pull { point, .. } => Some(point),
            Target::Exchange { .. } => None,
        }
    }

    /// Whether worker `w` applies this target.
    pub fn applies_to(&self, w: usize) -> bool {
        match self {
            Target::Pull { .. } => true,
            Target::Exchange { worker, .. } => *worker == w,
        }
    }

    /// Applies the target to the parameters `x` of `worker` (`None`: a point that is no
    /// worker's, like the workers' mean, which only a pull moves), where they live.
    pub fn apply(&self, worker: Option<usize>, x: &mut B) -> crate::Result<()> {
        match self {
            Target::Pull { point, lambda } => x.pull(point, *lambda),
            Target::Exchange { worker: w, diff } if worker == Some(*w) => {
                x.scale_add(1.0, diff, -1.0)
            }
            Target::Exchange { .. } => Ok(()),
        }
    }
}

impl Target<Flat> {
    /// [`Target::apply`] to host parameters (evaluation's copies, checkpoints); a target on a GPU
    /// is copied to the host first.
    pub fn apply_host(&self, worker: Option<usize>, x: &mut [f32]) -> crate::Result<()> {
        match self {
            Target::Pull { point, lambda } => x.pull(&point.host()?, *lambda),
            Target::Exchange { worker: w, diff } if worker == Some(*w) => {
                x.scale_add(1.0, &diff.host()?, -1.0)
            }
            Target::Exchange { .. } => Ok(()),
        }
    }
}
