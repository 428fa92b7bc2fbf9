//! The round across ranks.

mod collective;
mod header;
mod saves;

pub use collective::{RankCollective, WINDOW as ALL_REDUCE_WINDOW};
pub use header::{agree, others_losses, push_losses, Agreed, Header, Kind};
pub use saves::gather_saves;
