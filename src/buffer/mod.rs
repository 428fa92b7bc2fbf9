//! A worker's flat buffers (parameters, gradients, momentum) on any device, with the operations a
//! local step and a round need. Workers and the round call only [`FlatBuffer`]; where the bytes
//! live is the implementation's business:
//!
//! - `host`: `[f32]` in host memory, over `average::reduce` and `optim::sgd_update` (the CPU
//!   reference every GPU kernel is checked against);
//! - `cuda` (feature `cuda`): [`CudaBuffer`], a `CudaSlice` on one GPU, over `cuda::Kernels`.
//!
//! One parity suite (`tests/buffer_parity.rs`) runs every operation on both against the naive
//! twins in `average::naive`; its CUDA half runs wherever a GPU is visible.
//!
//! A round combines several workers' buffers: [`RoundBuffer`] (`round.rs`) is what it needs
//! beyond one buffer's operations, and [`Flat`] (`flat.rs`) is the buffer the trainer's messages
//! carry, host or GPU. `tensors` moves values between a model's tensors and a `Flat` where both
//! live; `staging` is how a round over GPU buffers reaches them (in place or by peer copy) and
//! the fences those copies need.

#[cfg(feature = "cuda")]
mod cuda;
mod flat;
mod flat_buffer;
mod host;
mod round;
pub mod staging;
mod tensors;

#[cfg(feature = "cuda")]
pub use cuda::{host_transfers, CudaBuffer, CudaPlace};
pub use flat::{Flat, FlatPlace};
pub use flat_buffer::FlatBuffer;
pub use round::RoundBuffer;
