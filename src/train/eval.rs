//! Evaluation of a point in parameter space: the uniform average of the workers (or EASGD's
//! center) is written into a model of its own, its BatchNorm statistics are recalibrated on
//! training data (the authors' protocol: the workers' running statistics belong to other points),
//! and it is scored on the test set.

use std::sync::Arc;

use candle_core::{Device, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;

#[cfg(feature = "cuda")]
use super::device_params::write_model;
use super::step::{batch_tensors, evaluate};
use crate::buffer::Flat;
use crate::data::{sample_batch, Dataset, ImageShape, Normalization};
use crate::model::{Model, ModelKind};

/// A test score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    pub loss: f64,
    pub accuracy: f64,
}

/// Scores parameter vectors.
pub struct Evaluator {
    /// BatchNorm momentum 1.0: after a forward pass in training mode the running statistics are
    /// exactly that batch's, so their plain mean over batches is PyTorch's cumulative average.
    model: Model,
    train: Arc<Dataset>,
    test: Arc<Dataset>,
    /// The validation set (`--val-split`), scored beside the test set.
    val: Option<Arc<Dataset>>,
    norm: Normalization,
    eval_batch_size: usize,
    recal_batches: usize,
    recal_batch_size: usize,
    seed: u64,
}

/// Settings of an evaluator.
pub struct EvalSetup {
    pub kind: ModelKind,
    pub shape: ImageShape,
    pub num_classes: usize,
    pub eval_batch_size: usize,
    pub recal_batches: usize,
    pub recal_batch_size: usize,
    pub seed: u64,
}

impl Evaluator {
    /// An evaluator for models of `setup.kind` on `device`.
    pub fn new(
        setup: &EvalSetup,
        train: Arc<Dataset>,
        test: Arc<Dataset>,
        norm: Normalization,
        device: &Device,
    ) -> crate::Result<Self> {
        let model = Model::with_bn_momentum(
            setup.kind,
            setup.shape,
            setup.num_classes,
            setup.seed,
            1.0,
            device,
        )?;
        Ok(Self {
            model,
            train,
            test,
            val: None,
            norm,
            eval_batch_size: setup.eval_batch_size,
            recal_batches: setup.recal_batches,
            recal_batch_size: setup.recal_batch_size,
            seed: setup.seed,
        })
    }

    /// The evaluator with a validation set to score beside the test set.
    pub fn with_validation(mut self, val: Option<Arc<Dataset>>) -> Self {
        self.val = val;
        self
    }

    /// Loss and accuracy on the validation set of the model as the last score left it (the
    /// evaluated point, BatchNorm recalibrated); `None` without a validation set.
    pub fn score_validation(&self) -> Result<Option<Score>> {
        let Some(val) = &self.val else {
            return Ok(None);
        };
        let (loss, accuracy) = evaluate(&self.model, val, &self.norm, self.eval_batch_size)?;
        Ok(Some(Score { loss, accuracy }))
    }

    /// The model set to `params` (flat, layer-table order) with BatchNorm recalibrated: the model
    /// a run evaluates (flatness is measured on it too).
    pub fn prepare(&self, params: &[f32]) -> Result<&Model> {
        self.model.params.write_flat(params)?;
        self.recalibrate()?;
        Ok(&self.model)
    }

    /// Test loss and accuracy of the model with parameters `params` (flat, layer-table order).
    pub fn score(&self, params: &[f32]) -> Result<Score> {
        let model = self.prepare(params)?;
        let (loss, accuracy) = evaluate(model, &self.test, &self.norm, self.eval_batch_size)?;
        Ok(Score { loss, accuracy })
    }

    /// [`Evaluator::score`] of parameters wherever they live: a point on a GPU is written into
    /// the evaluator's model on the GPU device to device (no host copy); elsewhere through the
    /// host.
    pub fn score_flat(&self, params: &Flat) -> crate::Result<Score> {
        match params {
            Flat::Host(p) => Ok(self.score(p)?),
            #[cfg(feature = "cuda")]
            Flat::Device(_) if self.model.device.is_cuda() => {
                write_model(params, &self.model.params)?;
                self.recalibrate()?;
                let (loss, accuracy) =
                    evaluate(&self.model, &self.test, &self.norm, self.eval_batch_size)?;
                Ok(Score { loss, accuracy })
            }
            #[cfg(feature = "cuda")]
            Flat::Device(_) => Ok(self.score(&params.to_vec()?)?),
        }
    }

    /// Sets BatchNorm running statistics to their mean over a fixed set of training batches (the
    /// same batches every time, so evaluations are comparable and runs reproducible).
    fn recalibrate(&self) -> Result<()> {
        let buffers = &self.model.buffers;
        if buffers.is_empty() {
            return Ok(());
        }
        let mut rng = StdRng::seed_from_u64(self.seed ^ 0x6263_616c); // "bcal"
        let mut sum = vec![0f64; buffers.len()];
        let mut stats = vec![0f32; buffers.len()];
        for _ in 0..self.recal_batches {
            let batch = sample_batch(&self.train, &self.norm, self.recal_batch_size, &mut rng);
            let (x, _) = batch_tensors(&batch, &self.model.device)?;
            self.model.forward_t(&x, true)?;
            buffers.read_flat(&mut stats)?;
            for (s, &v) in sum.iter_mut().zip(&stats) {
                *s += v as f64;
            }
        }
        let mean: Vec<f32> = sum
            .iter()
            .map(|&s| (s / self.recal_batches as f64) as f32)
            .collect();
        buffers.write_flat(&mean)
    }
}
