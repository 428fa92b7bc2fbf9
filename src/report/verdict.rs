//! The verdict rule, shared by `compare` and `reproduction-report`: whether a GRAWA variant beats
//! its rivals on a measure, judged so that it can say yes and rarely says no by chance.
//!
//! - **One comparison** ([`Comparison::of`]): a GRAWA method's values over seeds against one
//!   rival's, by Welch's t test (`report::welch`): the difference of the means (GRAWA minus the
//!   rival) with its 95 % confidence interval and a two-sided p-value.
//! - **A claim's family**: every comparison behind one verdict (each GRAWA method against each
//!   rival, on the claim's measure, in one setting). Its p-values are corrected together by
//!   Holm's step-down method ([`holm`]), which keeps the chance of any false "significant" in the
//!   family at or below 5 % whatever the dependence between comparisons (they share samples).
//! - **An outcome** per comparison ([`Outcome`]): *for GRAWA* when the Holm-adjusted p is below
//!   0.05 and the difference goes GRAWA's way, *against GRAWA* when it is below 0.05 the other
//!   way, *not resolved* otherwise (also with fewer than two seeds on a side).
//! - **The verdict** ([`Verdict`]): *supported* when every comparison of the family is for GRAWA,
//!   *contradicted* when at least one is against, *not resolved* otherwise (or with no
//!   comparison at all).
//!
//! The intervals shown are the plain 95 % Welch intervals of each difference, not widened for
//! the family: they are the effect sizes' honest spread one at a time. The decision is made on the
//! Holm-adjusted p-value, so a plain interval can exclude zero while its comparison is still not
//! resolved; the tables print both. (Holm has no matching simultaneous intervals; Bonferroni's
//! would be wider than the decision needs.)

use super::mean_std::MeanStd;
use super::welch::welch;

/// The GRAWA algorithms the claims are about; every other method is a rival.
pub const GRAWA: [&str; 2] = ["mgrawa", "lgrawa"];

/// The algorithm of a method name (`mgrawa (async)` -> `mgrawa`).
pub fn algo_of(method: &str) -> &str {
    method.split(" (").next().unwrap_or(method)
}

/// Whether `method` (`mgrawa`, `lgrawa (async)`) is a GRAWA method.
pub fn is_grawa(method: &str) -> bool {
    GRAWA.contains(&algo_of(method))
}

/// The level of every test, before Holm's correction.
pub const ALPHA: f64 = 0.05;

/// The confidence level of the intervals shown.
pub const LEVEL: f64 = 0.95;

/// Which direction of a measure is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Accuracy, the area under accuracy against time.
    Higher,
    /// Time or updates to a target; sharpness.
    Lower,
}

/// One method's measure over its seeds, as tables print it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    pub mean: f64,
    /// Sample standard deviation (divisor n - 1); 0 with one run.
    pub std: f64,
    /// Runs behind the figure.
    pub n: usize,
    /// Runs whose value is censored at the budget (they never reached a target); 0 for measures
    /// without a target.
    pub censored: usize,
}

impl Stat {
    /// The mean and sample standard deviation of `xs` (one value: std 0).
    pub fn of(xs: &[f64]) -> Self {
        Stat::of_censored(xs, 0)
    }

    /// As [`Stat::of`], noting that `censored` of the values are a budget standing in for a
    /// target never reached.
    pub fn of_censored(xs: &[f64], censored: usize) -> Self {
        let m = MeanStd::of(xs);
        Stat {
            mean: m.mean,
            std: m.std.unwrap_or(0.0),
            n: xs.len(),
            censored,
        }
    }
}

/// How one comparison came out, after Holm's correction over its family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    ForGrawa,
    AgainstGrawa,
    NotResolved,
}

impl Outcome {
    pub fn words(self) -> &'static str {
        match self {
            Outcome::ForGrawa => "for GRAWA",
            Outcome::AgainstGrawa => "against GRAWA",
            Outcome::NotResolved => "not resolved",
        }
    }
}

/// One GRAWA method against one rival on one measure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comparison {
    /// mean(GRAWA) - mean(rival), in the measure's units.
    pub diff: f64,
    /// The plain 95 % Welch interval of `diff` (NaN when it cannot be computed).
    pub low: f64,
    pub high: f64,
    /// Welch's two-sided p-value (1 when it cannot be computed: fewer than two seeds a side).
    pub p: f64,
    /// `p` after Holm's correction over the family ([`judge`]); equal to `p` before.
    pub p_holm: f64,
    pub better: Better,
}

impl Comparison {
    /// GRAWA's values `grawa` against the rival's `rival` (seeds in any order).
    pub fn of(grawa: &[f64], rival: &[f64], better: Better) -> Self {
        match welch(grawa, rival, LEVEL) {
            Some(w) => Comparison {
                diff: w.diff,
                low: w.low,
                high: w.high,
                p: w.p,
                p_holm: w.p,
                better,
            },
            None => Comparison {
                diff: mean(grawa) - mean(rival),
                low: f64::NAN,
                high: f64::NAN,
                p: 1.0,
                p_holm: 1.0,
                better,
            },
        }
    }

    /// The outcome at [`ALPHA`] on the Holm-adjusted p-value.
    pub fn outcome(&self) -> Outcome {
        if self.p_holm.is_nan() || self.p_holm >= ALPHA {
            return Outcome::NotResolved;
        }
        let favours = match self.better {
            Better::Higher => self.diff > 0.0,
            Better::Lower => self.diff < 0.0,
        };
        if favours {
            Outcome::ForGrawa
        } else if self.diff != 0.0 {
            Outcome::AgainstGrawa
        } else {
            Outcome::NotResolved
        }
    }
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Holm's step-down adjustment of `ps`, in their order: with the p-values sorted ascending,
/// p_(k) becomes max over j <= k of min(1, (m - j + 1) p_(j)). A NaN counts as 1.
pub fn holm(ps: &[f64]) -> Vec<f64> {
    let m = ps.len();
    let clean: Vec<f64> = ps
        .iter()
        .map(|p| if p.is_nan() { 1.0 } else { *p })
        .collect();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| clean[a].total_cmp(&clean[b]));
    let mut adjusted = vec![1.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        let scaled = ((m - rank) as f64 * clean[i]).min(1.0);
        running = running.max(scaled);
        adjusted[i] = running;
    }
    adjusted
}

/// A verdict on a claim (one family of comparisons).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Supported,
    Contradicted,
    NotResolved,
}

impl Verdict {
    /// The words the report prints.
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Supported => "supported",
            Verdict::Contradicted => "contradicted",
            Verdict::NotResolved => "not resolved",
        }
    }
}

/// Applies Holm's correction over the family `comparisons` (setting each `p_holm`) and returns
/// its verdict: supported when every outcome is for GRAWA, contradicted when any is against, else
/// (or with no comparison) not resolved.
pub fn judge(comparisons: &mut [Comparison]) -> Verdict {
    let ps: Vec<f64> = comparisons.iter().map(|c| c.p).collect();
    for (c, p) in comparisons.iter_mut().zip(holm(&ps)) {
        c.p_holm = p;
    }
    verdict_of(comparisons)
}

/// The verdict of comparisons whose `p_holm` is already set.
pub fn verdict_of(comparisons: &[Comparison]) -> Verdict {
    let outcomes: Vec<Outcome> = comparisons.iter().map(Comparison::outcome).collect();
    if outcomes.contains(&Outcome::AgainstGrawa) {
        Verdict::Contradicted
    } else if !outcomes.is_empty() && outcomes.iter().all(|o| *o == Outcome::ForGrawa) {
        Verdict::Supported
    } else {
        Verdict::NotResolved
    }
}
