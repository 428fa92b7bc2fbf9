//! `--round nccl`: the round's and DDP's all-reduces over NCCL between the run's GPUs, in one
//! process. NCCL takes one rank per GPU, so the workers are grouped by GPU
//! (`comm::nccl::groups::DeviceGroups`): each GPU's participants are first combined on that GPU by our
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
//! The group follows `cuda::group`'s rules: each partial sum's write is recorded again after the
//! group ends (NCCL enqueues a grouped collective only then, so the event cudarc records when
//! the call returns would let a worker pull the un-reduced partial sum), and a call that fails
//! mid-group aborts every communicator (the GPUs whose calls were queued would spin for ever
//! waiting for the missing one) and ends the run with the error. The communicators are made
//! only where kernels load eagerly (`cuda::loading`).
//!
//! A GPU with no participant this round (async) contributes zeros, since every communicator must
//! join each collective. The sum's order is NCCL's (groups, then ranks in the ring), so results
//! agree with the hub's round to f32 rounding, not bit for bit.

use std::cell::RefCell;
use std::sync::Arc;

use super::groups::DeviceGroups;
use super::reduced::Reducer;
use crate::average::Weights;
use crate::buffer::{CudaBuffer, CudaPlace, Flat, FlatBuffer, RoundBuffer};
use crate::cuda::cudarc::nccl::{group_end, group_start, Comm, ReduceOp};
use crate::cuda::group::{run_group, GroupSteps};
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
    /// `None` once aborted after a failed collective: the run is ending with that error.
    comms: RefCell<Option<Vec<Comm>>>,
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
        crate::cuda::loading::require_eager()?;
        let streams = places.iter().map(|p| p.stream().clone()).collect();
        let comms = Comm::from_devices(streams)
            .map_err(|e| nccl("making one communicator per GPU (ncclCommInitAll)", e))?;
        Ok(Self {
            groups,
            places,
            comms: RefCell::new(Some(comms)),
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
        let mut comms = self.comms.borrow_mut();
        if comms.is_none() {
            return Err(Error::Internal(
                "NCCL: the communicators were aborted after an earlier failure".into(),
            ));
        }
        let ranks = partials.len();
        let mut group = SumGroup {
            comms: &mut comms,
            partials: &mut partials,
        };
        run_group(&mut group, ranks).map_err(|e| match comms.is_none() {
            true => Error::Internal(format!("{e} (every NCCL communicator was aborted)")),
            false => e,
        })?;
        let mut partials = partials.into_iter();
        let first = partials
            .next()
            .ok_or_else(|| Error::Internal("--round nccl over no GPU".into()))?;
        Ok(first.with_mirrors(partials.collect()))
    }
}

/// One grouped in-place sum of every GPU's partial, as `cuda::group` orders it.
struct SumGroup<'a> {
    comms: &'a mut Option<Vec<Comm>>,
    partials: &'a mut [CudaBuffer],
}

impl GroupSteps for SumGroup<'_> {
    type Error = Error;

    fn start(&mut self) -> Result<()> {
        group_start()
            .map(|_| ())
            .map_err(|e| nccl("ncclGroupStart", e))
    }

    fn call(&mut self, rank: usize) -> Result<()> {
        let comm = &self.comms.as_ref().expect("checked before the group")[rank];
        comm.all_reduce_in_place(self.partials[rank].slice_mut(), &ReduceOp::Sum)
            .map(|_| ())
            .map_err(|e| nccl(&format!("all-reduce on GPU {}", comm.ordinal()), e))
    }

    fn end(&mut self) -> Result<()> {
        group_end().map(|_| ()).map_err(|e| nccl("ncclGroupEnd", e))
    }

    fn record_written(&mut self, rank: usize) -> Result<()> {
        let p = &mut self.partials[rank];
        let stream = p.place().stream().clone();
        crate::cuda::device::record_write(p.slice_mut(), &stream);
        Ok(())
    }

    fn abort_all(&mut self) {
        // Dropping a communicator is `ncclCommAbort` (cudarc), which stops its kernels. cudarc
        // panics if the abort itself fails: keep that from unwinding over the error being
        // reported, which already ends the run.
        if let Some(comms) = self.comms.take() {
            let aborted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(comms)));
            if aborted.is_err() {
                eprintln!("grawa-train: NCCL: aborting a communicator failed as well");
            }
        }
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
