//! What the user sees while a run goes: indicatif bars on a terminal (a total line plus one line per
//! worker), plain periodic lines otherwise, nothing with `--quiet`. Everything goes to stderr so
//! stdout stays clean for `--json`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::average::Weights;
use crate::events::{EvalEvent, Event, StepEvent};

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

enum View {
    Quiet,
    Plain {
        last: Instant,
    },
    Bars {
        total: ProgressBar,
        workers: Vec<ProgressBar>,
        _multi: MultiProgress,
    },
}

/// The progress display of one run.
pub struct ProgressView {
    view: View,
    rate: Rate,
    last_eval: Option<EvalEvent>,
    /// Per worker: local steps, last loss, weight in the last round.
    steps: Vec<u64>,
    losses: Vec<f32>,
    weights: Vec<Option<f32>>,
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
    /// A view for `workers` workers; `steps_per_worker` sizes the bars when the budget is in steps.
    pub fn new(quiet: bool, workers: usize, steps_per_worker: Option<u64>) -> Self {
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
            let workers = (0..workers).map(|i| mk(format!("w{i}"), 1)).collect();
            View::Bars {
                total,
                workers,
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
            steps: vec![0; workers],
            losses: vec![f32::NAN; workers],
            weights: vec![None; workers],
        }
    }

    /// Updates the display with one event.
    pub fn update(&mut self, event: &Event) {
        match event {
            Event::Step(s) => {
                self.rate.images += s.images as u64;
                self.step(s);
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
            Event::Pull(_) | Event::RemoteLosses { .. } | Event::Checkpoint(_) | Event::Fatal => {}
        }
    }

    fn total_message(&self, s: &StepEvent) -> String {
        let eval = self
            .last_eval
            .as_ref()
            .map(|e| format!(" | test acc {:.4}", e.test_accuracy))
            .unwrap_or_default();
        format!(
            "epoch {:.2} loss {:.4} lr {:.3e} {} img/s{eval}",
            s.epoch,
            s.loss,
            s.lr,
            human(self.rate.per_second())
        )
    }

    fn step(&mut self, s: &StepEvent) {
        self.steps[s.worker] = s.step;
        self.losses[s.worker] = s.loss;
        let msg = self.total_message(s);
        let total_steps: u64 = self.steps.iter().sum();
        match &mut self.view {
            View::Quiet => {}
            View::Plain { last } => {
                if last.elapsed() >= PLAIN_INTERVAL {
                    *last = Instant::now();
                    eprintln!("steps {total_steps} {msg}");
                }
            }
            View::Bars { total, workers, .. } => {
                if let Some(bar) = workers.get(s.worker) {
                    bar.set_position(s.step);
                    let weight = self.weights[s.worker]
                        .map(|w| format!(" weight {w:.3}"))
                        .unwrap_or_default();
                    bar.set_message(format!("loss {:.4}{weight}", s.loss));
                }
                total.set_position(total_steps);
                total.set_message(msg);
            }
        }
    }

    /// Clears the bars.
    pub fn finish(&self) {
        if let View::Bars { total, workers, .. } = &self.view {
            for bar in workers {
                bar.finish_and_clear();
            }
            total.finish_and_clear();
        }
    }
}
