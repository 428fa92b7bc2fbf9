//! A [`Plan`] carried out over a [`Collective`]: the center formed, the target handed back, and
//! the data an algorithm keeps across rounds (EASGD's center) updated. The same code serves the
//! in-process hub (host or GPU buffers) and MPI ranks: it only calls the collective's primitives
//! and [`RoundBuffer`] operations, none of which moves a buffer to the host, so a round over GPU
//! buffers keeps every parameter on the GPUs (`tests/round_no_host_copies.rs` counts).

use std::sync::Arc;

use super::target::Target;
use crate::algo::{Mix, Plan};
use crate::buffer::{Flat, FlatBuffer, FlatPlace, RoundBuffer};
use crate::comm::{Collective, Gathered, Participants};
use crate::{Error, Result};

/// Checkpoint name of EASGD's center (kept from the first checkpoint format).
const CENTER: &str = "easgd.center";

/// The round's own data across rounds.
pub struct RoundData<B = Flat> {
    /// EASGD's center `c`, from the common initial point on; `None` for other algorithms.
    center: Option<Arc<B>>,
}

impl RoundData<Flat> {
    /// For a run whose plans use [`Mix::Elastic`] (`elastic`), a center starting at `x0`, in host
    /// memory ([`RoundData::move_to`] puts it where the round runs).
    pub fn new(elastic: bool, x0: &[f32]) -> Self {
        Self {
            center: elastic.then(|| Arc::new(Flat::Host(x0.to_vec()))),
        }
    }

    /// Moves the data to where the round runs (the hub's GPU in a GPU run): once, at the
    /// start of a run.
    pub fn move_to(&mut self, place: &FlatPlace) -> Result<()> {
        if let Some(c) = &mut self.center {
            *c = Arc::new(c.copy_to(place)?);
        }
        Ok(())
    }
}

impl<B: RoundBuffer> RoundData<B> {
    /// For a run whose plans use [`Mix::Elastic`] (`elastic`), a center starting at `x0`.
    pub fn starting_at(elastic: bool, x0: B) -> Self {
        Self {
            center: elastic.then(|| Arc::new(x0)),
        }
    }

    /// A round every participant takes at once (`sync`, `permits`, and async rounds of every
    /// algorithm but EASGD): the same target for all of them.
    pub fn lockstep(
        &mut self,
        plan: &Plan,
        net: &mut dyn Collective<B>,
    ) -> Result<Option<Target<B>>> {
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
                let mut new = old.duplicate()?;
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

    /// An asynchronous round triggered by `worker`'s new snapshot; `net` holds the newest
    /// snapshot of every worker that has reported, the arriving one's included. EASGD's elastic
    /// step is one exchange with the arriving worker alone (`diff = lambda (x - c)`,
    /// `c <- c + diff`, the worker `x <- x - diff`: docs/design.md section 2, async EASGD);
    /// every other plan is a lockstep round over the reported workers.
    pub fn arrival(
        &mut self,
        plan: &Plan,
        net: &mut dyn Collective<B>,
        worker: usize,
    ) -> Result<Option<Target<B>>> {
        if !matches!(plan.mix, Some(Mix::Elastic { .. })) {
            return self.lockstep(plan, net);
        }
        let alpha = plan.lambda;
        let old = self.elastic_center()?;
        // The arriving worker's snapshot, brought to where the center lives.
        let mut diff = net.broadcast(worker)?;
        diff.scale_add(alpha, &old, -alpha)?;
        let mut new = old.duplicate()?;
        new.scale_add(1.0, &diff, 1.0)?;
        self.center = Some(Arc::new(new));
        Ok(Some(Target::Exchange {
            worker,
            diff: Arc::new(diff),
        }))
    }

    fn elastic_center(&self) -> Result<Arc<B>> {
        self.center
            .clone()
            .ok_or_else(|| Error::Internal("an elastic round without a center".into()))
    }

    /// The point to evaluate instead of the workers' average (EASGD's center).
    pub fn evaluation_point(&self) -> Option<Arc<B>> {
        self.center.clone()
    }

    /// The point a run evaluates: the algorithm's own (EASGD's center), else the mean of `net`'s
    /// participants, moved by `target` when one is given (the average after a round's pull).
    /// The one definition for training and for `flatness`.
    pub fn evaluated(
        &self,
        net: &mut dyn Collective<B>,
        target: Option<&Target<B>>,
    ) -> Result<Arc<B>> {
        if let Some(c) = &self.center {
            return Ok(c.clone());
        }
        let mut mean = net.all_reduce_mean()?;
        if let Some(t) = target {
            t.apply(None, &mut mean)?;
        }
        Ok(Arc::new(mean))
    }
}

impl RoundData<Flat> {
    /// [`RoundData::evaluated`] of the workers' parameters `workers`, held by this thread,
    /// made at `place` (no host copy on a GPU).
    pub fn evaluated_flat(
        &self,
        workers: &[&Flat],
        target: Option<&Target>,
        place: &FlatPlace,
    ) -> Result<Flat> {
        let parts = Participants::buffers((0..workers.len()).collect(), workers.to_vec());
        let point = self.evaluated(&mut Gathered::from_parts(parts, &[], place.clone()), target)?;
        Arc::try_unwrap(point).or_else(|shared| shared.duplicate())
    }

    /// The round data a checkpoint holds (EASGD's center, if it has one).
    pub fn from_state(tensors: &[(String, Vec<f32>)]) -> Self {
        Self {
            center: tensors
                .iter()
                .find(|(n, _)| n == CENTER)
                .map(|(_, c)| Arc::new(Flat::Host(c.clone()))),
        }
    }

    /// Named buffers for a checkpoint (copied to the host).
    pub fn state(&self) -> Result<Vec<(String, Vec<f32>)>> {
        self.center
            .iter()
            .map(|c| Ok((CENTER.to_string(), c.to_vec()?)))
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
        // Where the round runs (a GPU's center is overwritten there).
        *center = Arc::new(match &**center {
            Flat::Host(_) => Flat::Host(c.clone()),
            #[cfg(feature = "cuda")]
            Flat::Device(d) => Flat::Host(c.clone())
                .copy_to(&FlatPlace::Device(d.place().clone()))
                .map_err(|e| e.to_string())?,
        });
        Ok(())
    }
}
