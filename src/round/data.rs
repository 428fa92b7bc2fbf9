//! A [`Plan`] carried out over a [`Collective`]: the center formed, the target handed back, and
//! the data an algorithm keeps across rounds (EASGD's center) updated. The same code serves the
//! in-process hub and, later, MPI ranks and NCCL devices: it only calls the collective's primitives
//! and [`FlatBuffer`] operations.

use std::sync::Arc;

use super::Collective;
use crate::algo::{Mix, Plan, Target};
use crate::average::uniform_average;
use crate::buffer::FlatBuffer;
use crate::{Error, Result};

/// Checkpoint name of EASGD's center (kept from the first checkpoint format).
const CENTER: &str = "easgd.center";

/// The round's own data across rounds.
pub struct RoundData {
    /// EASGD's center `c`, from the common initial point on; `None` for other algorithms.
    center: Option<Arc<Vec<f32>>>,
}

impl RoundData {
    /// For a run whose plans use [`Mix::Elastic`] (`elastic`), a center starting at `x0`.
    pub fn new(elastic: bool, x0: &[f32]) -> Self {
        Self {
            center: elastic.then(|| Arc::new(x0.to_vec())),
        }
    }

    /// A round every participant takes at once (`sync`, `permits`, and async rounds of every
    /// algorithm but EASGD): the same target for all of them.
    pub fn lockstep(&mut self, plan: &Plan, net: &mut dyn Collective) -> Result<Option<Target>> {
        let Some(mix) = &plan.mix else {
            return Ok(None);
        };
        let point = match mix {
            Mix::Weighted(w) => net.all_reduce_sum(Some(w))?,
            Mix::Mean => net.all_reduce_mean()?,
            Mix::Leader(worker) => net.broadcast(*worker)?,
            Mix::Elastic { beta } => {
                let mean = net.all_reduce_mean()?;
                let old = self.elastic_center()?;
                let mut new = old.to_vec();
                new.scale_add(1.0 - beta, &mean, *beta)?;
                self.center = Some(Arc::new(new));
                // Workers move toward the center as it was before the round.
                return Ok(Some(Target::Pull {
                    point: old,
                    lambda: plan.lambda,
                }));
            }
        };
        Ok(Some(Target::Pull {
            point: Arc::new(point),
            lambda: plan.lambda,
        }))
    }

    /// An asynchronous round triggered by `worker`'s new snapshot `x`; `net` holds the newest
    /// snapshot of every worker that has reported. EASGD's elastic step is one exchange with the
    /// arriving worker alone (`diff = lambda (x - c)`, `c <- c + diff`, the worker `x <- x - diff`,
    /// as in the asynchronous EASGD of Zhang et al.); every other plan is a lockstep round over
    /// the reported workers.
    pub fn arrival(
        &mut self,
        plan: &Plan,
        net: &mut dyn Collective,
        worker: usize,
        x: &[f32],
    ) -> Result<Option<Target>> {
        if !matches!(plan.mix, Some(Mix::Elastic { .. })) {
            return self.lockstep(plan, net);
        }
        let alpha = plan.lambda;
        let old = self.elastic_center()?;
        let mut diff = x.to_vec();
        diff.scale_add(alpha, &old, -alpha)?;
        let mut new = old.to_vec();
        new.scale_add(1.0, &diff, 1.0)?;
        self.center = Some(Arc::new(new));
        Ok(Some(Target::Exchange {
            worker,
            diff: Arc::new(diff),
        }))
    }

    fn elastic_center(&self) -> Result<Arc<Vec<f32>>> {
        self.center
            .clone()
            .ok_or_else(|| Error::Internal("an elastic round without a center".into()))
    }

    /// The point to evaluate instead of the workers' average (EASGD's center).
    pub fn evaluation_point(&self) -> Option<Arc<Vec<f32>>> {
        self.center.clone()
    }

    /// The point a run evaluates, given the workers' parameters: the algorithm's own (EASGD's
    /// center), else the workers' uniform average, moved by `target` when one is given (the
    /// average after a round's pull). The one definition for training and for `flatness`.
    pub fn evaluated_point(&self, workers: &[&[f32]], target: Option<&Target>) -> Result<Vec<f32>> {
        if let Some(c) = &self.center {
            return Ok(c.to_vec());
        }
        let mut mean = vec![0f32; workers.first().map_or(0, |x| x.len())];
        uniform_average(workers, &mut mean);
        if let Some(t) = target {
            t.apply_host(None, &mut mean)?;
        }
        Ok(mean)
    }

    /// The round data a checkpoint holds (EASGD's center, if it has one).
    pub fn from_state(tensors: &[(String, Vec<f32>)]) -> Self {
        Self {
            center: tensors
                .iter()
                .find(|(n, _)| n == CENTER)
                .map(|(_, c)| Arc::new(c.clone())),
        }
    }

    /// Named buffers for a checkpoint.
    pub fn state(&self) -> Vec<(String, Vec<f32>)> {
        self.center
            .iter()
            .map(|c| (CENTER.to_string(), c.to_vec()))
            .collect()
    }

    /// Restores what `state` returned.
    pub fn restore(&mut self, tensors: &[(String, Vec<f32>)]) -> std::result::Result<(), String> {
        let Some(center) = &mut self.center else {
            return Ok(());
        };
        let (_, c) = tensors
            .iter()
            .find(|(n, _)| n == CENTER)
            .ok_or("the checkpoint has no EASGD center")?;
        if c.len() != center.len() {
            return Err(format!(
                "EASGD center holds {} values, the model {}",
                c.len(),
                center.len()
            ));
        }
        *center = Arc::new(c.clone());
        Ok(())
    }
}
