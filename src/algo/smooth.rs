//! The two bias-corrected moving averages GRAWA's norms go through: [`NormSmoother`] across
//! rounds (step 3 of the round in docs/design.md section 2) and [`AccumulatedNorms`] across one
//! round's local steps (the `accumulated` norm source). Both are Adam-style EMAs: started at 0 and divided by
//! `1 - m^k`, so early values are not biased toward that 0.

/// GRAWA's default smoothing momentum, m = 0.9^8 (exact in decimal; docs/design.md section 2).
pub const DEFAULT_NORM_MOMENTUM: f64 = 0.430_467_21;

/// The `accumulated` norm source's EMA momentum over local steps.
pub const DEFAULT_ACCUMULATED_BETA: f64 = 0.85;

/// Smooths each worker's (or worker-layer's) gradient norm across rounds:
/// `v <- m v + (1-m) n`, `vhat = v / (1 - m^k)`, k = round index from 1.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct NormSmoother {
    /// Momentum m.
    pub m: f64,
    /// The uncorrected averages, one per tracked norm.
    pub v: Vec<f64>,
    /// Rounds seen so far (k of the last update).
    pub round: u64,
}

impl NormSmoother {
    /// Tracks `len` norms with momentum `m` (usually [`DEFAULT_NORM_MOMENTUM`]).
    pub fn new(len: usize, m: f64) -> Self {
        NormSmoother {
            m,
            v: vec![0.0; len],
            round: 0,
        }
    }

    /// Folds in this round's norms and returns the bias-corrected averages vhat.
    pub fn update(&mut self, norms: &[f64]) -> Vec<f64> {
        assert_eq!(
            norms.len(),
            self.v.len(),
            "norm smoother tracks {} norms, got {}",
            self.v.len(),
            norms.len()
        );
        self.round += 1;
        ema_step(&mut self.v, norms, self.m);
        corrected(&self.v, self.m, self.round)
    }
}

/// Bias-corrected EMA of one worker's per-layer gradient norms over the local steps of the
/// current round (no extra probe pass); [`AccumulatedNorms::reset`] at every round.
#[derive(Clone, Debug)]
pub struct AccumulatedNorms {
    beta: f64,
    ema: Vec<f64>,
    steps: u64,
}

impl AccumulatedNorms {
    /// Tracks `layers` norms with momentum `beta` (usually [`DEFAULT_ACCUMULATED_BETA`]).
    pub fn new(layers: usize, beta: f64) -> Self {
        AccumulatedNorms {
            beta,
            ema: vec![0.0; layers],
            steps: 0,
        }
    }

    /// Folds in one local step's per-layer gradient norms.
    pub fn push(&mut self, layer_norms: &[f64]) {
        assert_eq!(
            layer_norms.len(),
            self.ema.len(),
            "accumulated norms track {} layers, got {}",
            self.ema.len(),
            layer_norms.len()
        );
        self.steps += 1;
        ema_step(&mut self.ema, layer_norms, self.beta);
    }

    /// The bias-corrected average so far. Before any push: all zeros (no information), which the
    /// weighting treats like any zero norm (see `inverse_weights`), rather than 0/0 = NaN.
    pub fn value(&self) -> Vec<f64> {
        if self.steps == 0 {
            return vec![0.0; self.ema.len()];
        }
        corrected(&self.ema, self.beta, self.steps)
    }

    /// Local steps folded in since the last reset.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Forgets everything: the next round starts a fresh average.
    pub fn reset(&mut self) {
        self.ema.iter_mut().for_each(|e| *e = 0.0);
        self.steps = 0;
    }
}

fn ema_step(v: &mut [f64], x: &[f64], m: f64) {
    for (v, x) in v.iter_mut().zip(x) {
        *v = m * *v + (1.0 - m) * x;
    }
}

/// `v / (1 - m^k)`; `k` is at least 1 here, so the divisor is positive for m in [0, 1).
fn corrected(v: &[f64], m: f64, k: u64) -> Vec<f64> {
    let denom = 1.0 - m.powi(i32::try_from(k).unwrap_or(i32::MAX));
    v.iter().map(|v| v / denom).collect()
}
