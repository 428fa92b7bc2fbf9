//! The methods of the reproduction, their order and colours, runs grouped by method, and how each
//! measure is printed.

use std::collections::BTreeMap;

use plotters::style::RGBColor;

use crate::report::plot::PALETTE;
use crate::report::runs::RunData;
use crate::report::verdict::Stat;

/// The GRAWA variants the claims are about.
pub const GRAWA: [&str; 2] = ["mgrawa", "lgrawa"];

/// Every method in the order tables and legends list them.
pub const ORDER: [&str; 7] = [
    "mgrawa",
    "lgrawa",
    "ddp",
    "ddp-sam",
    "easgd",
    "lsgd",
    "local-sgd",
];

/// Position of `method` in [`ORDER`] (unknown methods after, by name).
fn rank(method: &str) -> usize {
    ORDER
        .iter()
        .position(|m| *m == method)
        .unwrap_or(ORDER.len())
}

/// One colour per method, the same in every chart.
pub fn color(method: &str) -> RGBColor {
    PALETTE[rank(method) % PALETTE.len()]
}

/// Runs grouped by method, in [`ORDER`].
pub fn by_method<'a>(
    runs: impl IntoIterator<Item = &'a RunData>,
) -> Vec<(String, Vec<&'a RunData>)> {
    let mut groups: BTreeMap<(usize, String), Vec<&RunData>> = BTreeMap::new();
    for r in runs {
        let m = r.method();
        groups.entry((rank(&m), m)).or_default().push(r);
    }
    groups
        .into_iter()
        .map(|((_, m), mut rs)| {
            rs.sort_by_key(|r| r.summary.seed);
            (m, rs)
        })
        .collect()
}

/// The stat of `f` over `runs`.
pub fn stat_of(runs: &[&RunData], f: impl Fn(&RunData) -> f64) -> Stat {
    Stat::of(&runs.iter().map(|r| f(r)).collect::<Vec<_>>())
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
            if v >= 1e9 {
                format!("{:.2} GB", v / 1e9)
            } else {
                format!("{:.1} MB", v / 1e6)
            }
        }
        Unit::Real => significant(v),
    }
}

/// `s` as `mean ± std` in `unit` (the mean alone for one run), or `not reached (k/n)`.
pub fn fmt_stat(s: &Stat, unit: Unit) -> String {
    if s.reached < s.n {
        return format!("not reached ({}/{})", s.reached, s.n);
    }
    if s.n < 2 {
        return fmt_value(s.mean, unit);
    }
    match unit {
        Unit::Bytes => {
            let (scale, name) = if s.mean >= 1e9 {
                (1e9, "GB")
            } else {
                (1e6, "MB")
            };
            format!("{:.1} ± {:.1} {name}", s.mean / scale, s.std / scale)
        }
        _ => format!("{} ± {}", fmt_value(s.mean, unit), fmt_value(s.std, unit)),
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
    methods: &[&str],
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
