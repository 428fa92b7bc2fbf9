//! How bytes move between workers: the one home of the transport. The hub holds one
//! [`Transport`], chosen from the flags when the run starts ([`Wiring`]), and calls it the same way
//! for every exchange whatever moves the bytes:
//!
//! - `gathered`: [`InProcess`] (`--round hub`): the hub combines the buffers the workers' messages
//!   brought it ([`Gathered`]), on the host or its GPU;
//! - `nccl`: NCCL between the GPUs of one process (`--round nccl`, feature `nccl`);
//! - `ranks`: processes over MPI (`mpirun`/`srun`), each rank's workers combined locally, then
//!   across ranks; the agreements between the ranks' hubs;
//! - `collective`: the [`Collective`] primitives every transport offers a round;
//! - `transport`: the [`Transport`] trait and the agreements' types;
//! - `wiring`: [`Wiring`], the transport the flags choose, opened on the hub's thread;
//! - `linked`: [`Linked`], any transport over a modelled interconnect (`--link`), wrapped by
//!   `Wiring::open`; `link_tally`: what it has charged ([`LinkTally`]);
//! - `place`: where the hub of one process makes a round's results.
//!
//! Adding a transport is one file here implementing [`Transport`], and one arm of [`Wiring`].
//! docs/design.md section 4 describes the layers and where a model of the interconnect goes.

pub mod collective;
pub mod gathered;
mod link_tally;
pub mod linked;
pub mod nccl;
pub mod place;
pub mod ranks;
mod transport;
mod wiring;

pub use collective::{Collective, Participants};
pub use gathered::{Gathered, InProcess};
pub use link_tally::LinkTally;
pub use linked::{Counted, Exchanges, LinkModel, Linked};
pub use transport::{Agreed, Ended, Ending, Kind, Proposal, Transport};
pub use wiring::Wiring;
