//! EASGD, LSGD's leader and the uniform average against worked examples.

use grawa_train::algo::{leader, LossWindow};
use grawa_train::average::{easgd_round, uniform_average};

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-6 * (1.0 + b.abs())
}

/// Two workers x1 = 1, x2 = 3, center c = 0, beta = 0.1, so beta/M = 0.05.
/// Round 1: x1 = 0.95 * 1 + 0.05 * 0 = 0.95; x2 = 0.95 * 3 = 2.85;
///          c = 0.9 * 0 + 0.1 * mean(1, 3) = 0.2 (mean before the pull; after it, 0.19).
/// Round 2: x1 = 0.95 * 0.95 + 0.05 * 0.2 = 0.9125; x2 = 0.95 * 2.85 + 0.01 = 2.7175;
///          c = 0.9 * 0.2 + 0.1 * mean(0.95, 2.85) = 0.18 + 0.19 = 0.37.
#[test]
fn easgd_two_workers_two_rounds() {
    let (mut x1, mut x2, mut c) = ([1.0f32], [3.0f32], [0.0f32]);
    easgd_round(&mut [&mut x1, &mut x2], &mut c, 0.1);
    assert!(
        close(x1[0], 0.95) && close(x2[0], 2.85) && close(c[0], 0.2),
        "{x1:?} {x2:?} {c:?}"
    );
    easgd_round(&mut [&mut x1, &mut x2], &mut c, 0.1);
    assert!(
        close(x1[0], 0.9125) && close(x2[0], 2.7175) && close(c[0], 0.37),
        "{x1:?} {x2:?} {c:?}"
    );
}

/// Mean of [1, 2, 6] and [3, 4, 0] elementwise: [2, 3, 3].
#[test]
fn uniform_average_is_the_mean() {
    let mut out = [0.0f32; 3];
    uniform_average(&[&[1.0, 2.0, 6.0], &[3.0, 4.0, 0.0]], &mut out);
    assert_eq!(out, [2.0, 3.0, 3.0]);
}

fn window(losses: &[f64]) -> LossWindow {
    let mut w = LossWindow::new();
    losses.iter().for_each(|l| w.push(*l));
    w
}

/// Worker 0: [1, 1, 1, 0.1], mean 0.775, but its last loss (0.1) is the lowest.
/// Worker 1: [0.5; 4], mean 0.5. The 4-batch mean picks worker 1.
#[test]
fn leader_uses_the_mean_of_the_last_four_losses() {
    let ws = [window(&[1.0, 1.0, 1.0, 0.1]), window(&[0.5; 4])];
    assert_eq!(ws[0].mean(), Some(0.775));
    assert_eq!(leader(&ws), 1);
}

/// Worker 0: [3, 0.2, 0.2, 0.2], mean 0.9 > worker 1's 0.5: worker 1 leads. A fifth loss 0.2
/// pushes out the 3: window [0.2; 4], mean 0.2, and worker 0 leads (with the 3 kept, the mean
/// of all five would be 0.76 and worker 1 would still lead).
#[test]
fn a_fifth_loss_pushes_out_the_first() {
    let mut ws = [window(&[3.0, 0.2, 0.2, 0.2]), window(&[0.5; 4])];
    assert_eq!(leader(&ws), 1);
    ws[0].push(0.2);
    ws[1].push(0.5);
    assert!((ws[0].mean().unwrap() - 0.2).abs() < 1e-12);
    assert_eq!(leader(&ws), 0);
}

/// Means 3, 1.5, 1.5: the tie goes to the lower index, 1. No losses or a NaN mean: behind any number.
#[test]
fn leader_ties_and_missing_losses() {
    assert_eq!(
        leader(&[window(&[3.0]), window(&[1.5]), window(&[2.0, 1.0])]),
        1
    );
    assert_eq!(
        leader(&[window(&[]), window(&[f64::NAN]), window(&[9.0])]),
        2
    );
    assert_eq!(leader(&[window(&[]), window(&[])]), 0);
    assert_eq!(LossWindow::new().mean(), None);
}
