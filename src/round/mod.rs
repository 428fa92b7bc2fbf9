//! A round's data movement, apart from its decision. A [`Plan`](crate::algo::Plan) says how the
//! center is formed; [`RoundData`] carries it out through a [`Collective`], the primitives a
//! collective library offers (all-gather of small statistics, all-reduce-sum of a buffer,
//! broadcast), and keeps the data an algorithm owns across rounds (EASGD's center).
//!
//! - `collective`: the [`Collective`] trait.
//! - `gathered`: [`Gathered`], the in-process implementation: the pulling thread holds every
//!   participant's buffer (the hub moved them) and combines them with our fused reductions.
//! - `data`: [`RoundData`], a plan carried out over any collective, sync or async.
//! - `groups`: how workers on GPUs are grouped for an NCCL all-reduce (one rank per GPU).
//! - `reduced`: [`Reduced`], a round whose all-reduces a collective library does ([`Reducer`]:
//!   NCCL over the run's GPUs, `--round nccl`).
//! - `staging`: how a round over GPU buffers reaches them (in place or by peer copy) and the
//!   fences the copies need.
//!
//! docs/design.md section 4 describes the seam and what an MPI or NCCL implementation must do.

mod data;
mod target;

pub use data::RoundData;
pub use target::Target;
