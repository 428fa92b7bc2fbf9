//! The transport between the GPUs of one process (`--round nccl`, feature `nccl`): the round's
//! and DDP's all-reduces over NCCL, local-then-global: each GPU's participants are first combined
//! on that GPU (NCCL takes one rank per GPU: `groups`), then one NCCL all-reduce sums the GPUs'
//! partial sums (`reducer`). Broadcasts stay copies ([`Reduced`]).

pub mod groups;
mod reduced;
#[cfg(feature = "nccl")]
pub mod reducer;

pub use reduced::{Reduced, Reducer};

#[cfg(feature = "nccl")]
pub use gpus::NcclGpus;

#[cfg(feature = "nccl")]
mod gpus {
    use super::reduced::Reduced;
    use super::reducer::NcclReducer;
    use crate::buffer::FlatPlace;
    use crate::comm::collective::{Collective, Participants};
    use crate::comm::transport::Transport;
    use crate::model::LayerEntry;
    use crate::ranks::RankLayout;
    use crate::Result;

    /// NCCL's communicators over the run's GPUs, made on the hub's thread (NCCL's rule: a
    /// communicator stays on the thread that made it); broadcasts are copies made at `place`.
    pub struct NcclGpus {
        layout: RankLayout,
        reducer: NcclReducer,
        place: FlatPlace,
    }

    impl NcclGpus {
        /// Communicators for workers on GPUs `gpus` (one ordinal per worker), buffers laid out
        /// by `table`. Call it on the thread that will make every collective call.
        pub fn open(gpus: &[usize], table: &[LayerEntry], place: FlatPlace) -> Result<Self> {
            Ok(Self {
                layout: RankLayout::single(gpus.len()),
                reducer: NcclReducer::new(gpus, table)?,
                place,
            })
        }
    }

    impl Transport for NcclGpus {
        fn layout(&self) -> RankLayout {
            self.layout
        }

        fn collective<'a>(
            &'a mut self,
            parts: Participants<'a>,
        ) -> Result<Box<dyn Collective + 'a>> {
            Ok(Box::new(Reduced::new(
                parts.workers,
                parts.stats,
                parts.buffers,
                &self.reducer,
                self.place.clone(),
            )))
        }
    }
}
