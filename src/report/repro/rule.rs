//! The report's account of how it judges: the verdict rule and the measures, in words, with the
//! numbers the code uses.

use crate::report::record::{target_name, TARGETS};
use crate::report::verdict::{ALPHA, LEVEL};

/// The "How the verdicts are made" section.
pub fn text() -> String {
    let targets: Vec<String> = (0..TARGETS.len())
        .map(|i| format!("{} %", target_name(i)))
        .collect();
    format!(
        "## How the verdicts are made\n\n\
         Coded in `src/report/verdict.rs` (the same rule `grawa-train compare` prints).\n\n\
         - **One comparison**: a GRAWA method (MGRAWA or LGRAWA, under each schedule run) against \
         one rival on one measure, over seeds: the difference of the means (GRAWA minus rival) \
         with its {level:.0} % confidence interval and a two-sided p-value from Welch's t test \
         (Welch-Satterthwaite degrees of freedom; it assumes neither equal variances nor more than \
         a handful of seeds). Welch rather than a bootstrap over seeds: with 5 seeds a percentile \
         bootstrap's interval is too narrow (it ignores that the spread is itself estimated from \
         5 values), so it would call chance differences significant.\n\
         - **A claim's family**: the comparisons behind one verdict (each GRAWA method against each \
         rival on the claim's measure in one place). Their p-values are corrected together by \
         Holm's step-down method, which keeps the chance of any false finding in the family at or \
         below {alpha} whatever the comparisons share.\n\
         - **Outcome**: *for GRAWA* when the Holm-adjusted p is below {alpha} and the difference \
         goes GRAWA's way, *against GRAWA* when below {alpha} the other way, *not resolved* \
         otherwise (and with fewer than two seeds a side).\n\
         - **Verdict**: **supported** when every comparison of the family is for GRAWA, \
         **contradicted** when at least one is against, **not resolved** otherwise.\n\
         - The intervals shown are the plain {level:.0} % intervals of each difference (the effect \
         sizes one at a time); the decision uses the Holm-adjusted p, so an interval can exclude \
         zero while its comparison stays not resolved. Both p-values are printed.\n\
         - Calibration (`tests/report_verdict.rs`, by simulation): with identical methods and 5 \
         seeds a claim comes out contradicted in well under 5 % of trials, for one method against \
         5 rivals and for four methods against 5; the test prints the power at true effects of one \
         and two seed standard deviations.\n\n\
         **Measures.** Targets are {targets} of the best method's mean final test accuracy in the \
         setting, rounded down to 0.1 point; a run reaches a target at its first evaluation \
         scoring at least that. Claims 1 and 4 are judged at the {main} % target; the others are \
         shown to tell whether an order hangs on the threshold. A run that never reaches a target \
         is *censored*: it enters the statistics at its time budget (updates: at its total), \
         which understates its true time, so a difference against a method with censored runs is \
         a bound (in that method's favour), and the tables say how many runs of each method are \
         censored. The area under accuracy against time is the mean test accuracy over the \
         budget: trapezoids from (0, 0) through the evaluations, held at the last one until the \
         budget. Communication (rounds, bytes, modelled link seconds) is reported as measured; it \
         is contested only between methods whose count is not fixed by their configuration (the \
         same communication pattern and the same tau), never DDP's per-step all-reduce against a \
         tau-32 round count. Flatness order is compared with the paper's published order by \
         Spearman's rho (ties averaged) with its exact permutation p-value.\n\n",
        level = 100.0 * LEVEL,
        alpha = ALPHA,
        targets = targets.join(", "),
        main = target_name(crate::report::record::MAIN_TARGET),
    )
}
