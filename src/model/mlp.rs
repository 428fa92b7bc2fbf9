//! A two-layer perceptron (input -> 256 -> classes), the fast model for MNIST-sized data.

use candle_core::{Result, Tensor};
use candle_nn::{Module, ModuleT, VarBuilder};

use super::layers::{linear, WeightInit};
use crate::ops::linear::Linear;

/// Width of the hidden layer.
pub const HIDDEN: usize = 256;

/// input -> Linear -> ReLU -> Linear.
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    /// An MLP over flattened inputs of `in_dim` values.
    pub fn new(in_dim: usize, num_classes: usize, vb: VarBuilder) -> Result<Self> {
        let init = WeightInit::TorchDefault;
        Ok(Self {
            fc1: linear(in_dim, HIDDEN, init, vb.pp("fc1"))?,
            fc2: linear(HIDDEN, num_classes, init, vb.pp("fc2"))?,
        })
    }
}

impl ModuleT for Mlp {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Result<Tensor> {
        let xs = xs.flatten_from(1)?;
        self.fc2.forward(&self.fc1.forward_relu(&xs)?)
    }
}
