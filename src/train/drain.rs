//! The drain phase of a run: the main thread reads the threads' events until they have all
//! returned, writing metrics, rendering progress and writing the checkpoints the hub
//! assembles. It never blocks a worker: they only send.

use std::sync::atomic::Ordering;

use super::loss_meter::TrainLossMeter;
use super::spawn::Running;
use crate::algo::ScheduleKind;
use crate::checkpoint::{self, Checkpoint, Layout};
use crate::config::RunConfig;
use crate::events::Event;
use crate::metrics::MetricsWriter;
use crate::progress::{BudgetLeft, ProgressView};
use crate::tensorboard::Scalars;
use crate::Result;

/// Step summaries in metrics.jsonl: one per this many steps per worker.
pub(super) const LOG_EVERY: u64 = 20;

/// Consumes `run.events`; returns the training loss of the last evaluation. A failed write (a
/// full disk) stops every thread at its next step boundary; the events are still drained so they
/// can finish, but nothing more is written, and the write's error is returned.
pub fn drain(cfg: &RunConfig, run: &Running) -> Result<f64> {
    let m = cfg.workers;
    // Across processes rank 0 alone writes metrics and shows progress (a line per rank).
    let root = run.layout.is_root();
    let mut metrics = match (&run.resumed, root) {
        (_, false) => None,
        (Some(r), true) => Some(MetricsWriter::resume(
            &cfg.out,
            m,
            LOG_EVERY,
            r.state.metrics.bytes,
            &r.state.metrics.windows,
        )?),
        (None, true) => Some(MetricsWriter::create(&cfg.out, m, LOG_EVERY)?),
    };
    if let (Some(metrics), true) = (&mut metrics, cfg.tensorboard) {
        let global = run.layout.global_workers();
        let resumed_at = run
            .resumed
            .as_ref()
            .map(|r| r.state.total_steps / global as u64 + 1);
        let classes = cfg.classes.clone();
        metrics.attach_tensorboard(Scalars::create(&cfg.out, global, m, classes, resumed_at)?);
    }
    let budget = BudgetLeft {
        steps_per_worker: run.max_steps,
        seconds: cfg.budget.minutes.map(|m| m * 60.0),
    };
    let mut view = ProgressView::new(cfg.quiet || !root, run.layout.ranks, m, budget);
    // Rank 0's meter covers every worker: the other ranks' losses come as `RemoteLosses`.
    let mut meter = TrainLossMeter::new(
        run.layout.global_workers(),
        cfg.algo.schedule == ScheduleKind::Sync,
    );
    if let Some(r) = &run.resumed {
        let steps: Vec<u64> = r.state.workers.iter().map(|w| w.step).collect();
        meter.restore(&r.state.metrics, &steps);
        view.restore_steps(&steps);
    }
    let layout = run.shapes.layout();
    let mut train_loss = f64::NAN;
    let mut failed = None;
    // The channel closes when the workers and the hub have all returned.
    for mut event in run.events.iter() {
        if let Event::Fatal = event {
            break;
        }
        if failed.is_some() {
            continue;
        }
        let Some(metrics) = &mut metrics else {
            continue;
        };
        let written = match event {
            Event::Checkpoint(ckpt) => save_checkpoint(*ckpt, metrics, &meter, cfg, &layout),
            _ => {
                meter.observe(&mut event);
                if let Event::Eval(e) = &event {
                    train_loss = e.train_loss;
                }
                view.update(&event);
                metrics.record(&event)
            }
        };
        if let Err(e) = written {
            run.shared.abort.store(true, Ordering::SeqCst);
            failed = Some(e);
        }
    }
    view.finish();
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(metrics) = &mut metrics {
        metrics.finish()?;
    }
    Ok(train_loss)
}

/// Completes a checkpoint with the main thread's metrics state and writes it.
fn save_checkpoint(
    mut ckpt: Checkpoint,
    metrics: &mut MetricsWriter,
    meter: &TrainLossMeter,
    cfg: &RunConfig,
    layout: &Layout,
) -> Result<()> {
    let (bytes, windows) = metrics.position()?;
    ckpt.state.metrics = checkpoint::MetricsState {
        bytes,
        pending_losses: meter.pending.clone(),
        last_train_loss: meter.last.is_finite().then_some(meter.last),
        windows,
    };
    checkpoint::write(&cfg.out, &ckpt, layout, cfg.keep)?;
    Ok(())
}
