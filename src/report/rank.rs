//! Rank agreement between two orderings of the same methods: Spearman's rho with tied values
//! given the average of the ranks they span, and its exact one-sided permutation p-value (the
//! share of all orderings of the second list that agree at least as well), which is what a handful
//! of methods allows: no large-sample approximation is needed or trustworthy at n = 6.

/// Ranks 1..=n of `xs`, ties given the mean of the ranks they span ([1, 5, 5, 9] -> [1, 2.5,
/// 2.5, 4]). NaN values rank after every number.
pub fn average_ranks(xs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut ranks = vec![0.0; xs.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && xs[order[end]] == xs[order[start]] {
            end += 1;
        }
        // Positions start..end hold ranks start + 1 ..= end; their mean:
        let r = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = r;
        }
        start = end;
    }
    ranks
}

/// Pearson's correlation of `a` and `b` (NaN when either has no spread).
fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa * sbb).sqrt()
}

/// Spearman's rho of `a` and `b` (same length): Pearson's correlation of their average ranks.
/// NaN with fewer than two values or when one side is all ties.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "spearman needs paired values");
    if a.len() < 2 {
        return f64::NAN;
    }
    pearson(&average_ranks(a), &average_ranks(b))
}

/// The exact one-sided p-value of `rho = spearman(a, b)` being this large by chance: the share of
/// the n! orderings of `b`'s ranks whose rho with `a`'s ranks is at least `rho` (within 1e-12).
/// `None` for n < 3 or n > 9 (9! = 362880 orderings is the most worth enumerating here).
pub fn spearman_p(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len();
    if !(3..=9).contains(&n) {
        return None;
    }
    let ra = average_ranks(a);
    let rb = average_ranks(b);
    let observed = pearson(&ra, &rb);
    if observed.is_nan() {
        return None;
    }
    let mut perm = rb.clone();
    let (mut at_least, mut total) = (0u64, 0u64);
    heap_permutations(&mut perm, n, &mut |p| {
        total += 1;
        if pearson(&ra, p) >= observed - 1e-12 {
            at_least += 1;
        }
    });
    Some(at_least as f64 / total as f64)
}

/// Calls `f` on every ordering of `xs[..k]` (Heap's algorithm; `xs` ends in some ordering).
fn heap_permutations(xs: &mut [f64], k: usize, f: &mut dyn FnMut(&[f64])) {
    if k <= 1 {
        f(xs);
        return;
    }
    for i in 0..k - 1 {
        heap_permutations(xs, k - 1, f);
        let j = if k.is_multiple_of(2) { i } else { 0 };
        xs.swap(j, k - 1);
    }
    heap_permutations(xs, k - 1, f);
}
