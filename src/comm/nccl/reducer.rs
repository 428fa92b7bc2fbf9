//! `--round nccl`: the round's and DDP's all-reduces over NCCL between the run's GPUs, in one
//! process. NCCL takes one rank per GPU, so the workers are grouped by GPU
//! (`round::groups::DeviceGroups`): each GPU's participants are first combined on that GPU by our
//! `weighted_center` kernel (the group's rows of the weights), then one NCCL all-reduce sums the
//! GPUs' partial sums, and every GPU holds the result. The result's copies on the other GPUs
//! travel with it as mirrors (`CudaBuffer::with_mirrors`), so each worker pulls from the copy on
//! its own GPU.
//!
//! NCCL's single-process, multi-GPU mode: `ncclCommInitAll` makes one communicator per GPU and
//! one thread issues every GPU's call inside a group (`ncclGroupStart`/`ncclGroupEnd`). The
//! communicators belong to the hub, which makes them when the run starts and alone
//! calls them (NCCL's rule: a communicator stays on the thread that made it).
//!
//! A GPU with no participant this round (async) contributes zeros, since every communicator must
//! join each collective. The sum's order is NCCL's (groups, then ranks in the ring), so results
//! agree with the hub's round to f32 rounding, not bit for bit.

use std::sync::Arc;

use super::groups::DeviceGroups;
use super::reduced::Reducer;
use crate::average::Weights;
use crate::buffer::{CudaBuffer, CudaPlace, Flat, FlatBuffer, RoundBuffer};
use crate::cuda::cudarc::nccl::{group_end, group_start, Comm, ReduceOp};
use crate::model::LayerEntry;
use crate::{Error, Result};

fn nccl(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Internal(format!("NCCL: {what}: {e:?}"))
}

/// NCCL communicators over the GPUs of a run's workers, with the hub's stream on each.
pub struct NcclReducer {
    groups: DeviceGroups,
    /// Per group (in rank order): the hub's place on that GPU.
    places: Vec<Arc<CudaPlace>>,
    comms: Vec<Comm>,
    table: Vec<LayerEntry>,
}

impl NcclReducer {
    /// Communicators for workers placed on GPUs `placement` (one ordinal per worker), for
    /// buffers laid out by `table`. Call it on the thread that will make every collective call.
    pub fn new(placement: &[usize], table: &[LayerEntry]) -> Result<Self> {
        let groups = DeviceGroups::new(placement).map_err(Error::Internal)?;
        let len = table.last().map_or(0, |e| e.offset + e.len);
        let places = groups
            .groups()
            .iter()
            .map(|g| CudaPlace::new(g.gpu, table, len))
            .collect::<Result<Vec<_>>>()?;
        let streams = places.iter().map(|p| p.stream().clone()).collect();
        let comms = Comm::from_devices(streams)
            .map_err(|e| nccl("making one communicator per GPU (ncclCommInitAll)", e))?;
        Ok(Self {
            groups,
            places,
            comms,
            table: table.to_vec(),
        })
    }

    /// Each GPU's combine of its participants (zeros where it has none), then the grouped NCCL
    /// sum; the result on the first GPU, mirrored on the others.
    fn reduce(
        &self,
        workers: &[usize],
        xs: &[&Flat],
        scale: Option<&Weights>,
    ) -> Result<CudaBuffer> {
        let len = xs.first().map_or(0, |x| x.len());
        let mut partials = Vec::with_capacity(self.places.len());
        for (g, place) in self.groups.groups().iter().zip(&self.places) {
            // Positions in `xs` of this GPU's participants, in worker order.
            let rows: Vec<usize> = workers
                .iter()
                .enumerate()
                .filter(|(_, w)| g.workers.contains(w))
                .map(|(i, _)| i)
                .collect();
            let partial = if rows.is_empty() {
                CudaBuffer::zeros(place, len)?
            } else {
                let mine: Vec<&CudaBuffer> = rows
                    .iter()
                    .map(|&i| match xs[i] {
                        Flat::Device(b) => Ok(b),
                        Flat::Host(_) => Err(Error::Internal(
                            "--round nccl: a worker's buffer is in host memory".into(),
                        )),
                    })
                    .collect::<Result<_>>()?;
                let w = scale.map(|w| w.select(&rows));
                CudaBuffer::combine(&mine, w.as_ref(), &self.table, place)?
            };
            partials.push(partial);
        }
        group_start().map_err(|e| nccl("ncclGroupStart", e))?;
        let queued: Result<()> = self
            .comms
            .iter()
            .zip(&mut partials)
            .try_for_each(|(comm, p)| {
                comm.all_reduce_in_place(p.slice_mut(), &ReduceOp::Sum)
                    .map(|_| ())
                    .map_err(|e| nccl("all-reduce", e))
            });
        // The group is closed whatever happened, or NCCL stays in group mode.
        group_end().map_err(|e| nccl("ncclGroupEnd", e))?;
        queued?;
        let mut partials = partials.into_iter();
        let first = partials
            .next()
            .ok_or_else(|| Error::Internal("--round nccl over no GPU".into()))?;
        Ok(first.with_mirrors(partials.collect()))
    }
}

impl Reducer for NcclReducer {
    fn sum(&self, workers: &[usize], xs: &[&Flat], scale: Option<&Weights>) -> Result<Flat> {
        self.reduce(workers, xs, scale).map(Flat::Device)
    }

    fn mean(&self, workers: &[usize], xs: &[&Flat]) -> Result<Flat> {
        let mut sum = self.reduce(workers, xs, None)?;
        // `divide` divides every mirror too.
        sum.divide(workers.len() as f32)?;
        Ok(Flat::Device(sum))
    }

    fn name(&self) -> &'static str {
        "nccl"
    }
}
