//! A training run from start to finish, in four phases:
//!
//! 1. `setup`: load the data, build one model per worker (all from the same initial point), the
//!    evaluator and, when resuming, read the checkpoint; only then create the output folder;
//! 2. `spawn`: choose the transport (`comm::Wiring`), start the worker threads and the hub;
//! 3. `drain`: render progress and write metrics and checkpoints from their events until done;
//! 4. `finish`: join them and write the summary.
//!
//! The threads: `worker` (a model, its step and its side of the exchanges), `hub` (the thread
//! every worker reports to: rounds, DDP's mean, evaluation, checkpoints, the budget), and the
//! `messages` between them (`shared` is the little state they all read). `evaluator` scores a
//! point in parameter space.

pub mod budget;
mod drain;
pub mod evaluator;
mod finish;
pub mod hub;
pub mod interrupt;
mod loss_meter;
pub mod messages;
mod setup;
pub mod shared;
mod spawn;
pub mod worker;

pub use crate::events;

use std::time::Instant;

use crate::config::RunConfig;
use crate::metrics::Summary;
use crate::ranks::{Peers, RankLayout};
use crate::Result;

/// Runs training as configured and returns the summary (also written to `summary.json`).
pub fn run(cfg: RunConfig) -> Result<Summary> {
    run_with(cfg, None)
}

/// [`run`] as one rank of a run across processes: `peers` are the others (`None`: one process).
/// Rank 0 writes the outputs and shows progress; the others train, take part in every round and
/// write nothing.
pub fn run_with(mut cfg: RunConfig, peers: Option<Box<dyn Peers>>) -> Result<Summary> {
    let wall = Instant::now();
    let layout = peers
        .as_ref()
        .map_or(RankLayout::single(cfg.workers), |p| p.layout());
    // Everything that can fail on user input happens before the output folder is created.
    let ready = setup::prepare(&mut cfg, layout)?;
    if ready.resumed.as_ref().is_some_and(|c| c.state.finished) {
        // Training ended, but the run stopped before its summary: only that is left to do, and
        // only rank 0 writes it.
        if !layout.is_root() {
            return finish::nothing_left(&cfg, ready, wall);
        }
        return finish::from_checkpoint(&cfg, ready, wall)
            .map_err(|e| finish::after_write_failure(&cfg, e));
    }
    let running = spawn::start(&cfg, ready, peers)?;
    let finished = match drain::drain(&cfg, &running) {
        Ok(train_loss) => finish::finish(&cfg, running, train_loss, wall),
        Err(e) => {
            finish::abandon(running);
            Err(e)
        }
    };
    finished.map_err(|e| finish::after_write_failure(&cfg, e))
}
