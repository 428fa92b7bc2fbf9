//! Uneven workers (`--worker-speed 1,1,1,0.5`): worker i runs at a fraction f_i of its real
//! speed by sleeping, after each step, its measured step time times (1/f_i - 1), so every step
//! takes 1/f_i times as long. A straggler or a crowded, shared device on one machine.

use std::time::{Duration, Instant};

/// The extra time after a step that took `measured`, for a worker at speed `f` in (0, 1].
pub fn extra(measured: Duration, f: f64) -> Duration {
    if !(f > 0.0 && f < 1.0) {
        return Duration::ZERO;
    }
    measured.mul_f64(1.0 / f - 1.0)
}

/// Runs `step` and then sleeps as a worker at speed `f` would have taken longer (a plain sleep:
/// the core is free for the others, as on a shared device). Returns what `step` returned.
pub fn paced<T>(f: f64, step: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = step();
    let wait = extra(started.elapsed(), f);
    if !wait.is_zero() {
        std::thread::sleep(wait);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_time_makes_each_step_one_over_f_as_long() {
        let ms = Duration::from_millis;
        assert_eq!(extra(ms(40), 1.0), Duration::ZERO);
        assert_eq!(extra(ms(40), 0.5), ms(40));
        assert_eq!(extra(ms(40), 0.25), ms(120));
        assert_eq!(extra(ms(30), 0.75), ms(10));
        // Out of range is the caller's to refuse; here it changes nothing.
        assert_eq!(extra(ms(40), 0.0), Duration::ZERO);
        assert_eq!(extra(ms(40), f64::NAN), Duration::ZERO);
    }

    #[test]
    fn paced_sleeps_after_the_step() {
        let t0 = Instant::now();
        let v = paced(0.5, || {
            std::thread::sleep(Duration::from_millis(10));
            7
        });
        assert_eq!(v, 7);
        assert!(t0.elapsed() >= Duration::from_millis(20));
    }
}
