//! [`Wiring`]: the transport a run's flags choose, at the start of the run, and opened on the
//! hub's thread. Adding a transport is one arm here.

use super::gathered::InProcess;
use super::linked::{Counted, LinkModel, Linked};
use super::transport::Transport;
use super::{place, ranks};
use crate::buffer::FlatPlace;
use crate::config::RoundTransport;
use crate::model::LayerEntry;
use crate::ranks::{Peers, RankLayout};
use crate::Result;

/// The transport a run's flags chose, before it is opened on the hub's thread (NCCL's
/// communicators belong to the thread that makes them).
pub enum Wiring {
    /// One process; the hub combines the buffers at `place`.
    InProcess { place: FlatPlace },
    /// One process; sums over NCCL between the GPUs `gpus` (one ordinal per worker).
    Nccl { gpus: Vec<usize>, place: FlatPlace },
    /// Processes over MPI.
    Ranks { peers: Box<dyn Peers> },
}

impl Wiring {
    /// Ranks when `peers` are given (a run across processes), NCCL between the GPUs with
    /// `--round nccl`, else the hub in one process; `gpus` holds one ordinal per worker of this
    /// process (empty on the CPU), `table` the parameters' layout.
    pub fn choose(
        round: RoundTransport,
        gpus: &[usize],
        peers: Option<Box<dyn Peers>>,
        table: &[LayerEntry],
    ) -> Result<Self> {
        if let Some(peers) = peers {
            return Ok(Wiring::Ranks { peers });
        }
        let place = place::round_place(gpus, table)?;
        Ok(match round {
            RoundTransport::Hub => Wiring::InProcess { place },
            RoundTransport::Nccl => Wiring::Nccl {
                gpus: gpus.to_vec(),
                place,
            },
        })
    }

    /// Where the hub makes a round's results (host memory across ranks: MPI takes host buffers).
    pub fn place(&self) -> FlatPlace {
        match self {
            Wiring::InProcess { place } | Wiring::Nccl { place, .. } => place.clone(),
            Wiring::Ranks { .. } => FlatPlace::Host,
        }
    }

    /// This process's place among the run's processes, with `workers` workers of its own.
    pub fn layout(&self, workers: usize) -> RankLayout {
        match self {
            Wiring::Ranks { peers } => peers.layout(),
            _ => RankLayout::single(workers),
        }
    }

    /// Checks, before any worker starts, that every process starts from the same point `x0`.
    pub fn check_same_start(&mut self, x0: &[f32]) -> Result<()> {
        match self {
            Wiring::Ranks { peers } => ranks::same_start_everywhere(peers.as_mut(), x0),
            _ => Ok(()),
        }
    }

    /// The transport, on the thread that will use it, for `workers` workers of this process with
    /// parameters laid out by `table`; over `link`'s modelled interconnect when one is given
    /// (across processes it models the cross-rank part: the ranks are its participants).
    pub fn open(
        self,
        table: Vec<LayerEntry>,
        workers: usize,
        link: Option<LinkModel>,
    ) -> Result<Box<dyn Transport>> {
        let counted = match &self {
            Wiring::Ranks { peers } => Counted::Ranks(peers.layout().ranks),
            _ => Counted::Participants,
        };
        let real = self.open_real(table, workers)?;
        Ok(match link {
            Some(model) => Box::new(Linked::new(real, model, counted)),
            None => real,
        })
    }

    /// The transport that moves the bytes.
    fn open_real(self, table: Vec<LayerEntry>, workers: usize) -> Result<Box<dyn Transport>> {
        Ok(match self {
            Wiring::InProcess { place } => Box::new(InProcess {
                layout: RankLayout::single(workers),
                table,
                place,
            }),
            Wiring::Nccl { gpus, place } => open_nccl(&gpus, &table, place)?,
            Wiring::Ranks { peers } => Box::new(ranks::Ranks::new(peers, table)),
        })
    }
}

#[cfg(feature = "nccl")]
fn open_nccl(gpus: &[usize], table: &[LayerEntry], place: FlatPlace) -> Result<Box<dyn Transport>> {
    Ok(Box::new(super::nccl::NcclGpus::open(gpus, table, place)?))
}

/// Refused when the flags are read (`--round nccl` needs the `nccl` feature); a backstop.
#[cfg(not(feature = "nccl"))]
fn open_nccl(_: &[usize], _: &[LayerEntry], _: FlatPlace) -> Result<Box<dyn Transport>> {
    Err(crate::Error::usage(
        "--round nccl: this build has no NCCL; build with --features nccl",
    ))
}
