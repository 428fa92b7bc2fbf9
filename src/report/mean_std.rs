//! The mean and sample standard deviation of some numbers, as the reports show them.

/// Mean and sample standard deviation (divisor n - 1) of some numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanStd {
    pub mean: f64,
    /// `None` with fewer than two numbers.
    pub std: Option<f64>,
    pub n: usize,
}

impl MeanStd {
    /// The mean and sample standard deviation of `xs` (NaN mean when `xs` is empty).
    pub fn of(xs: &[f64]) -> Self {
        let n = xs.len();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let std = (n >= 2).then(|| {
            let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
            (ss / (n - 1) as f64).sqrt()
        });
        MeanStd { mean, std, n }
    }

    /// `"mean ± std"` with `decimals` decimals after scaling by `scale`; just the mean when there
    /// is no spread to show.
    pub(crate) fn format(&self, scale: f64, decimals: usize) -> String {
        match self.std {
            Some(s) => format!(
                "{:.*} ± {:.*}",
                decimals,
                self.mean * scale,
                decimals,
                s * scale
            ),
            None => format!("{:.*}", decimals, self.mean * scale),
        }
    }
}
