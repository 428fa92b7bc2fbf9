//! How bytes move between workers.

pub mod collective;
pub mod gathered;
pub mod nccl;
pub mod place;
pub mod ranks;

pub use collective::Collective;
pub use gathered::Gathered;
