//! NCCL between the GPUs of one process.

pub mod groups;
mod reduced;
#[cfg(feature = "nccl")]
pub mod reducer;

pub use reduced::{Reduced, Reducer};
