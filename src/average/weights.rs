//! Averaging weights: one per worker (MGRAWA, uniform) or one per worker and layer (LGRAWA).

/// The weights of a weighted center. Each layer's weights are expected to sum to 1 (the GRAWA
/// functions produce that); the reductions apply whatever they are given.
#[derive(Clone, Debug, PartialEq)]
pub enum Weights {
    /// `w[i]` weighs worker i in every layer.
    PerWorker(Vec<f32>),
    /// Worker-major: `w[i * layers + l]` weighs worker i in layer l.
    PerLayer { layers: usize, w: Vec<f32> },
}

impl Weights {
    /// Equal weights `1/workers` (local SGD's average).
    pub fn uniform(workers: usize) -> Self {
        Weights::PerWorker(vec![1.0 / workers as f32; workers])
    }

    /// The weights of workers `rows` (positions in this set), in that order: a group's share of a
    /// round's weights when the group's workers are combined apart (one GPU's workers before an
    /// NCCL all-reduce across GPUs).
    pub fn select(&self, rows: &[usize]) -> Self {
        match self {
            Weights::PerWorker(w) => Weights::PerWorker(rows.iter().map(|&r| w[r]).collect()),
            Weights::PerLayer { layers, w } => Weights::PerLayer {
                layers: *layers,
                w: rows
                    .iter()
                    .flat_map(|&r| w[r * layers..(r + 1) * layers].iter().copied())
                    .collect(),
            },
        }
    }

    /// The weight of `worker` in `layer`.
    pub fn weight(&self, worker: usize, layer: usize) -> f32 {
        match self {
            Weights::PerWorker(w) => w[worker],
            Weights::PerLayer { layers, w } => w[worker * layers + layer],
        }
    }

    /// Panics unless the weights fit `workers` workers over `layers` layers; a mismatch is a
    /// caller bug that would otherwise read the wrong worker's weight.
    pub fn check(&self, workers: usize, layers: usize) {
        match self {
            Weights::PerWorker(w) => assert_eq!(
                w.len(),
                workers,
                "per-worker weights: {} weights for {workers} workers",
                w.len()
            ),
            Weights::PerLayer { layers: wl, w } => {
                assert_eq!(
                    *wl, layers,
                    "per-layer weights are for {wl} layers but the table has {layers}"
                );
                assert_eq!(
                    w.len(),
                    workers * layers,
                    "per-layer weights: {} weights for {workers} workers x {layers} layers",
                    w.len()
                );
            }
        }
    }

    /// Layer-major copy: `out[l][i]` = weight of worker i in layer l, gathered once per call so
    /// the hot loops read a short contiguous slice instead of a strided one.
    pub(crate) fn by_layer(&self, workers: usize, layers: usize) -> Vec<Vec<f32>> {
        (0..layers)
            .map(|l| (0..workers).map(|i| self.weight(i, l)).collect())
            .collect()
    }
}
