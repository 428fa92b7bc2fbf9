//! The verdict rule of the reproduction report: whether a GRAWA variant beats its competitors on
//! one measure, judged from the mean and the sample standard deviation over seeds.
//!
//! - One pair ([`outcome`]): the margin is the larger of the two standard deviations. GRAWA *wins*
//!   when its mean is better than the competitor's by more than the margin, *loses* when the
//!   competitor's mean is better by more than the margin, and *ties* otherwise.
//! - One contest, a variant against a list of competitors ([`verdict`]): *holds* when it wins
//!   against every competitor, *does not hold* when it loses against at least one, and is *not
//!   distinguishable within seed spread* otherwise (or with no competitor to judge against).
//! - A claim, several contests ([`combine`]): holds when every contest holds, does not hold when
//!   any contest does not, not distinguishable otherwise.
//!
//! A method whose runs did not all reach a target has mean +infinity on a lower-is-better measure
//! ([`Stat::of_reached`]): it loses against any method that did, and ties with another that did not.

use super::compare::MeanStd;

/// Which direction of a measure is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Accuracy.
    Higher,
    /// Time, rounds or bytes to a target; sharpness.
    Lower,
}

/// One method's measure over its seeds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    /// The mean; +infinity when some run never reached the target (see [`Stat::of_reached`]).
    pub mean: f64,
    /// Sample standard deviation (divisor n - 1); 0 with one run, or when `mean` is infinite.
    pub std: f64,
    /// Runs behind the figure.
    pub n: usize,
    /// Runs that reached the target (equal to `n` for measures without a target).
    pub reached: usize,
}

impl Stat {
    /// The mean and sample standard deviation of `xs` (one value: std 0).
    pub fn of(xs: &[f64]) -> Self {
        let m = MeanStd::of(xs);
        Stat {
            mean: m.mean,
            std: m.std.unwrap_or(0.0),
            n: xs.len(),
            reached: xs.len(),
        }
    }

    /// As [`Stat::of`] over the runs that reached a target (`Some`); when any did not (`None`),
    /// the mean is +infinity (worse than any reached value of a lower-is-better measure).
    pub fn of_reached(xs: &[Option<f64>]) -> Self {
        let reached: Vec<f64> = xs.iter().flatten().copied().collect();
        if reached.len() == xs.len() {
            return Stat::of(&reached);
        }
        Stat {
            mean: f64::INFINITY,
            std: 0.0,
            n: xs.len(),
            reached: reached.len(),
        }
    }
}

/// How GRAWA fared against one competitor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Win,
    Loss,
    Tie,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Win => "win",
            Outcome::Loss => "loss",
            Outcome::Tie => "tie",
        }
    }
}

/// GRAWA's stat `g` against a competitor's `c`: a win or a loss when the means differ by more
/// than the larger standard deviation, else a tie. Infinite means (a target not reached) compare
/// as numbers; two infinite ones, or a NaN, tie.
pub fn outcome(g: &Stat, c: &Stat, better: Better) -> Outcome {
    let margin = g.std.max(c.std);
    let lead = match better {
        Better::Higher => g.mean - c.mean,
        Better::Lower => c.mean - g.mean,
    };
    if lead > margin {
        Outcome::Win
    } else if -lead > margin {
        Outcome::Loss
    } else {
        Outcome::Tie
    }
}

/// A verdict on a claim, or on one contest of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Holds,
    DoesNot,
    NotDistinguishable,
}

impl Verdict {
    /// The words the report prints.
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::DoesNot => "does not hold",
            Verdict::NotDistinguishable => "not distinguishable within seed spread",
        }
    }
}

/// One contest: holds when every outcome is a win, does not when any is a loss, else (ties, or no
/// outcomes at all) not distinguishable.
pub fn verdict(outcomes: &[Outcome]) -> Verdict {
    if outcomes.contains(&Outcome::Loss) {
        Verdict::DoesNot
    } else if !outcomes.is_empty() && outcomes.iter().all(|o| *o == Outcome::Win) {
        Verdict::Holds
    } else {
        Verdict::NotDistinguishable
    }
}

/// A claim from its contests: holds when every one holds, does not when any does not, else (or
/// with no contests) not distinguishable.
pub fn combine(verdicts: &[Verdict]) -> Verdict {
    if verdicts.contains(&Verdict::DoesNot) {
        Verdict::DoesNot
    } else if !verdicts.is_empty() && verdicts.iter().all(|v| *v == Verdict::Holds) {
        Verdict::Holds
    } else {
        Verdict::NotDistinguishable
    }
}
