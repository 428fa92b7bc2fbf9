//! [`FlatBuffer`] for host memory: the parallel reductions of `average::reduce` and the optimizer
//! of `optim`. Every GPU kernel is checked against these (and they against `average::naive`).

use super::flat_buffer::FlatBuffer;
use crate::average::{layer_sumsq, pull};
use crate::model::LayerEntry;
use crate::optim::{sgd_update, SgdConfig};
use crate::{Error, Result};

fn same_len(what: &str, a: usize, b: usize) -> Result<()> {
    if a == b {
        Ok(())
    } else {
        Err(Error::Internal(format!(
            "{what}: buffers of {a} and {b} elements"
        )))
    }
}

impl FlatBuffer for [f32] {
    fn len(&self) -> usize {
        <[f32]>::len(self)
    }

    fn layer_sumsq(&self, table: &[LayerEntry]) -> Result<Vec<f64>> {
        Ok(layer_sumsq(self, table))
    }

    fn pull(&mut self, center: &Self, lambda: f32) -> Result<()> {
        same_len("pull", self.len(), center.len())?;
        pull(self, center, lambda);
        Ok(())
    }

    fn scale_add(&mut self, a: f32, y: &Self, b: f32) -> Result<()> {
        same_len("scale_add", self.len(), y.len())?;
        for (x, y) in self.iter_mut().zip(y) {
            *x = a * *x + b * *y;
        }
        Ok(())
    }

    fn divide(&mut self, d: f32) -> Result<()> {
        self.iter_mut().for_each(|x| *x /= d);
        Ok(())
    }

    fn sgd_step(
        &mut self,
        grad: &Self,
        momentum: &mut Self,
        lr: f32,
        cfg: &SgdConfig,
    ) -> Result<()> {
        same_len("sgd_step", self.len(), grad.len())?;
        same_len("sgd_step", self.len(), momentum.len())?;
        sgd_update(self, grad, momentum, lr, cfg);
        Ok(())
    }

    fn to_host(&self) -> Result<Vec<f32>> {
        Ok(self.to_vec())
    }
}

/// An owned host buffer is its slice.
impl FlatBuffer for Vec<f32> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn layer_sumsq(&self, table: &[LayerEntry]) -> Result<Vec<f64>> {
        self.as_slice().layer_sumsq(table)
    }

    fn pull(&mut self, center: &Self, lambda: f32) -> Result<()> {
        self.as_mut_slice().pull(center, lambda)
    }

    fn scale_add(&mut self, a: f32, y: &Self, b: f32) -> Result<()> {
        self.as_mut_slice().scale_add(a, y, b)
    }

    fn divide(&mut self, d: f32) -> Result<()> {
        self.as_mut_slice().divide(d)
    }

    fn sgd_step(
        &mut self,
        grad: &Self,
        momentum: &mut Self,
        lr: f32,
        cfg: &SgdConfig,
    ) -> Result<()> {
        self.as_mut_slice().sgd_step(grad, momentum, lr, cfg)
    }

    fn to_host(&self) -> Result<Vec<f32>> {
        Ok(self.clone())
    }
}
