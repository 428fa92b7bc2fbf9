//! [`TensorStore`]: a CPU worker's parameters are its model's tensors, stepped in place inside
//! candle's storage by `optim::Sgd` (no copy per step); flat copies are made only when a pull, a
//! round or an all-reduce needs one, with the same `FlatBuffer` arithmetic as the flat store.

use std::sync::Arc;

use candle_core::backprop::GradStore;

use super::{Gradient, ParamStore};
use crate::buffer::{Flat, FlatBuffer, FlatPlace, RoundBuffer};
use crate::model::ParamSet;
use crate::optim::{Sgd, SgdConfig};
use crate::round::Target;
use crate::Result;

/// A CPU model's tensors with their optimizer.
pub struct TensorStore {
    set: ParamSet,
    place: FlatPlace,
    opt: Sgd,
    /// The last packed gradient (host memory).
    grads: Flat,
    /// The parameters, flat, while a pull or an ascent works on them.
    scratch: Vec<f32>,
}

impl TensorStore {
    /// The tensors of `set` (on the CPU), with zero momentum, stepping with `cfg`.
    pub fn new(set: &ParamSet, cfg: SgdConfig) -> Self {
        Self {
            set: set.clone(),
            place: FlatPlace::Host,
            opt: Sgd::new(cfg, set),
            grads: Flat::Host(vec![0.0; set.len()]),
            scratch: vec![0.0; set.len()],
        }
    }

    /// `f` applied to the parameters as one flat host vector, then written back.
    fn edit(&mut self, f: impl FnOnce(&mut Vec<f32>) -> Result<()>) -> Result<()> {
        self.set.read_flat(&mut self.scratch)?;
        f(&mut self.scratch)?;
        Ok(self.set.write_flat(&self.scratch)?)
    }
}

impl ParamStore for TensorStore {
    fn place(&self) -> &FlatPlace {
        &self.place
    }

    fn snapshot(&self) -> Result<Flat> {
        Ok(Flat::Host(self.set.to_flat()?))
    }

    fn pack(&mut self, grads: &GradStore) -> Result<&Flat> {
        self.grads.pack_grads(&self.set, grads)?;
        Ok(&self.grads)
    }

    fn step(&mut self, grad: Gradient<'_>, lr: f32) -> Result<()> {
        match grad {
            Gradient::Backward(grads) => self.opt.step(&self.set, grads, lr)?,
            Gradient::Packed => self.opt.step_flat(&self.set, &self.grads.host()?, lr)?,
            Gradient::Given(g) => self.opt.step_flat(&self.set, &g.host()?, lr)?,
        }
        Ok(())
    }

    fn pull(&mut self, point: &Flat, lambda: f32) -> Result<()> {
        let point = point.host()?;
        self.edit(|x| x.as_mut_slice().pull(&point, lambda))
    }

    fn apply(&mut self, t: &Target, worker: usize) -> Result<Option<Arc<Flat>>> {
        self.edit(|x| t.apply_host(Some(worker), x))?;
        Ok(t.anchor().cloned())
    }

    fn ascend(&mut self, scale: f32) -> Result<()> {
        self.set.read_flat(&mut self.scratch)?;
        let mut up = self.scratch.clone();
        up.as_mut_slice()
            .scale_add(1.0, &self.grads.host()?, scale)?;
        Ok(self.set.write_flat(&up)?)
    }

    /// `x` was kept in the scratch vector by the ascent.
    fn descend(&mut self) -> Result<()> {
        Ok(self.set.write_flat(&self.scratch)?)
    }

    /// The tensors are the parameters: nothing to do.
    fn sync(&mut self) -> Result<()> {
        Ok(())
    }

    fn save(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((self.set.to_flat()?, self.opt.momentum().to_vec()))
    }

    fn load(&mut self, params: Vec<f32>, momentum: Vec<f32>) -> Result<()> {
        self.set.write_flat(&params)?;
        Ok(self.opt.set_momentum(&momentum)?)
    }
}
