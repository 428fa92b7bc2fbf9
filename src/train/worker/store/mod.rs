//! A worker's parameters, momentum and last gradient, where its model lives, and what a step and
//! a round do to them (docs/design.md section 4, "The worker's step"). The worker calls only
//! [`ParamStore`], so its step is one path whatever the device; the store has two homes:
//!
//! - `flat`: [`FlatStore`], flat buffers laid out by the layer table, on a GPU (candle's stream
//!   for it) or in host memory. Every operation is a `FlatBuffer` one; the gradients are packed
//!   in after a backward pass and the parameters written back into candle's tensors after the
//!   step (a candle tensor owns its storage, so tensors cannot be views of one flat buffer).
//! - `tensors`: [`TensorStore`], on the CPU: candle's tensors are the parameters, stepped in
//!   place inside their storage, and flat copies are made only when a round, a pull or an
//!   all-reduce needs one. It saves the flat store's two passes over the parameters per step
//!   (measured: +0.27 ms on a 3.6 ms MLP step), and gives the same bits (`tests/param_store.rs`).

mod flat;
mod tensors;

pub use flat::FlatStore;
pub use tensors::TensorStore;

use std::sync::Arc;

use candle_core::backprop::GradStore;

use crate::buffer::{Flat, FlatPlace};
use crate::model::Model;
use crate::optim::SgdConfig;
use crate::round::Target;
use crate::Result;

/// A worker's parameters and optimizer state, where its model lives.
pub trait ParamStore: Send {
    /// Where flat buffers of this store live (a round's point is brought here).
    fn place(&self) -> &FlatPlace;

    /// A copy of the parameters here: the worker's snapshot for a round.
    fn snapshot(&self) -> Result<Flat>;

    /// The gradients of `grads` as one flat buffer here (norms, an all-reduce, SAM's ascent).
    fn pack(&mut self, grads: &GradStore) -> Result<&Flat>;

    /// One SGD step of the whole model from `grad`.
    fn step(&mut self, grad: Gradient<'_>, lr: f32) -> Result<()>;

    /// `x <- (1 - lambda) x + lambda point` (the proximal step), `point` living here.
    fn pull(&mut self, point: &Flat, lambda: f32) -> Result<()>;

    /// Applies a round's target to the parameters of worker `worker`; returns the target's
    /// point where the store lives (the next proximal anchor), if it has one.
    fn apply(&mut self, t: &Target, worker: usize) -> Result<Option<Arc<Flat>>>;

    /// Sets the model's tensors to `x + scale g`, `g` the last packed gradient (SAM's ascent);
    /// the parameters themselves stay at `x`.
    fn ascend(&mut self, scale: f32) -> Result<()>;

    /// Sets the model's tensors back to the parameters after an ascent.
    fn descend(&mut self) -> Result<()>;

    /// Makes the model's tensors follow the parameters after a step, a pull or a round's target
    /// (once for all of them).
    fn sync(&mut self) -> Result<()>;

    /// The parameters and momentum on the host (checkpoints).
    fn save(&self) -> Result<(Vec<f32>, Vec<f32>)>;

    /// Puts saved parameters and momentum here and into the model's tensors.
    fn load(&mut self, params: Vec<f32>, momentum: Vec<f32>) -> Result<()>;
}

/// Which gradient a step takes.
pub enum Gradient<'a> {
    /// The last backward pass's, as autograd left them.
    Backward(&'a GradStore),
    /// The last one packed with [`ParamStore::pack`].
    Packed,
    /// A flat gradient from elsewhere (an all-reduced mean), where it lives.
    Given(&'a Flat),
}

/// The store for `model` with zero momentum (PyTorch's first step), stepping with `cfg`: flat
/// buffers on its GPU, or its own tensors stepped in place on the CPU.
pub fn open(model: &Model, cfg: SgdConfig) -> Result<Box<dyn ParamStore>> {
    Ok(if model.device.is_cpu() {
        Box::new(TensorStore::new(&model.params, cfg))
    } else {
        Box::new(FlatStore::open(model, cfg)?)
    })
}
