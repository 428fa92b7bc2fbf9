//! Fast CPU operations for the models, as candle custom ops (our forward and backward inside
//! candle's autograd). candle's own CPU convolution backward and its composed BatchNorm are where
//! a training step's time went (docs/cpu-bench.md); every op here is checked against candle's op
//! in tests.
//! On other devices each layer falls back to candle's own op.

pub mod batch_norm;
mod bn_kernels;
pub mod bn_relu_conv;
pub mod conv;
mod conv_cf;
mod conv_chunks;
mod conv_cpu;
mod conv_dense;
mod conv_direct;
mod conv_scratch;
mod conv_wgrad;
mod cpu;
mod im2col;
mod input_map;
pub mod linear;
pub mod max_pool;
pub mod shortcut;
