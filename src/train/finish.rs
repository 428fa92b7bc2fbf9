//! The finish phase of a run: join the threads, write `summary.json` and `metrics.csv`, measure
//! flatness when asked, and report.

use std::time::Instant;

use super::spawn::Running;
use crate::config::RunConfig;
use crate::error::panic_message;
use crate::metrics::{write_json_atomic, Summary};
use crate::{Error, Result};

/// Joins `run`'s threads and writes the run's summary; `train_loss` is the last evaluation's.
pub fn finish(cfg: &RunConfig, run: Running, train_loss: f64, wall: Instant) -> Result<Summary> {
    // The pulling thread first: after a failure a stuck worker may never return, and is not
    // waited for (the process ends with the error).
    let outcome = run.hub.join().map_err(|p| {
        Error::Internal(format!(
            "the pulling thread panicked: {}",
            panic_message(&*p)
        ))
    })??;
    for h in run.workers {
        let _ = h.join();
    }
    let m = cfg.workers;
    let train_seconds = wall.elapsed().as_secs_f64();
    let eval = &outcome.final_eval;
    let images = outcome.total_steps * cfg.batch_size as u64;
    let summary = Summary {
        status: "done".into(),
        dataset: cfg.dataset.to_string(),
        model: cfg.model.to_string(),
        algo: cfg.algo.kind.to_string(),
        schedule: cfg.algo.schedule.to_string(),
        workers: m,
        seed: cfg.seed,
        epochs: outcome.total_steps as f64 / (m as u64 * run.batches_per_epoch) as f64,
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
        out: cfg.out.clone(),
    };
    write_json_atomic(&cfg.out.join("summary.json"), &summary)?;
    crate::report::write_metrics_csv(&cfg.out)?;
    if cfg.flatness {
        let opts = crate::flatness::FlatnessOptions::default();
        let r = crate::flatness_cmd::measure_run(&cfg.out, Some(&cfg.data_dir), &opts, true)?;
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

/// The summary as one JSON line on stdout (`--json`) and a human line on stderr.
fn report(cfg: &RunConfig, summary: &Summary) -> Result<()> {
    if cfg.json {
        println!(
            "{}",
            serde_json::to_string(summary).map_err(|e| Error::Internal(e.to_string()))?
        );
    }
    if !cfg.quiet {
        eprintln!(
            "test accuracy {:.4}, test loss {:.4}, train loss {:.4} ({} x{} {} {} on {}, {:.2} epochs, {} rounds, {:.1} s, {:.0} img/s) -> {}",
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
