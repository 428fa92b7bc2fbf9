//! Welch's two-sample t test: the difference of two means over seeds, with its confidence
//! interval and two-sided p-value, without assuming the two methods' seed variances are equal.
//!
//! For samples a and b with means m_a, m_b, sample variances v_a, v_b (divisor n - 1) and sizes
//! n_a, n_b:
//!
//! - difference d = m_a - m_b, standard error se = sqrt(v_a / n_a + v_b / n_b);
//! - degrees of freedom (Welch-Satterthwaite)
//!   df = se^4 / ((v_a / n_a)^2 / (n_a - 1) + (v_b / n_b)^2 / (n_b - 1));
//! - t = d / se, p = 2 P(T_df > |t|), interval d ± t_{1 - (1 - level) / 2, df} se.
//!
//! Why Welch and not a bootstrap over seeds: with 5 seeds a percentile bootstrap resamples only
//! 5 values, its intervals are systematically too narrow (they ignore that the spread itself is
//! estimated from 5 values, which the t distribution's heavy tails account for), so it would call
//! chance differences significant. Welch's interval is exact for normal seed noise with any two
//! variances and close to it otherwise; it is what R's `t.test(var.equal = FALSE)` and SciPy's
//! `ttest_ind(equal_var = False)` compute, so a reader can check every figure.
//!
//! The t distribution's CDF and quantiles come from `statrs` (regularised incomplete beta).

use statrs::distribution::{ContinuousCDF, StudentsT};

/// The outcome of Welch's test of `a` against `b`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Welch {
    /// mean(a) - mean(b).
    pub diff: f64,
    /// Standard error of the difference.
    pub se: f64,
    /// Welch-Satterthwaite degrees of freedom (NaN when `se` is 0).
    pub df: f64,
    /// Two-sided p-value of "the means are equal".
    pub p: f64,
    /// The confidence interval of the difference at the level asked for.
    pub low: f64,
    pub high: f64,
}

/// Welch's test of `a` against `b` with a `level` (e.g. 0.95) confidence interval. `None` when
/// either sample has fewer than two values or a non-finite one: nothing can be said then.
///
/// Both samples without spread (every seed the same value): equal means give p = 1, different
/// means p = 0, and the interval is the difference itself (no uncertainty is left to show).
pub fn welch(a: &[f64], b: &[f64], level: f64) -> Option<Welch> {
    let (ma, va, na) = moments(a)?;
    let (mb, vb, nb) = moments(b)?;
    let diff = ma - mb;
    let (qa, qb) = (va / na, vb / nb);
    let se = (qa + qb).sqrt();
    if se == 0.0 {
        let p = if diff == 0.0 { 1.0 } else { 0.0 };
        return Some(Welch {
            diff,
            se,
            df: f64::NAN,
            p,
            low: diff,
            high: diff,
        });
    }
    let df = (qa + qb).powi(2) / (qa * qa / (na - 1.0) + qb * qb / (nb - 1.0));
    let t = diff / se;
    let p = (2.0 * t_sf(t.abs(), df)).min(1.0);
    let half = t_quantile(1.0 - (1.0 - level) / 2.0, df) * se;
    Some(Welch {
        diff,
        se,
        df,
        p,
        low: diff - half,
        high: diff + half,
    })
}

/// Mean, sample variance (n - 1) and size of `xs`; `None` with fewer than two values or a
/// non-finite one.
fn moments(xs: &[f64]) -> Option<(f64, f64, f64)> {
    if xs.len() < 2 || xs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    Some((mean, var, n))
}

fn standard_t(df: f64) -> StudentsT {
    // Only df > 0 reaches here (n >= 2 on both sides and se > 0), which StudentsT accepts.
    StudentsT::new(0.0, 1.0, df).expect("degrees of freedom are positive")
}

/// The `p` quantile of Student's t with `df` degrees of freedom (`df` > 0, 0 < p < 1).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    standard_t(df).inverse_cdf(p)
}

/// P(T > t) for Student's t with `df` degrees of freedom, computed directly (not as 1 - CDF) so
/// that small p-values keep their digits.
pub fn t_sf(t: f64, df: f64) -> f64 {
    standard_t(df).sf(t)
}

/// P(T <= t) for Student's t with `df` degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    standard_t(df).cdf(t)
}
