//! The order of one NCCL group over several communicators, as a plan a CPU test can check (pure,
//! compiled in every build). `--round nccl` drives every GPU's communicator from one thread, so
//! each collective is issued once per GPU between `ncclGroupStart` and `ncclGroupEnd`.
//!
//! Two rules, both from how NCCL treats a group:
//! - **Writes are recorded after the group ends.** Inside a group NCCL only *collects* the calls:
//!   the kernels are enqueued on the streams at `ncclGroupEnd`. cudarc records a buffer's write
//!   event when its call returns, which inside a group is before the all-reduce is on the stream,
//!   so a reader waiting on that event could read the un-reduced partial sum. Each buffer's write
//!   event is recorded again after the group ends, when it covers the collective.
//! - **A failed call aborts every communicator.** When one GPU's call fails mid-group, the calls
//!   queued before it still launch at `ncclGroupEnd` and their kernels spin for ever, waiting for
//!   a peer that never joins; a stream or host sync behind them would hang the run. The group is
//!   always closed (or NCCL stays in group mode), then every communicator is aborted
//!   (`ncclCommAbort` stops their kernels) and the error ends the run.

/// The steps of one group, implemented over real communicators (`cuda::nccl_round`) or over a
/// log in tests.
pub trait GroupSteps {
    type Error;
    /// `ncclGroupStart`.
    fn start(&mut self) -> Result<(), Self::Error>;
    /// Rank `rank`'s collective, collected by the group.
    fn call(&mut self, rank: usize) -> Result<(), Self::Error>;
    /// `ncclGroupEnd`: the collectives are enqueued now.
    fn end(&mut self) -> Result<(), Self::Error>;
    /// Records rank `rank`'s buffer as written at this point of its stream.
    fn record_written(&mut self, rank: usize) -> Result<(), Self::Error>;
    /// Aborts every communicator; they cannot be used again.
    fn abort_all(&mut self);
}

/// Runs one group over `ranks` communicators by the rules above. On an error from a call or
/// from the group's end every communicator has been aborted when this returns; the first error
/// is the one returned.
pub fn run_group<G: GroupSteps>(g: &mut G, ranks: usize) -> Result<(), G::Error> {
    if let Err(e) = g.start() {
        g.abort_all();
        return Err(e);
    }
    let queued = (0..ranks).try_for_each(|rank| g.call(rank));
    // Closed whatever happened: a group left open swallows every later call.
    let ended = g.end();
    if let Err(e) = queued.and(ended) {
        g.abort_all();
        return Err(e);
    }
    // Every collective is enqueued and will finish: nothing spins, no abort is needed.
    (0..ranks).try_for_each(|rank| g.record_written(rank))
}
