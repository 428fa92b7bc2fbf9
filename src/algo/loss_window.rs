//! LSGD's choice of leader (Teng et al. 2019): the worker whose recent training loss is lowest,
//! judged on the mean of its last [`LOSS_WINDOW`] mini-batch losses rather than the last one, so
//! a single lucky batch does not crown a leader.

/// How many recent mini-batch losses a worker's leader score averages.
pub const LOSS_WINDOW: usize = 4;

/// A worker's last [`LOSS_WINDOW`] mini-batch losses (a ring buffer).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct LossWindow {
    losses: [f64; LOSS_WINDOW],
    len: usize,
    next: usize,
}

impl LossWindow {
    /// An empty window.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a mini-batch loss, pushing out the oldest once the window is full.
    pub fn push(&mut self, loss: f64) {
        self.losses[self.next] = loss;
        self.next = (self.next + 1) % LOSS_WINDOW;
        self.len = (self.len + 1).min(LOSS_WINDOW);
    }

    /// Mean of the losses held, or `None` before the first. Re-summed on every call (4 values)
    /// instead of kept as a running sum, which would drift as values are added and removed.
    pub fn mean(&self) -> Option<f64> {
        (self.len > 0).then(|| self.losses[..self.len].iter().sum::<f64>() / self.len as f64)
    }
}

/// Index of the leader: the lowest mean loss; ties go to the lowest index. Workers with no losses
/// yet or a NaN mean rank behind every worker with a number; if no worker has one, worker 0 leads.
///
/// Panics on an empty slice: there is no one to lead.
pub fn leader(windows: &[LossWindow]) -> usize {
    assert!(!windows.is_empty(), "leader of no workers");
    let score = |w: &LossWindow| w.mean().filter(|m| !m.is_nan()).unwrap_or(f64::INFINITY);
    let mut best = 0;
    for (i, w) in windows.iter().enumerate().skip(1) {
        // Strictly less: an equal score keeps the earlier index.
        if score(w) < score(&windows[best]) {
            best = i;
        }
    }
    best
}
