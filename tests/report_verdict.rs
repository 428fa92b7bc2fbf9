//! The verdict rule (src/report/verdict.rs, src/report/welch.rs, src/report/rank.rs) against
//! independent figures: Student's t quantiles from printed tables, Welch's test and Spearman's rho
//! from SciPy 1.17.1 (`scipy.stats.ttest_ind(a, b, equal_var=False)`, the same test as R's
//! `t.test(a, b, var.equal = FALSE)`; `scipy.stats.spearmanr`), Holm's adjustment by hand; and a
//! calibration of the whole rule by simulation.

use grawa_train::report::rank::{average_ranks, spearman, spearman_p};
use grawa_train::report::verdict::{
    holm, judge, verdict_of, Better, Comparison, Outcome, Stat, Verdict,
};
use grawa_train::report::welch::{t_cdf, t_quantile, t_sf, welch};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

#[test]
fn t_quantiles_match_the_tables() {
    // Printed tables (e.g. any statistics textbook's t table, two-sided 5 %): t_{0.975,4} = 2.776,
    // t_{0.975,8} = 2.306, t_{0.975,1} = 12.706. SciPy's t.ppf for the digits beyond the table.
    assert!(close(t_quantile(0.975, 4.0), 2.7764451051977934, 1e-9));
    assert!(close(t_quantile(0.975, 8.0), 2.306004135204166, 1e-9));
    assert!(close(t_quantile(0.975, 1.0), 12.706204736174694, 1e-9));
    assert!((t_quantile(0.975, 4.0) - 2.776).abs() < 5e-4);
    assert!((t_quantile(0.975, 8.0) - 2.306).abs() < 5e-4);
    // Fractional degrees of freedom, as Welch's test gives: SciPy t.ppf(0.975, 7.3).
    assert!(close(t_quantile(0.975, 7.3), 2.345066736547703, 1e-9));
    // The tail: SciPy t.sf(2.5, 6.2) = 0.022632954995797042; symmetric CDF.
    assert!(close(t_sf(2.5, 6.2), 0.022632954995797042, 1e-9));
    assert!(close(t_cdf(-2.5, 6.2), 0.022632954995797042, 1e-9));
    assert!(close(t_cdf(0.0, 3.0), 0.5, 1e-12));
}

#[test]
fn welch_matches_scipy_on_equal_sizes() {
    // SciPy 1.17.1: ttest_ind(a, b, equal_var=False) -> statistic 6.505396382549009, pvalue
    // 0.00032036499587260683, df 7.061464425191199, confidence_interval(0.95) = (0.4256187477498925,
    // 0.9103812522501202).
    let a = [91.58, 91.79, 91.71, 91.90, 91.62];
    let b = [90.82, 91.01, 91.18, 90.95, 91.30];
    let w = welch(&a, &b, 0.95).unwrap();
    assert!(close(w.diff / w.se, 6.505396382549009, 1e-9), "{w:?}");
    assert!(close(w.df, 7.061464425191199, 1e-9), "{w:?}");
    assert!(close(w.p, 0.00032036499587260683, 1e-7), "{w:?}");
    assert!(close(w.low, 0.4256187477498925, 1e-9), "{w:?}");
    assert!(close(w.high, 0.9103812522501202, 1e-9), "{w:?}");
}

#[test]
fn welch_matches_scipy_on_unequal_sizes_and_spreads() {
    // SciPy 1.17.1: statistic -5.226741112437387, pvalue 0.0003891893763514411, df
    // 9.975677881372498, interval (-4.7887525554435495, -1.9255331588421625).
    let a = [10.2, 11.5, 9.8, 12.1, 10.9];
    let b = [14.3, 13.1, 15.8, 12.9, 16.2, 14.0, 13.5];
    let w = welch(&a, &b, 0.95).unwrap();
    assert!(close(w.diff / w.se, -5.226741112437387, 1e-9), "{w:?}");
    assert!(close(w.df, 9.975677881372498, 1e-9), "{w:?}");
    assert!(close(w.p, 0.0003891893763514411, 1e-7), "{w:?}");
    assert!(close(w.low, -4.7887525554435495, 1e-9), "{w:?}");
    assert!(close(w.high, -1.9255331588421625, 1e-9), "{w:?}");
}

#[test]
fn welch_needs_two_values_a_side_and_handles_no_spread() {
    assert!(welch(&[1.0], &[1.0, 2.0], 0.95).is_none());
    assert!(welch(&[1.0, f64::NAN], &[1.0, 2.0], 0.95).is_none());
    // Every seed alike on both sides: the difference is certain.
    let same = welch(&[3.0, 3.0], &[3.0, 3.0, 3.0], 0.95).unwrap();
    assert_eq!((same.p, same.low, same.high), (1.0, 0.0, 0.0));
    let apart = welch(&[4.0, 4.0], &[3.0, 3.0], 0.95).unwrap();
    assert_eq!((apart.p, apart.diff), (0.0, 1.0));
}

#[test]
fn holm_by_hand() {
    // Sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04, raised to the
    // running maximum 0.06. Back in the given order: [0.03, 0.06, 0.06, 0.02].
    let adj = holm(&[0.01, 0.04, 0.03, 0.005]);
    let want = [0.03, 0.06, 0.06, 0.02];
    for (a, w) in adj.iter().zip(want) {
        assert!((a - w).abs() < 1e-12, "{adj:?}");
    }
    // Capped at 1; a NaN counts as 1.
    assert_eq!(holm(&[0.6, f64::NAN]), vec![1.0, 1.0]);
    assert!(holm(&[]).is_empty());
}

fn cmp(diff: f64, p: f64, better: Better) -> Comparison {
    Comparison {
        diff,
        low: f64::NAN,
        high: f64::NAN,
        p,
        p_holm: p,
        better,
    }
}

#[test]
fn outcomes_and_verdicts() {
    use Outcome::*;
    // Higher is better: a significant positive difference is for GRAWA.
    assert_eq!(cmp(0.5, 0.01, Better::Higher).outcome(), ForGrawa);
    assert_eq!(cmp(-0.5, 0.01, Better::Higher).outcome(), AgainstGrawa);
    assert_eq!(cmp(0.5, 0.05, Better::Higher).outcome(), NotResolved);
    // Lower is better (seconds): a negative difference is for GRAWA.
    assert_eq!(cmp(-3.0, 0.001, Better::Lower).outcome(), ForGrawa);
    assert_eq!(cmp(3.0, 0.001, Better::Lower).outcome(), AgainstGrawa);

    // Holm over the family decides: 0.03 alone is significant; with 0.001 and another 0.03 it is
    // not (sorted: 0.001 x 3 = 0.003, 0.03 x 2 = 0.06, 0.03 x 1 raised to 0.06), so the family is
    // not resolved.
    let mut one = vec![cmp(1.0, 0.03, Better::Higher)];
    assert_eq!(judge(&mut one), Verdict::Supported);
    let mut three = vec![
        cmp(1.0, 0.03, Better::Higher),
        cmp(1.0, 0.001, Better::Higher),
        cmp(1.0, 0.03, Better::Higher),
    ];
    assert_eq!(judge(&mut three), Verdict::NotResolved);
    assert!((three[0].p_holm - 0.06).abs() < 1e-12);
    assert!((three[1].p_holm - 0.003).abs() < 1e-12);
    // Step-down: 0.001 x 3, 0.002 x 2, 0.01 x 1 are all below 0.05.
    let mut all = vec![
        cmp(1.0, 0.01, Better::Higher),
        cmp(1.0, 0.001, Better::Higher),
        cmp(1.0, 0.002, Better::Higher),
    ];
    assert_eq!(judge(&mut all), Verdict::Supported);
    // One significant comparison against GRAWA contradicts, whatever the others say.
    let mut against = vec![
        cmp(1.0, 0.001, Better::Higher),
        cmp(-1.0, 0.001, Better::Higher),
    ];
    assert_eq!(judge(&mut against), Verdict::Contradicted);
    assert_eq!(verdict_of(&[]), Verdict::NotResolved);
    assert_eq!(Verdict::Supported.words(), "supported");
    assert_eq!(Verdict::Contradicted.words(), "contradicted");
    assert_eq!(Verdict::NotResolved.words(), "not resolved");
}

#[test]
fn a_comparison_from_values_is_welch() {
    let c = Comparison::of(
        &[91.58, 91.79, 91.71, 91.90, 91.62],
        &[90.82, 91.01, 91.18, 90.95, 91.30],
        Better::Higher,
    );
    assert!(close(c.p, 0.00032036499587260683, 1e-7));
    assert_eq!(c.outcome(), Outcome::ForGrawa);
    // One seed on a side: nothing to say.
    let one = Comparison::of(&[1.0], &[0.0, 0.1], Better::Higher);
    assert_eq!((one.p, one.outcome()), (1.0, Outcome::NotResolved));
    assert!(one.low.is_nan());
    // Stat notes censored runs.
    let s = Stat::of_censored(&[10.0, 12.0, 20.0], 1);
    // 10, 12, 20: mean 14; squared deviations 16 + 4 + 36 = 56; / 2 = 28.
    assert_eq!((s.mean, s.n, s.censored), (14.0, 3, 1));
    assert!(close(s.std, 28f64.sqrt(), 1e-12));
}

#[test]
fn spearman_matches_scipy() {
    // scipy.stats.spearmanr([1..6], [2,1,4,3,6,5]) -> 0.8285714285714287.
    let rho = spearman(&[1., 2., 3., 4., 5., 6.], &[2., 1., 4., 3., 6., 5.]);
    assert!(close(rho, 0.8285714285714287, 1e-12), "{rho}");
    // With ties (the paper's lambda_max against a ranking with a tie): 0.9856107606091623.
    let paper = [33.9, 28.5, 9.5, 10.8, 10.9, 13.3];
    let ours = [5.0, 5.0, 1.0, 2.0, 3.0, 4.0];
    assert!(close(spearman(&paper, &ours), 0.9856107606091623, 1e-12));
    assert_eq!(
        average_ranks(&[1.0, 5.0, 5.0, 9.0]),
        vec![1.0, 2.5, 2.5, 4.0]
    );
    // Exact permutation p by hand at n = 3: of the 6 orderings of [1, 2, 3], only the identity has
    // rho = 1, so p = 1/6; the reverse order is matched or beaten by all 6.
    let p = spearman_p(&[1., 2., 3.], &[10., 20., 30.]).unwrap();
    assert!((p - 1.0 / 6.0).abs() < 1e-12, "{p}");
    let p = spearman_p(&[1., 2., 3.], &[30., 20., 10.]).unwrap();
    assert!((p - 1.0).abs() < 1e-12, "{p}");
    assert!(spearman_p(&[1., 2.], &[1., 2.]).is_none());
}

/// Share of simulated claims that come out supported and contradicted, and of comparisons that
/// are for GRAWA: `grawa` GRAWA methods against `rivals` rivals, `seeds` seeds each, every seed a
/// standard normal draw, GRAWA's shifted by `effect` seed standard deviations (higher is better).
fn simulate(
    rng: &mut StdRng,
    trials: usize,
    grawa: usize,
    rivals: usize,
    seeds: usize,
    effect: f64,
) -> (f64, f64, f64) {
    let noise = Normal::new(0.0, 1.0).unwrap();
    let mut draw =
        |shift: f64| -> Vec<f64> { (0..seeds).map(|_| shift + noise.sample(rng)).collect() };
    let (mut supported, mut contradicted, mut for_grawa, mut comparisons) = (0, 0, 0, 0);
    for _ in 0..trials {
        let rival: Vec<Vec<f64>> = (0..rivals).map(|_| draw(0.0)).collect();
        let mut family = Vec::new();
        for _ in 0..grawa {
            let g = draw(effect);
            for r in &rival {
                family.push(Comparison::of(&g, r, Better::Higher));
            }
        }
        match judge(&mut family) {
            Verdict::Supported => supported += 1,
            Verdict::Contradicted => contradicted += 1,
            Verdict::NotResolved => {}
        }
        for_grawa += family
            .iter()
            .filter(|c| c.outcome() == Outcome::ForGrawa)
            .count();
        comparisons += family.len();
    }
    let t = trials as f64;
    (
        supported as f64 / t,
        contradicted as f64 / t,
        for_grawa as f64 / comparisons as f64,
    )
}

#[test]
fn calibration_identical_methods_are_rarely_contradicted() {
    // The report's claim shapes: one GRAWA method against 5 rivals, and a 4-contest claim (4
    // GRAWA methods, e.g. MGRAWA and LGRAWA under sync and async, against the same 5 rivals), at
    // the 5 seeds of the full reproduction. Fixed seed: the figures are the same on every run.
    let mut rng = StdRng::seed_from_u64(20_260_601);
    let trials = 4000;
    for (grawa, rivals) in [(1, 5), (4, 5)] {
        let (sup, con, _) = simulate(&mut rng, trials, grawa, rivals, 5, 0.0);
        eprintln!(
            "identical methods, {grawa} x {rivals}: supported {:.2} %, contradicted {:.2} %",
            100.0 * sup,
            100.0 * con
        );
        assert!(con <= 0.05, "{grawa} x {rivals}: contradicted {con}");
        assert!(sup <= 0.05, "{grawa} x {rivals}: supported {sup}");
    }
    // Power: GRAWA truly better by one and two seed standard deviations.
    for effect in [1.0, 2.0] {
        for (grawa, rivals) in [(1, 5), (4, 5)] {
            let (sup, con, each) = simulate(&mut rng, 1000, grawa, rivals, 5, effect);
            eprintln!(
                "effect {effect} sd, 5 seeds, {grawa} x {rivals}: supported {:.1} %, contradicted {:.2} %, each comparison for GRAWA {:.1} %",
                100.0 * sup, 100.0 * con, 100.0 * each
            );
            assert!(con <= 0.01, "a true advantage is contradicted {con}");
        }
    }
}
