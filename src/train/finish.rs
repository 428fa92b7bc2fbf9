//! The finish phase of a run: join the threads, write `metrics.csv` and `summary.json`, measure
//! flatness when asked, and report. Also the two ways a run ends otherwise: finishing one whose
//! training ended before its summary was written, and what a failed write leaves behind.

use std::thread::JoinHandle;
use std::time::Instant;

use super::hub::{EvalSchedule, Outcome};
use super::loss_meter::TrainLossMeter;
use super::messages::Snapshot;
use super::setup::Setup;
use super::spawn::Running;
use crate::algo::ScheduleKind;
use crate::buffer::{Flat, FlatPlace};
use crate::checkpoint;
use crate::config::RunConfig;
use crate::error::panic_message;
use crate::events::Event;
use crate::metrics::{write_json_atomic, MetricsWriter, Summary};
use crate::round::RoundData;
use crate::{Error, Result};

/// Joins `run`'s threads and writes the run's summary; `train_loss` is the last evaluation's.
pub fn finish(cfg: &RunConfig, run: Running, train_loss: f64, wall: Instant) -> Result<Summary> {
    let outcome = join(run.hub, run.workers)?;
    let sizes = (run.batches_per_epoch, run.train_images);
    summarize(cfg, &outcome, train_loss, sizes, wall)
}

/// Waits for the threads of a run that failed in the main thread (they have been told to stop).
pub fn abandon(run: Running) {
    let _ = join(run.hub, run.workers);
}

/// The hub's outcome, once it and the workers have returned. The hub first:
/// after a failure a stuck worker may never return, and is not waited for (the process ends with
/// the error).
fn join(hub: JoinHandle<Result<Outcome>>, workers: Vec<JoinHandle<()>>) -> Result<Outcome> {
    let outcome = hub
        .join()
        .map_err(|p| Error::Internal(format!("the hub panicked: {}", panic_message(&*p))))??;
    for h in workers {
        let _ = h.join();
    }
    Ok(outcome)
}

/// Finishes a run whose training ended (its newest checkpoint is the finished one) but which
/// stopped before its summary: a signal during the final evaluation, or a disk that filled. Does
/// what was left: the final evaluation, its metrics line, the summary. The numbers are those of
/// the uninterrupted run: the same evaluated point, the same seeded recalibration.
pub fn from_checkpoint(cfg: &RunConfig, setup: Setup, wall: Instant) -> Result<Summary> {
    let ckpt = setup
        .resumed
        .ok_or_else(|| Error::Internal("finishing without a checkpoint".into()))?;
    let st = &ckpt.state;
    let snaps: Vec<Snapshot> = ckpt
        .workers
        .iter()
        .zip(&st.workers)
        .enumerate()
        .map(|(worker, (t, w))| Snapshot {
            worker,
            step: w.step,
            params: Flat::Host(t.params.clone()),
            layer_norms: None,
            recent_loss: None,
            losses: Vec::new(),
        })
        .collect();
    let refs: Vec<&Snapshot> = snaps.iter().collect();
    let evaluation = EvalSchedule {
        evaluator: setup.evaluator,
        every: setup.eval_every,
        workers: cfg.workers,
        batches_per_epoch: setup.batches_per_epoch,
        eval_workers: cfg.eval_workers,
        next: st.next_eval,
        clock: None,
    };
    let data = RoundData::from_state(&ckpt.algo_tensors);
    let eval = evaluation.evaluate(
        &data,
        &refs,
        None,
        st.total_steps,
        st.seconds,
        &FlatPlace::Host,
    )?;
    let mut event = Event::Eval(eval);
    let mut meter = TrainLossMeter::new(cfg.workers, cfg.algo.schedule == ScheduleKind::Sync);
    let steps: Vec<u64> = st.workers.iter().map(|w| w.step).collect();
    meter.restore(&st.metrics, &steps);
    meter.observe(&mut event);
    let Event::Eval(final_eval) = event else {
        unreachable!("built as an evaluation")
    };
    let mut metrics = MetricsWriter::resume(
        &cfg.out,
        cfg.workers,
        super::drain::LOG_EVERY,
        st.metrics.bytes,
        &st.metrics.windows,
    )?;
    if cfg.tensorboard {
        // The checkpoint holds every rank's workers: the run's global step divides by them all.
        let global = st.workers.len().max(1);
        let resumed_at = st.total_steps / global as u64 + 1;
        let tb = crate::tensorboard::Scalars::create(
            &cfg.out,
            global,
            cfg.workers,
            cfg.classes.clone(),
            Some(resumed_at),
        )?;
        metrics.attach_tensorboard(tb);
    }
    metrics.record(&Event::Eval(final_eval.clone()))?;
    metrics.finish()?;
    let train_loss = final_eval.train_loss;
    let outcome = Outcome {
        final_eval: Some(final_eval),
        rounds: st.rounds,
        total_steps: st.total_steps,
        worker_steps: steps,
        link: st.link,
    };
    let sizes = (setup.batches_per_epoch, setup.train.len());
    summarize(cfg, &outcome, train_loss, sizes, wall)
}

/// A rank other than 0 resuming a run whose training ended: it has nothing to do or write.
pub fn nothing_left(cfg: &RunConfig, setup: Setup, wall: Instant) -> Result<Summary> {
    let (rounds, total_steps, worker_steps) =
        setup.resumed.as_ref().map_or((0, 0, Vec::new()), |c| {
            let steps = c.state.workers.iter().map(|w| w.step).collect();
            (c.state.rounds, c.state.total_steps, steps)
        });
    let outcome = Outcome {
        final_eval: None,
        rounds,
        total_steps,
        worker_steps,
        link: None,
    };
    let sizes = (setup.batches_per_epoch, setup.train.len());
    // With no evaluation (not rank 0) nothing is written.
    summarize(cfg, &outcome, f64::NAN, sizes, wall)
}

/// Writes `summary.json` and `metrics.csv`, measures flatness when asked, and reports.
/// `sizes`: batches per epoch per worker, and images in the training set.
fn summarize(
    cfg: &RunConfig,
    outcome: &Outcome,
    train_loss: f64,
    sizes: (u64, usize),
    wall: Instant,
) -> Result<Summary> {
    let (batches_per_epoch, train_images) = sizes;
    let m = outcome.worker_steps.len();
    let train_seconds = wall.elapsed().as_secs_f64();
    let nan = crate::events::EvalEvent {
        total_steps: outcome.total_steps,
        epoch: f64::NAN,
        seconds: f64::NAN,
        test_loss: f64::NAN,
        test_accuracy: f64::NAN,
        train_loss: f64::NAN,
        center_accuracy: None,
        worker_accuracy: None,
        per_class: None,
        val_loss: None,
        val_accuracy: None,
    };
    // Ranks other than 0 score nothing and write nothing: rank 0 reports the run.
    let root = outcome.final_eval.is_some();
    let eval = outcome.final_eval.as_ref().unwrap_or(&nan);
    let images = outcome.total_steps * cfg.batch_size as u64;
    let summary = Summary {
        status: "done".into(),
        dataset: cfg.dataset.to_string(),
        model: cfg.model.to_string(),
        algo: cfg.algo.kind.to_string(),
        schedule: cfg.algo.schedule.to_string(),
        workers: m,
        seed: cfg.seed,
        epochs: outcome.total_steps as f64 / (m as u64 * batches_per_epoch) as f64,
        steps: outcome.worker_steps.iter().copied().max().unwrap_or(0),
        local_steps_total: outcome.total_steps,
        worker_steps: outcome.worker_steps.clone(),
        rounds: outcome.rounds,
        wall_seconds: wall.elapsed().as_secs_f64(),
        train_seconds,
        images_per_second: images as f64 / train_seconds.max(1e-9),
        train_loss,
        test_loss: eval.test_loss,
        test_accuracy: eval.test_accuracy,
        val_loss: eval.val_loss,
        val_accuracy: eval.val_accuracy,
        out: cfg.out.clone(),
        parameters: cfg.parameters,
        classes: cfg.classes.clone(),
        per_class_accuracy: eval.per_class.clone(),
        link_seconds: outcome.link.map(|l| l.0),
        bytes: outcome.link.map(|l| l.1),
    };
    if !root {
        return Ok(summary);
    }
    // metrics.csv first: summary.json marks the run finished, so it is written last.
    crate::report::write_metrics_csv(&cfg.out)
        .map_err(|e| Error::write(cfg.out.join("metrics.csv"), e))?;
    write_json_atomic(&cfg.out.join("summary.json"), &summary)?;
    if cfg.flatness {
        let mut opts = crate::flatness::FlatnessOptions::default();
        opts.samples = opts.samples.min(train_images);
        let r = crate::flatness::measure_run(&cfg.out, Some(&cfg.data_dir), &opts, true)?;
        let step = outcome.total_steps / m.max(1) as u64;
        crate::tensorboard::record_flatness(&cfg.out, step, &r)?;
        if !cfg.quiet {
            eprintln!(
                "flatness: lambda_max {:.4}, ritz_sum {:.4}, hutchinson_trace {:.4} -> {}",
                r.lambda_max,
                r.ritz_sum,
                r.hutchinson_trace,
                cfg.out.join("flatness.json").display()
            );
        }
    }
    report(cfg, &summary)?;
    Ok(summary)
}

/// A failed write, with what the run folder is left as: resumable from its newest checkpoint, or,
/// with none to resume from, cleared of the run's partial files so the same command runs again.
/// Other errors pass through.
pub fn after_write_failure(cfg: &RunConfig, e: Error) -> Error {
    if !matches!(e, Error::Write { .. }) {
        return e;
    }
    let dir = &cfg.out;
    if let Some(newest) = checkpoint::list(dir).ok().and_then(|mut l| l.pop()) {
        let name = newest
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        return e.then(format!(
            "the run stopped and can continue from its checkpoint {name}: free space, then run it with --resume {}",
            dir.display()
        ));
    }
    if cfg.resume {
        return e.then("the run stopped");
    }
    for name in ["metrics.jsonl", "metrics.csv", "config.json"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    for events in crate::tensorboard::event_files(dir) {
        let _ = std::fs::remove_file(events);
    }
    let ckpts = dir.join(checkpoint::CHECKPOINTS);
    if let Ok(entries) = std::fs::read_dir(&ckpts) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|x| x == "tmp") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(&ckpts);
    let _ = std::fs::remove_dir(dir);
    e.then("there was no checkpoint to continue from, so the run's partial files were removed: free space, then run the same command again")
}

/// The summary as one JSON line on stdout (`--json`) and a human line on stderr.
fn report(cfg: &RunConfig, summary: &Summary) -> Result<()> {
    if cfg.json {
        println!(
            "{}",
            serde_json::to_string(summary).map_err(|e| Error::Internal(e.to_string()))?
        );
    }
    if !cfg.quiet {
        // Over a modelled link: how much of the time it modelled.
        let link = summary
            .link_seconds
            .map_or_else(String::new, |l| format!(" (link {l:.2} s)"));
        eprintln!(
            "test accuracy {:.4}, test loss {:.4}, train loss {:.4} ({} x{} {} {} on {}, {:.2} epochs, {} rounds, {:.1} s{link}, {:.0} img/s) -> {}",
            summary.test_accuracy,
            summary.test_loss,
            summary.train_loss,
            summary.algo,
            summary.workers,
            summary.schedule,
            summary.model,
            summary.dataset,
            summary.epochs,
            summary.rounds,
            summary.wall_seconds,
            summary.images_per_second,
            cfg.out.display()
        );
    }
    Ok(())
}
