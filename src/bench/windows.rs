//! Throughput per measuring window from the workers' step end times. A worker's progress at time
//! t is the steps it has finished plus the elapsed fraction of the step under way, so a window
//! shorter than a step (four ResNet-20 workers on two cores) still gets a fair share of it.

/// Steps done by time `t` (seconds since the common start) by a worker whose steps ended at
/// `ends` (increasing, seconds since the same start; the first step began at 0).
pub fn progress(ends: &[f64], t: f64) -> f64 {
    if t <= 0.0 {
        return 0.0;
    }
    let done = ends.partition_point(|&e| e <= t);
    if done == ends.len() {
        return done as f64;
    }
    let begin = if done == 0 { 0.0 } else { ends[done - 1] };
    let span = ends[done] - begin;
    let part = if span > 0.0 { (t - begin) / span } else { 0.0 };
    done as f64 + part.clamp(0.0, 1.0)
}

/// Steps per second of all workers together in each window `[edges[i], edges[i + 1]]`.
pub fn steps_per_second(workers: &[Vec<f64>], edges: &[f64]) -> Vec<f64> {
    edges
        .windows(2)
        .map(|w| {
            let steps: f64 = workers
                .iter()
                .map(|ends| progress(ends, w[1]) - progress(ends, w[0]))
                .sum();
            steps / (w[1] - w[0]).max(1e-12)
        })
        .collect()
}

/// Window edges for fixed-length windows: `0, len, 2 len, ..., windows * len`.
pub fn timed_edges(windows: usize, len: f64) -> Vec<f64> {
    (0..=windows).map(|i| i as f64 * len).collect()
}

/// Window edges for windows of `steps` steps per worker: a window ends when the last worker has
/// finished its share of it. Needs every worker to have run `windows * steps` steps.
pub fn step_edges(workers: &[Vec<f64>], windows: usize, steps: usize) -> Vec<f64> {
    let mut edges = vec![0.0];
    for w in 1..=windows {
        let idx = w * steps - 1;
        let end = workers.iter().map(|ends| ends[idx]).fold(0.0f64, f64::max);
        edges.push(end);
    }
    edges
}

/// Median, minimum and maximum (NaN for an empty slice).
pub fn median_min_max(values: &[f64]) -> (f64, f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[0], v[n - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_interpolates_inside_a_step() {
        let ends = [1.0, 2.0, 4.0];
        assert_eq!(progress(&ends, 0.0), 0.0);
        assert_eq!(progress(&ends, 0.5), 0.5);
        assert_eq!(progress(&ends, 1.0), 1.0);
        assert_eq!(progress(&ends, 3.0), 2.5);
        assert_eq!(progress(&ends, 9.0), 3.0);
    }

    #[test]
    fn rates_add_over_workers() {
        // One worker at one step per second, one at two, windows of two seconds.
        let a: Vec<f64> = (1..=10).map(f64::from).collect();
        let b: Vec<f64> = (1..=20).map(|i| f64::from(i) / 2.0).collect();
        let rates = steps_per_second(&[a.clone(), b], &timed_edges(4, 2.0));
        for r in rates {
            assert!((r - 3.0).abs() < 1e-9, "{r}");
        }
        // Windows shorter than a step get their share of it.
        let rates = steps_per_second(&[a], &timed_edges(4, 0.25));
        for r in rates {
            assert!((r - 1.0).abs() < 1e-9, "{r}");
        }
    }

    #[test]
    fn step_windows_end_with_the_slowest_worker() {
        let fast = vec![1.0, 2.0, 3.0, 4.0];
        let slow = vec![2.0, 4.0, 6.0, 8.0];
        assert_eq!(step_edges(&[fast, slow], 2, 2), vec![0.0, 4.0, 8.0]);
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median_min_max(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(median_min_max(&[4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
        assert!(median_min_max(&[]).0.is_nan());
    }
}
