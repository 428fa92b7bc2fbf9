//! [`FlatStore`]: a worker's parameters, last gradient and momentum as flat buffers where its
//! model lives (a GPU on candle's stream for it, or host memory), laid out by the layer table.
//! After a backward pass the gradients are packed into the flat gradient, the optimizer step is
//! one `sgd_step` over the whole model, the proximal pull and a round's pull one `pull` each, and
//! the parameters are written back into the model's tensors before the next forward pass: on a
//! GPU everything queues on candle's stream, in order with the forward and backward passes, and
//! nothing waits on the host.

use std::sync::Arc;

use candle_core::backprop::GradStore;

use super::{Gradient, ParamStore};
use crate::buffer::{Flat, FlatBuffer, FlatPlace, RoundBuffer};
use crate::model::{Model, ParamSet};
use crate::optim::SgdConfig;
use crate::round::Target;
use crate::Result;

/// A worker's flat buffers.
pub struct FlatStore {
    set: ParamSet,
    cfg: SgdConfig,
    place: FlatPlace,
    params: Flat,
    grads: Flat,
    momentum: Flat,
}

impl FlatStore {
    /// The flat buffers of `model` where it lives, with zero momentum, stepping with `cfg`.
    pub fn open(model: &Model, cfg: SgdConfig) -> Result<Self> {
        let set = model.params.clone();
        let place = FlatPlace::of_model(&model.device, &set)?;
        let zeros = Flat::Host(vec![0.0; set.len()]).copy_to(&place)?;
        Ok(Self {
            params: Flat::from_set(&set, &place)?,
            grads: zeros.duplicate()?,
            momentum: zeros,
            place,
            set,
            cfg,
        })
    }

    /// `point` shared where the buffers live: the same `Arc` when it lives here, else a copy
    /// made here once (a GPU run's center, from the hub's GPU).
    fn bring(&self, point: &Arc<Flat>) -> Result<Arc<Flat>> {
        Ok(if point.is_at(&self.place) {
            point.clone()
        } else {
            Arc::new(point.copy_to(&self.place)?)
        })
    }
}

impl ParamStore for FlatStore {
    fn place(&self) -> &FlatPlace {
        &self.place
    }

    fn snapshot(&self) -> Result<Flat> {
        self.params.duplicate()
    }

    fn pack(&mut self, grads: &GradStore) -> Result<&Flat> {
        self.grads.pack_grads(&self.set, grads)?;
        Ok(&self.grads)
    }

    fn step(&mut self, grad: Gradient<'_>, lr: f32) -> Result<()> {
        let copy;
        let grad = match grad {
            Gradient::Backward(grads) => {
                self.grads.pack_grads(&self.set, grads)?;
                &self.grads
            }
            Gradient::Packed => &self.grads,
            Gradient::Given(g) if g.is_at(&self.place) => g,
            Gradient::Given(g) => {
                copy = g.copy_to(&self.place)?;
                &copy
            }
        };
        self.params
            .sgd_step(grad, &mut self.momentum, lr, &self.cfg)
    }

    fn pull(&mut self, point: &Flat, lambda: f32) -> Result<()> {
        self.params.pull(point, lambda)
    }

    fn apply(&mut self, t: &Target, worker: usize) -> Result<Option<Arc<Flat>>> {
        match t {
            Target::Pull { point, lambda } => {
                let here = self.bring(point)?;
                self.params.pull(&here, *lambda)?;
                Ok(Some(here))
            }
            Target::Exchange { .. } => {
                t.apply(Some(worker), &mut self.params)?;
                Ok(None)
            }
        }
    }

    fn ascend(&mut self, scale: f32) -> Result<()> {
        let mut up = self.params.duplicate()?;
        up.scale_add(1.0, &self.grads, scale)?;
        up.write_to(&self.set)
    }

    fn descend(&mut self) -> Result<()> {
        self.sync()
    }

    fn sync(&mut self) -> Result<()> {
        self.params.write_to(&self.set)
    }

    fn save(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((self.params.to_vec()?, self.momentum.to_vec()?))
    }

    fn load(&mut self, params: Vec<f32>, momentum: Vec<f32>) -> Result<()> {
        self.params = Flat::Host(params).copy_to(&self.place)?;
        self.momentum = Flat::Host(momentum).copy_to(&self.place)?;
        self.sync()
    }
}
