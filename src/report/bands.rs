//! One method's seeds as one line and a shaded band: every seed's curve is interpolated onto a
//! common grid of x values, and at each the mean and the sample standard deviation over seeds are
//! taken. The grid spans the x range every seed covers (from the latest first point to the
//! earliest last point), so the band never extrapolates a curve.

/// How the grid points are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grid {
    /// Evenly, with this many points.
    Linear(usize),
    /// Evenly in log x (positive x only), with this many points.
    Log(usize),
}

/// One grid point of a band.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BandPoint {
    pub x: f64,
    pub mean: f64,
    /// Sample standard deviation over the seeds (0 with one seed).
    pub std: f64,
}

/// The band of `curves` (one per seed, each a list of `(x, y)` in any order) on `grid`. Points
/// with a non-finite coordinate (and, on a log grid, x <= 0) are dropped; a curve left empty is
/// skipped. Empty when no curve is left or the curves' x ranges do not overlap.
pub fn seed_band(curves: &[Vec<(f64, f64)>], grid: Grid) -> Vec<BandPoint> {
    let log = matches!(grid, Grid::Log(_));
    let curves: Vec<Vec<(f64, f64)>> = curves
        .iter()
        .map(|c| {
            let mut c: Vec<(f64, f64)> = c
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite() && (!log || *x > 0.0))
                .collect();
            c.sort_by(|a, b| a.0.total_cmp(&b.0));
            c
        })
        .filter(|c| !c.is_empty())
        .collect();
    if curves.is_empty() {
        return Vec::new();
    }
    let lo = curves.iter().map(|c| c[0].0).fold(f64::MIN, f64::max);
    let hi = curves
        .iter()
        .map(|c| c[c.len() - 1].0)
        .fold(f64::MAX, f64::min);
    if lo > hi {
        return Vec::new();
    }
    let n = match grid {
        Grid::Linear(n) | Grid::Log(n) => n.max(2),
    };
    let xs: Vec<f64> = if lo == hi {
        vec![lo]
    } else {
        (0..n)
            .map(|i| {
                let f = i as f64 / (n - 1) as f64;
                if log {
                    (lo.ln() + f * (hi.ln() - lo.ln())).exp()
                } else {
                    lo + f * (hi - lo)
                }
            })
            .collect()
    };
    xs.into_iter()
        .map(|x| {
            let ys: Vec<f64> = curves.iter().map(|c| interpolate(c, x)).collect();
            let s = super::verdict::Stat::of(&ys);
            BandPoint {
                x,
                mean: s.mean,
                std: s.std,
            }
        })
        .collect()
}

/// `c` (sorted by x, not empty) at `x`, linearly between its neighbouring points; at a repeated x,
/// the last point there. Outside the curve's range, its nearest end.
fn interpolate(c: &[(f64, f64)], x: f64) -> f64 {
    let after = c.partition_point(|p| p.0 <= x);
    if after == 0 {
        return c[0].1;
    }
    let (x0, y0) = c[after - 1];
    if x0 == x || after == c.len() {
        return y0;
    }
    let (x1, y1) = c[after];
    y0 + (y1 - y0) * (x - x0) / (x1 - x0)
}
