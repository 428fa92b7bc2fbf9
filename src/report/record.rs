//! One run as the reproduction report uses it: a flat record of facts read from its folder
//! ([`RunRecord`]), which is also one row of the report's run table (`report::run_table`), so the
//! report can be recomputed from that table alone.
//!
//! Times, updates and link seconds to a target are those of the first evaluation scoring at least
//! the target (`report::reach`); empty when the run never reached it (the report then censors it
//! at `budget_seconds`). The targets are fractions ([`TARGETS`]) of the best method's mean final
//! accuracy among the runs of the same setting ([`family`]); [`targets_of`] works them out, the
//! same way from folders and from the table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::comm::parameter_count;
use super::curve::normalised_area;
use super::reach::{eval_points, first_reach, target_accuracy};
use super::runs::{method_name, RunData};

/// The targets: fractions of the best method's mean final accuracy in the setting.
pub const TARGETS: [f64; 3] = [0.97, 0.99, 0.995];

/// The target the claims are judged on (index into [`TARGETS`]): 99 %.
pub const MAIN_TARGET: usize = 1;

/// How a target is named in columns and tables: `97`, `99`, `99.5`.
pub fn target_name(i: usize) -> String {
    format!("{}", (TARGETS[i] * 1000.0).round() / 10.0)
}

/// One run, flat. Field names are the run table's column names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// `accuracy`, `crowding`, `communication`, `ablation`, `grid`.
    pub part: String,
    /// The folder the run sits in within its part (a setting, an ablation variant); empty for
    /// parts whose runs sit directly in them.
    pub group: String,
    /// The run folder's name.
    pub run: String,
    pub dataset: String,
    pub model: String,
    pub algo: String,
    pub schedule: String,
    pub workers: usize,
    pub tau: Option<u64>,
    pub norm_source: Option<String>,
    pub weight_power: Option<f64>,
    /// The link preset or its figures; empty without a modelled link.
    pub link: String,
    /// Worker speed factors joined with `;`; empty when all run at full speed.
    pub worker_speed: String,
    pub seed: u64,
    /// The base learning rate.
    pub lr: Option<f64>,
    pub batch_size: Option<usize>,
    /// The decay in words (`step x0.1 at 120s`).
    pub decay: String,
    /// The evaluation cadence (`128` steps, or `10s`).
    pub eval_every: String,
    /// The wall-clock budget (or, for a step budget, the training time the run took).
    pub budget_seconds: f64,
    /// The commit the binary was built from (`config.json` provenance), when recorded.
    pub commit: String,
    pub status: String,
    pub test_accuracy: f64,
    pub test_loss: f64,
    pub val_accuracy: Option<f64>,
    pub wall_seconds: f64,
    /// Local steps per worker.
    pub steps: u64,
    pub rounds: u64,
    pub parameters: Option<usize>,
    /// Bytes moved, as the run measured them.
    pub bytes: Option<f64>,
    /// Modelled link seconds, the whole run.
    pub link_seconds: Option<f64>,
    /// Area under test accuracy against time over the budget, divided by it (`report::curve`).
    pub auc: f64,
    pub seconds_to_97: Option<f64>,
    pub updates_to_97: Option<u64>,
    pub link_seconds_to_97: Option<f64>,
    pub seconds_to_99: Option<f64>,
    pub updates_to_99: Option<u64>,
    pub link_seconds_to_99: Option<f64>,
    #[serde(rename = "seconds_to_99.5")]
    pub seconds_to_99_5: Option<f64>,
    #[serde(rename = "updates_to_99.5")]
    pub updates_to_99_5: Option<u64>,
    #[serde(rename = "link_seconds_to_99.5")]
    pub link_seconds_to_99_5: Option<f64>,
    pub lambda_max: Option<f64>,
    pub ritz_sum: Option<f64>,
    pub hutchinson_trace: Option<f64>,
    /// How flatness was measured (`lanczos 100x3, hutchinson 30, 320 images`).
    pub flatness_protocol: String,
}

/// A run's first reach of one target: `None` fields when it never reached it.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct ToTarget {
    pub seconds: Option<f64>,
    pub updates: Option<u64>,
    pub link_seconds: Option<f64>,
}

impl RunRecord {
    /// `algo`, or `algo (schedule)` when the schedule is not `sync`.
    pub fn method(&self) -> String {
        method_name(&self.algo, &self.schedule)
    }

    /// The first reach of target `i` of [`TARGETS`].
    pub fn to_target(&self, i: usize) -> ToTarget {
        let (seconds, updates, link_seconds) = match i {
            0 => (
                self.seconds_to_97,
                self.updates_to_97,
                self.link_seconds_to_97,
            ),
            1 => (
                self.seconds_to_99,
                self.updates_to_99,
                self.link_seconds_to_99,
            ),
            _ => (
                self.seconds_to_99_5,
                self.updates_to_99_5,
                self.link_seconds_to_99_5,
            ),
        };
        ToTarget {
            seconds,
            updates,
            link_seconds,
        }
    }

    fn set_to_target(&mut self, i: usize, t: ToTarget) {
        let slots = match i {
            0 => (
                &mut self.seconds_to_97,
                &mut self.updates_to_97,
                &mut self.link_seconds_to_97,
            ),
            1 => (
                &mut self.seconds_to_99,
                &mut self.updates_to_99,
                &mut self.link_seconds_to_99,
            ),
            _ => (
                &mut self.seconds_to_99_5,
                &mut self.updates_to_99_5,
                &mut self.link_seconds_to_99_5,
            ),
        };
        (*slots.0, *slots.1, *slots.2) = (t.seconds, t.updates, t.link_seconds);
    }

    /// Seconds to target `i`, censored at the budget: `(value, censored)`.
    pub fn seconds_to_censored(&self, i: usize) -> (f64, bool) {
        match self.to_target(i).seconds {
            Some(s) => (s, false),
            None => (self.budget_seconds, true),
        }
    }
}

/// The runs that share a setting, and so its targets: the same part, group, data, model, worker
/// count, worker speeds and link.
pub fn family(r: &RunRecord) -> String {
    format!(
        "{}/{}/{}/{}/{}/{}/{}",
        r.part, r.group, r.dataset, r.model, r.workers, r.worker_speed, r.link
    )
}

/// Per [`family`], the targets: each fraction of [`TARGETS`] times the best method's mean final
/// accuracy there, rounded down to 0.1 point (`None` without a finite accuracy).
pub fn targets_of(records: &[RunRecord]) -> BTreeMap<String, [Option<f64>; 3]> {
    let mut by_method: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for r in records {
        by_method
            .entry(family(r))
            .or_default()
            .entry(r.method())
            .or_default()
            .push(r.test_accuracy);
    }
    by_method
        .into_iter()
        .map(|(fam, methods)| {
            let best = methods
                .values()
                .map(|xs| xs.iter().sum::<f64>() / xs.len() as f64)
                .filter(|m| m.is_finite())
                .fold(f64::NEG_INFINITY, f64::max);
            (fam, TARGETS.map(|f| target_accuracy(best, f)))
        })
        .collect()
}

/// The records of `runs` (each with its part and group), with the times to the targets of its
/// setting filled in. A run whose summary does not record its parameter count gets it by building
/// its model once per data set and model.
pub fn records_of(runs: &[(&str, &str, &RunData)]) -> Vec<RunRecord> {
    let mut params: BTreeMap<(String, String), Option<usize>> = BTreeMap::new();
    let mut records: Vec<RunRecord> = runs
        .iter()
        .map(|(part, group, run)| {
            let s = &run.summary;
            let p = s.parameters.or_else(|| {
                *params
                    .entry((s.dataset.clone(), s.model.clone()))
                    .or_insert_with(|| parameter_count(&s.dataset, &s.model).ok())
            });
            bare_record(part, group, run, p)
        })
        .collect();
    let targets = targets_of(&records);
    for (rec, (_, _, run)) in records.iter_mut().zip(runs) {
        let points = eval_points(run);
        for (i, target) in targets[&family(rec)].iter().enumerate() {
            let hit = target.and_then(|t| first_reach(&points, t));
            rec.set_to_target(
                i,
                ToTarget {
                    seconds: hit.map(|p| p.seconds),
                    updates: hit.map(|p| p.updates),
                    link_seconds: hit.filter(|_| !rec.link.is_empty()).map(|p| p.link_seconds),
                },
            );
        }
    }
    records
}

/// Everything of a record but the times to targets.
fn bare_record(part: &str, group: &str, run: &RunData, parameters: Option<usize>) -> RunRecord {
    let s = &run.summary;
    let c = &run.config;
    let algo = c.algo.as_ref();
    let fl = run.flatness.as_ref();
    let curve: Vec<(f64, f64)> = run
        .evals
        .iter()
        .map(|e| (e.seconds, e.test_accuracy))
        .collect();
    let budget_seconds = run.budget_seconds();
    RunRecord {
        part: part.to_string(),
        group: group.to_string(),
        run: run
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        dataset: s.dataset.clone(),
        model: s.model.clone(),
        algo: s.algo.clone(),
        schedule: s.schedule.clone(),
        workers: s.workers,
        tau: algo.and_then(|a| a.tau),
        norm_source: algo.and_then(|a| a.norm_source.clone()),
        weight_power: algo.and_then(|a| a.weight_power),
        link: c.link.as_ref().map(|l| l.words()).unwrap_or_default(),
        worker_speed: c.worker_speed_words(),
        seed: s.seed,
        lr: c.lr(),
        batch_size: c.batch_size,
        decay: c.decay_words(),
        eval_every: c.eval_every_words(),
        budget_seconds,
        commit: c
            .provenance
            .as_ref()
            .and_then(|p| p.commit.clone())
            .unwrap_or_default(),
        status: s.status.clone(),
        test_accuracy: s.test_accuracy,
        test_loss: s.test_loss,
        val_accuracy: s.val_accuracy,
        wall_seconds: s.wall_seconds,
        steps: s.steps,
        rounds: s.rounds,
        parameters,
        bytes: s.bytes,
        link_seconds: s.link_seconds,
        auc: normalised_area(&curve, budget_seconds),
        seconds_to_97: None,
        updates_to_97: None,
        link_seconds_to_97: None,
        seconds_to_99: None,
        updates_to_99: None,
        link_seconds_to_99: None,
        seconds_to_99_5: None,
        updates_to_99_5: None,
        link_seconds_to_99_5: None,
        lambda_max: fl.and_then(|f| f.lambda_max),
        ritz_sum: fl.and_then(|f| f.ritz_sum),
        hutchinson_trace: fl.and_then(|f| f.hutchinson_trace),
        flatness_protocol: fl.map(protocol).unwrap_or_default(),
    }
}

/// How a run's flatness was measured, in a few words.
fn protocol(f: &super::runs::Flatness) -> String {
    let show = |v: Option<usize>| v.map_or("?".to_string(), |v| v.to_string());
    format!(
        "Lanczos {} iterations x {} starts, Hutchinson {} probes, {} training images",
        show(f.iterations),
        show(f.starts),
        show(f.hutchinson),
        show(f.samples)
    )
}
