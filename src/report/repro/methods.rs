//! The methods of the reproduction, their order and colours, runs grouped by method, and how each
//! measure is printed.
//!
//! A method is an algorithm with its schedule (`mgrawa`, `mgrawa (async)`); the GRAWA methods
//! are those of MGRAWA and LGRAWA under any schedule, every other method is a rival.

use std::collections::BTreeMap;

use plotters::style::RGBColor;

use crate::report::plot::PALETTE;
use crate::report::record::RunRecord;
use crate::report::verdict::Stat;

pub use crate::report::verdict::{algo_of, is_grawa};

/// Every algorithm in the order tables and legends list them.
pub const ORDER: [&str; 7] = [
    "mgrawa",
    "lgrawa",
    "ddp",
    "ddp-sam",
    "easgd",
    "lsgd",
    "local-sgd",
];

/// Position of `method` in [`ORDER`] (unknown algorithms after, by name); within an algorithm,
/// `sync` first, then `permits`, then `async`.
fn rank(method: &str) -> (usize, usize) {
    let algo = algo_of(method);
    let a = ORDER.iter().position(|m| *m == algo).unwrap_or(ORDER.len());
    let s = ["", " (permits)", " (async)"]
        .iter()
        .position(|s| method.strip_prefix(algo) == Some(*s))
        .unwrap_or(3);
    (a, s)
}

/// One colour per method, the same in every chart.
pub fn color(method: &str) -> RGBColor {
    let (a, s) = rank(method);
    PALETTE[(a + ORDER.len() * s.min(1)) % PALETTE.len()]
}

/// Runs by method: each method's name and its runs.
pub type ByMethod<'a> = Vec<(String, Vec<&'a RunRecord>)>;

/// A figure per method.
pub type PerMethod = Vec<(String, Stat)>;

/// Records grouped by method, in [`ORDER`], each method's runs by seed.
pub fn by_method<'a>(runs: impl IntoIterator<Item = &'a RunRecord>) -> ByMethod<'a> {
    let mut groups: BTreeMap<((usize, usize), String), Vec<&RunRecord>> = BTreeMap::new();
    for r in runs {
        let m = r.method();
        groups.entry((rank(&m), m)).or_default().push(r);
    }
    groups
        .into_iter()
        .map(|((_, m), mut rs)| {
            rs.sort_by(|a, b| (a.seed, &a.run).cmp(&(b.seed, &b.run)));
            (m, rs)
        })
        .collect()
}

/// Method names sorted in [`ORDER`].
pub fn sort_methods(methods: &mut [String]) {
    methods.sort_by(|a, b| (rank(a), a.as_str()).cmp(&(rank(b), b.as_str())));
}

/// How a measure is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A fraction, printed in percent with 2 decimals.
    Percent,
    /// Seconds, 1 decimal.
    Seconds,
    /// A count, no decimals.
    Count,
    /// Bytes, in MB or GB.
    Bytes,
    /// A real number, 4 significant digits.
    Real,
}

/// `value` in `unit`, without spread.
pub fn fmt_value(v: f64, unit: Unit) -> String {
    if !v.is_finite() {
        return "-".to_string();
    }
    match unit {
        Unit::Percent => format!("{:.2}", 100.0 * v),
        Unit::Seconds => format!("{v:.1}"),
        Unit::Count => format!("{v:.0}"),
        Unit::Bytes => {
            if v.abs() >= 1e9 {
                format!("{:.2} GB", v / 1e9)
            } else {
                format!("{:.1} MB", v / 1e6)
            }
        }
        Unit::Real => significant(v),
    }
}

/// A signed difference in `unit` (`+1.23`, `-4.5`).
pub fn fmt_diff(v: f64, unit: Unit) -> String {
    let s = fmt_value(v, unit);
    if v.is_finite() && v >= 0.0 {
        format!("+{s}")
    } else {
        s
    }
}

/// `s` as `mean ± std` in `unit` (the mean alone for one run), with the censored runs counted
/// (`143.2 ± 20.1 (2/5 censored)`).
pub fn fmt_stat(s: &Stat, unit: Unit) -> String {
    let body = if s.n < 2 {
        fmt_value(s.mean, unit)
    } else {
        match unit {
            Unit::Bytes => {
                let (scale, name) = if s.mean.abs() >= 1e9 {
                    (1e9, "GB")
                } else {
                    (1e6, "MB")
                };
                format!("{:.1} ± {:.1} {name}", s.mean / scale, s.std / scale)
            }
            _ => format!("{} ± {}", fmt_value(s.mean, unit), fmt_value(s.std, unit)),
        }
    };
    if s.censored > 0 {
        format!("{body} ({}/{} censored)", s.censored, s.n)
    } else {
        body
    }
}

/// Four significant digits, without exponent for ordinary magnitudes.
fn significant(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{v:.digits$}")
}

/// One chart line per method of `methods`: its stat at every x (a worker count, a tau) where it
/// ran, in the order of `points`; methods that ran nowhere are left out.
pub fn method_lines<'a>(
    methods: &[String],
    points: impl Iterator<Item = (f64, &'a [(String, Stat)])> + Clone,
) -> Vec<(String, Vec<(f64, Stat)>)> {
    methods
        .iter()
        .map(|m| {
            let pts: Vec<(f64, Stat)> = points
                .clone()
                .filter_map(|(x, s)| Some((x, s.iter().find(|(n, _)| n == m)?.1)))
                .collect();
            (m.to_string(), pts)
        })
        .filter(|(_, pts)| !pts.is_empty())
        .collect()
}
