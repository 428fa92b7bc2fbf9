//! A round carried out, apart from its decision and from how bytes move. A
//! [`Plan`](crate::algo::Plan) says how the center is formed; [`RoundData`] carries it out
//! through a [`Collective`](crate::comm::Collective) (all-gather of small statistics,
//! all-reduce-sum of a buffer, broadcast: whatever transport implements them) and keeps the data
//! an algorithm owns across rounds (EASGD's center); the [`Target`] it hands back is applied to
//! each worker's parameters where they live.
//!
//! - `data`: [`RoundData`], a plan carried out over any collective, sync or async; the evaluated
//!   point.
//! - `target`: [`Target`], a pull toward a point or an exchange with the center, and its
//!   arithmetic.
//!
//! docs/design.md section 4 describes the three layers of a round.

mod data;
mod target;

pub use data::RoundData;
pub use target::Target;
