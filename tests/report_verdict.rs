//! The verdict rule of the reproduction report (src/report/verdict.rs) on numbers worked out by
//! hand: a win or a loss needs the means to differ by more than the larger std.

use grawa_train::report::verdict::{combine, outcome, verdict, Better, Outcome, Stat, Verdict};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn stat_is_the_mean_and_the_sample_std() {
    // 0.90, 0.92, 0.94: mean 0.92; squared deviations 0.0004 + 0 + 0.0004 = 0.0008; / (3 - 1) =
    // 0.0004; std 0.02.
    let s = Stat::of(&[0.90, 0.92, 0.94]);
    assert!(close(s.mean, 0.92), "{s:?}");
    assert!(close(s.std, 0.02), "{s:?}");
    assert_eq!((s.n, s.reached), (3, 3));
    // One run: no spread.
    let one = Stat::of(&[0.5]);
    assert_eq!((one.mean, one.std, one.n), (0.5, 0.0, 1));
}

#[test]
fn a_win_or_a_loss_needs_more_than_the_larger_std() {
    let g = Stat::of(&[0.90, 0.92, 0.94]); // 0.92 ± 0.02
                                           // 0.86 ± 0.01: GRAWA leads by 0.06 > max(0.02, 0.01).
    let behind = Stat::of(&[0.86, 0.87, 0.85]);
    assert_eq!(outcome(&g, &behind, Better::Higher), Outcome::Win);
    // 0.91 ± 0.01: a lead of 0.01 is within 0.02.
    let close_by = Stat::of(&[0.90, 0.91, 0.92]);
    assert_eq!(outcome(&g, &close_by, Better::Higher), Outcome::Tie);
    // 0.98 ± 0.01: the competitor leads by 0.06 > 0.02.
    let ahead = Stat::of(&[0.97, 0.98, 0.99]);
    assert_eq!(outcome(&g, &ahead, Better::Higher), Outcome::Loss);
    // The same numbers as times (lower is better) turn round.
    assert_eq!(outcome(&g, &behind, Better::Lower), Outcome::Loss);
    assert_eq!(outcome(&g, &ahead, Better::Lower), Outcome::Win);
}

#[test]
fn a_lead_equal_to_the_margin_is_a_tie() {
    // Exact binary fractions: lead 1.0 - 0.5 = 0.5, margin max(0.5, 0.25) = 0.5.
    let g = Stat {
        mean: 1.0,
        std: 0.5,
        n: 3,
        reached: 3,
    };
    let c = Stat {
        mean: 0.5,
        std: 0.25,
        n: 3,
        reached: 3,
    };
    assert_eq!(outcome(&g, &c, Better::Higher), Outcome::Tie);
    let g = Stat { mean: 1.25, ..g };
    assert_eq!(outcome(&g, &c, Better::Higher), Outcome::Win);
    // The larger std is the margin, whichever side has it: 0.5 + 0.5 = 1.0 needs a lead > 0.5.
    let c = Stat {
        mean: 0.75,
        std: 0.5,
        n: 3,
        reached: 3,
    };
    let g = Stat {
        mean: 1.25,
        std: 0.0,
        n: 3,
        reached: 3,
    };
    assert_eq!(outcome(&g, &c, Better::Higher), Outcome::Tie);
}

#[test]
fn seconds_to_a_target_and_runs_that_never_reach_it() {
    // 10, 12, 14 s: 12 ± 2; 20, 21, 22 s: 21 ± 1; GRAWA is faster by 9 > 2.
    let g = Stat::of_reached(&[Some(10.0), Some(12.0), Some(14.0)]);
    assert!(close(g.mean, 12.0) && close(g.std, 2.0), "{g:?}");
    let c = Stat::of_reached(&[Some(20.0), Some(21.0), Some(22.0)]);
    assert_eq!(outcome(&g, &c, Better::Lower), Outcome::Win);
    // One run of three never reached it: the method counts as not reaching it.
    let missed = Stat::of_reached(&[Some(10.0), None, Some(12.0)]);
    assert_eq!(missed.mean, f64::INFINITY);
    assert_eq!((missed.n, missed.reached), (3, 2));
    assert_eq!(outcome(&g, &missed, Better::Lower), Outcome::Win);
    assert_eq!(outcome(&missed, &g, Better::Lower), Outcome::Loss);
    // Neither reached it: nothing to tell them apart.
    let never = Stat::of_reached(&[None, None]);
    assert_eq!(outcome(&missed, &never, Better::Lower), Outcome::Tie);
}

#[test]
fn a_nan_figure_ties() {
    let g = Stat::of(&[f64::NAN, 1.0]);
    let c = Stat::of(&[0.0, 0.1]);
    assert_eq!(outcome(&g, &c, Better::Higher), Outcome::Tie);
}

#[test]
fn contest_and_claim_verdicts() {
    use Outcome::*;
    assert_eq!(verdict(&[Win, Win, Win]), Verdict::Holds);
    assert_eq!(verdict(&[Win, Tie, Win]), Verdict::NotDistinguishable);
    assert_eq!(verdict(&[Win, Tie, Loss]), Verdict::DoesNot);
    assert_eq!(verdict(&[]), Verdict::NotDistinguishable);

    use Verdict::*;
    assert_eq!(combine(&[Holds, Holds]), Holds);
    assert_eq!(combine(&[Holds, NotDistinguishable]), NotDistinguishable);
    assert_eq!(combine(&[NotDistinguishable, DoesNot, Holds]), DoesNot);
    assert_eq!(combine(&[]), NotDistinguishable);
    assert_eq!(Holds.words(), "holds");
    assert_eq!(DoesNot.words(), "does not hold");
    assert_eq!(
        NotDistinguishable.words(),
        "not distinguishable within seed spread"
    );
}
