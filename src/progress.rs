//! What the user sees while a run goes: indicatif bars on a terminal (a total line plus one line per
//! worker, or per rank when the run spans processes), plain periodic lines otherwise, nothing with
//! `--quiet`. Everything goes to stderr so stdout stays clean for `--json`.
//!
//! The total line shows the time elapsed and the time left, `[00:01:10<00:04:50]` as tqdm does:
//! the left time is the budget's (a step budget, epochs included, at the steps-per-second rate of
//! this session so far; a minutes budget, what remains of it; with both, whichever ends first).
//!
//! Across processes rank 0 shows the run: its own workers report every step, the other ranks'
//! workers arrive at each exchange as their step losses (`RemoteLosses`), one per step taken.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::average::Weights;
use crate::events::{EvalEvent, Event};

/// How often plain (non-terminal) progress lines are printed.
const PLAIN_INTERVAL: Duration = Duration::from_secs(10);

/// A rate meter over the whole run, in images per second.
struct Rate {
    images: u64,
    start: Instant,
}

impl Rate {
    fn per_second(&self) -> f64 {
        let s = self.start.elapsed().as_secs_f64();
        if s > 0.0 {
            self.images as f64 / s
        } else {
            0.0
        }
    }
}

/// A run's budget, as far as the time left goes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BudgetLeft {
    /// Local steps per worker (from `--steps` or `--epochs`).
    pub steps_per_worker: Option<u64>,
    /// Seconds of training (`--minutes`).
    pub seconds: Option<f64>,
}

impl BudgetLeft {
    /// Seconds left: `steps_done` of `workers * steps_per_worker` steps taken, `session_steps`
    /// of them in `session_secs` (this process's rate), `run_secs` into the run's clock. `None`
    /// when there is no budget to go by, or no step yet to measure the rate.
    pub fn seconds_left(
        &self,
        workers: usize,
        steps_done: u64,
        session_steps: u64,
        session_secs: f64,
        run_secs: f64,
    ) -> Option<f64> {
        let by_steps = self.steps_per_worker.and_then(|per| {
            let left = (per * workers as u64).saturating_sub(steps_done);
            (session_steps > 0 && session_secs > 0.0)
                .then(|| left as f64 * session_secs / session_steps as f64)
        });
        let by_time = self.seconds.map(|s| (s - run_secs).max(0.0));
        match (by_steps, by_time) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// `HH:MM:SS`, as indicatif's `elapsed_precise`; `--:--:--` when unknown.
pub fn clock(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) if s.is_finite() => {
            let s = s.round() as u64;
            format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
        }
        _ => "--:--:--".into(),
    }
}

/// Seconds left shared with the total bar's `{left}` key (`u64::MAX`: unknown).
type LeftCell = Arc<AtomicU64>;

enum View {
    Quiet,
    Plain {
        last: Instant,
    },
    Bars {
        total: ProgressBar,
        /// One bar per line of `lines`.
        bars: Vec<ProgressBar>,
        _multi: MultiProgress,
    },
}

/// The workers one line of the display adds up: one worker, or every worker of one rank.
type Line = std::ops::Range<usize>;

/// The progress display of one run.
pub struct ProgressView {
    view: View,
    rate: Rate,
    last_eval: Option<EvalEvent>,
    lines: Vec<Line>,
    /// Whether a line is a rank (the run spans processes) rather than a worker.
    by_rank: bool,
    /// Images in one step (a remote step counts as one of rank 0's).
    step_images: usize,
    /// Per worker of the run: local steps, last loss, weight in the last round.
    steps: Vec<u64>,
    losses: Vec<f32>,
    weights: Vec<Option<f32>>,
    budget: BudgetLeft,
    /// Steps taken before this session (a resumed run's), and the latest run clock seen.
    start_steps: u64,
    run_secs: f64,
    left: LeftCell,
}

/// Shortens large rates: 12345 -> "12.3k".
fn human(v: f64) -> String {
    if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

impl ProgressView {
    /// A view for `ranks` processes of `local` workers each; `budget.steps_per_worker` sizes the
    /// bars when the budget is in steps. One process shows a line per worker, several a line per
    /// rank.
    pub fn new(quiet: bool, ranks: usize, local: usize, budget: BudgetLeft) -> Self {
        let steps_per_worker = budget.steps_per_worker;
        let left: LeftCell = Arc::new(AtomicU64::new(u64::MAX));
        let workers = ranks * local;
        let lines: Vec<Line> = match ranks {
            1 => (0..workers).map(|w| w..w + 1).collect(),
            _ => (0..ranks).map(|r| r * local..(r + 1) * local).collect(),
        };
        let stderr_tty = std::io::stderr().is_terminal();
        let view = if quiet {
            View::Quiet
        } else if !stderr_tty {
            View::Plain {
                last: Instant::now(),
            }
        } else {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
            let style = ProgressStyle::with_template(
                "{prefix:>7} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            let mk = |prefix: String, scale: u64| {
                let bar = match steps_per_worker {
                    Some(n) => ProgressBar::new(n * scale),
                    None => ProgressBar::no_length(),
                };
                let bar = multi.add(bar);
                bar.set_style(style.clone());
                bar.set_prefix(prefix);
                bar
            };
            let total = mk("total".into(), workers as u64);
            total.set_style(total_style(&left));
            let bars = lines
                .iter()
                .enumerate()
                .map(|(i, l)| match ranks {
                    1 => mk(format!("w{i}"), 1),
                    _ => mk(format!("rank {i}"), l.len() as u64),
                })
                .collect();
            View::Bars {
                total,
                bars,
                _multi: multi,
            }
        };
        Self {
            view,
            rate: Rate {
                images: 0,
                start: Instant::now(),
            },
            last_eval: None,
            lines,
            by_rank: ranks > 1,
            step_images: 0,
            steps: vec![0; workers],
            losses: vec![f32::NAN; workers],
            weights: vec![None; workers],
            budget,
            start_steps: 0,
            run_secs: 0.0,
            left,
        }
    }

    /// Updates the display with one event.
    pub fn update(&mut self, event: &Event) {
        match event {
            Event::Step(s) => {
                self.rate.images += s.images as u64;
                self.step_images = s.images;
                self.steps[s.worker] = s.step;
                self.losses[s.worker] = s.loss;
                self.run_secs = self.run_secs.max(s.seconds);
                let msg = self.total_message(s.epoch, s.loss, s.lr);
                self.show(s.worker, Some(msg));
            }
            Event::RemoteLosses { worker, losses } => {
                let Some(&last) = losses.last() else { return };
                self.rate.images += (losses.len() * self.step_images) as u64;
                self.steps[*worker] += losses.len() as u64;
                self.losses[*worker] = last;
                self.show(*worker, None);
            }
            Event::Eval(e) => {
                if let View::Plain { .. } = self.view {
                    eprintln!(
                        "eval  epoch {:.2}: test accuracy {:.4}, test loss {:.4}, train loss {:.4}",
                        e.epoch, e.test_accuracy, e.test_loss, e.train_loss
                    );
                }
                self.last_eval = Some(e.clone());
            }
            Event::Round(r) => {
                if let Some(w) = &r.weights {
                    let n = self.weights.len();
                    let per_worker = if w.len() == n {
                        w.clone()
                    } else {
                        let layers = w.len() / n.max(1);
                        crate::events::display_weights(
                            &Weights::PerLayer {
                                layers,
                                w: w.clone(),
                            },
                            n,
                        )
                    };
                    for (slot, v) in self.weights.iter_mut().zip(per_worker) {
                        *slot = Some(v);
                    }
                }
            }
            Event::Pull(_) | Event::Checkpoint(_) | Event::Fatal => {}
        }
    }

    /// Steps already taken by every worker of the run (a resumed run's), so the remote ranks'
    /// lines, which only ever add, start where the run stands.
    pub fn restore_steps(&mut self, steps: &[u64]) {
        for (slot, &s) in self.steps.iter_mut().zip(steps) {
            *slot = s;
        }
        self.start_steps = self.steps.iter().sum();
    }

    /// Seconds left of the budget, from what has been seen so far.
    fn seconds_left(&self) -> Option<f64> {
        let done: u64 = self.steps.iter().sum();
        let session = done.saturating_sub(self.start_steps);
        let secs = self.rate.start.elapsed().as_secs_f64();
        let workers = self.steps.len();
        self.budget
            .seconds_left(workers, done, session, secs, self.run_secs)
    }

    fn total_message(&self, epoch: f64, loss: f32, lr: f64) -> String {
        let eval = self
            .last_eval
            .as_ref()
            .map(|e| format!(" | test acc {:.4}", e.test_accuracy))
            .unwrap_or_default();
        format!(
            "epoch {epoch:.2} loss {loss:.4} lr {lr:.3e} {} img/s{eval}",
            human(self.rate.per_second())
        )
    }

    /// "rank 0 80, rank 1 78": each rank's steps, for the plain view.
    fn rank_steps(&self) -> String {
        let per_rank = self.lines.iter().enumerate().map(|(r, l)| {
            let steps: u64 = self.steps[l.clone()].iter().sum();
            format!("rank {r} {steps}")
        });
        per_rank.collect::<Vec<_>>().join(", ")
    }

    /// Redraws the line of `worker` and the total (with `msg` as the total's message, if new).
    fn show(&mut self, worker: usize, msg: Option<String>) {
        let total_steps: u64 = self.steps.iter().sum();
        let left = self.seconds_left();
        let bits = left.map_or(u64::MAX, |s| s.to_bits());
        self.left.store(bits, Ordering::Relaxed);
        match &mut self.view {
            View::Quiet => {}
            View::Plain { last } => {
                if let Some(msg) = msg.filter(|_| last.elapsed() >= PLAIN_INTERVAL) {
                    *last = Instant::now();
                    let ranks = match self.by_rank {
                        true => format!(" ({})", self.rank_steps()),
                        false => String::new(),
                    };
                    let times = format!(
                        "[{}<{}]",
                        clock(Some(self.rate.start.elapsed().as_secs_f64())),
                        clock(left)
                    );
                    eprintln!("steps {total_steps}{ranks} {times} {msg}");
                }
            }
            View::Bars { total, bars, .. } => {
                if let Some(i) = self.lines.iter().position(|l| l.contains(&worker)) {
                    let line = self.lines[i].clone();
                    let n = line.len() as f32;
                    let loss = self.losses[line.clone()].iter().sum::<f32>() / n;
                    let weight: Option<f32> = self.weights[line.clone()].iter().copied().sum();
                    let weight = weight
                        .map(|w| format!(" weight {w:.3}"))
                        .unwrap_or_default();
                    bars[i].set_position(self.steps[line].iter().sum());
                    bars[i].set_message(format!("loss {loss:.4}{weight}"));
                }
                total.set_position(total_steps);
                if let Some(msg) = msg {
                    total.set_message(msg);
                }
            }
        }
    }

    /// Clears the bars.
    pub fn finish(&self) {
        if let View::Bars { total, bars, .. } = &self.view {
            for bar in bars {
                bar.finish_and_clear();
            }
            total.finish_and_clear();
        }
    }
}

/// The total line: elapsed and left, then the bar.
fn total_style(left: &LeftCell) -> ProgressStyle {
    let left = left.clone();
    let key = move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
        let bits = left.load(Ordering::Relaxed);
        let secs = (bits != u64::MAX).then(|| f64::from_bits(bits));
        let _ = w.write_str(&clock(secs));
    };
    ProgressStyle::with_template(
        "{prefix:>7} [{elapsed_precise}<{left}] {bar:30.cyan/blue} {pos}/{len} {msg}",
    )
    .map(|s| s.with_key("left", key))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::StepEvent;

    fn step(worker: usize, step: u64) -> Event {
        Event::Step(StepEvent {
            worker,
            step,
            epoch: 0.0,
            loss: 1.0,
            lr: 0.1,
            images: 32,
            seconds: 0.0,
            link_ms: None,
        })
    }

    /// Two ranks of two: a line per rank; rank 1's workers advance by their step losses, on top
    /// of a resumed run's steps, and count in the images.
    #[test]
    fn a_line_per_rank_counts_remote_steps() {
        let budget = BudgetLeft {
            steps_per_worker: Some(10),
            seconds: None,
        };
        let mut v = ProgressView::new(true, 2, 2, budget);
        assert_eq!(v.lines, vec![0..2, 2..4]);
        v.restore_steps(&[4, 4, 4, 4]);
        v.update(&step(0, 5));
        v.update(&step(1, 5));
        v.update(&Event::RemoteLosses {
            worker: 3,
            losses: vec![0.5, 0.25],
        });
        assert_eq!(v.steps, vec![5, 5, 4, 6]);
        assert_eq!(v.losses[3], 0.25);
        assert_eq!(v.rate.images, 32 * 4);
        assert_eq!(v.rank_steps(), "rank 0 10, rank 1 10");
    }

    #[test]
    fn one_process_has_a_line_per_worker() {
        let v = ProgressView::new(true, 1, 3, BudgetLeft::default());
        assert_eq!(v.lines, vec![0..1, 1..2, 2..3]);
    }

    /// 4 workers x 100 steps; 100 taken, 60 of them in this session's 30 s (2 steps/s): 300 left
    /// take 150 s. A 10-minute budget 500 s into the run has 100 s left, which ends first.
    #[test]
    fn time_left_is_the_budget_that_ends_first() {
        let steps = BudgetLeft {
            steps_per_worker: Some(100),
            seconds: None,
        };
        assert_eq!(steps.seconds_left(4, 100, 60, 30.0, 0.0), Some(150.0));
        assert_eq!(steps.seconds_left(4, 40, 0, 0.0, 0.0), None, "no rate yet");
        let both = BudgetLeft {
            seconds: Some(600.0),
            ..steps
        };
        assert_eq!(both.seconds_left(4, 100, 60, 30.0, 500.0), Some(100.0));
        let time = BudgetLeft {
            steps_per_worker: None,
            seconds: Some(600.0),
        };
        assert_eq!(time.seconds_left(4, 0, 0, 0.0, 650.0), Some(0.0));
        assert_eq!(BudgetLeft::default().seconds_left(4, 1, 1, 1.0, 1.0), None);
        assert_eq!(clock(Some(3723.4)), "01:02:03");
        assert_eq!(clock(None), "--:--:--");
    }
}
