//! Evaluation of a point in parameter space: the uniform average of the workers (or EASGD's
//! center) is written into a model of its own, its BatchNorm statistics are recalibrated on
//! training data (docs/design.md section 2, Evaluation: the workers' running statistics belong
//! to other points), and it is scored on the test set.

use std::sync::Arc;

use candle_core::{Device, Result};

use crate::buffer::Flat;
use crate::data::{Dataset, ImageShape, Normalization};
use crate::model::evaluate::{evaluate, recalibrate_batchnorm, Recalibration};
use crate::model::{Model, ModelKind};

/// A test score.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    pub loss: f64,
    pub accuracy: f64,
    /// Each class's accuracy (`--per-class`; NaN for a class with no test image).
    pub per_class: Option<Vec<f64>>,
}

/// Scores parameter vectors.
pub struct Evaluator {
    /// BatchNorm momentum 1.0: after a forward pass in training mode the running statistics are
    /// exactly that batch's, so their plain mean over batches is PyTorch's cumulative average.
    model: Model,
    train: Arc<Dataset>,
    test: Arc<Dataset>,
    /// The validation set (`--val-split`, or a folder set's `val/`), scored beside the test set.
    val: Option<Arc<Dataset>>,
    norm: Normalization,
    eval_batch_size: usize,
    recal_batches: usize,
    recal_batch_size: usize,
    seed: u64,
    per_class: bool,
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
    /// Also report each class's accuracy.
    pub per_class: bool,
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
            per_class: setup.per_class,
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
        let (loss, accuracy, _) = evaluate(&self.model, val, &self.norm, self.eval_batch_size)?;
        Ok(Some(Score {
            loss,
            accuracy,
            per_class: None,
        }))
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
        self.test_score(model)
    }

    fn test_score(&self, model: &Model) -> Result<Score> {
        let (loss, accuracy, per_class) =
            evaluate(model, &self.test, &self.norm, self.eval_batch_size)?;
        Ok(Score {
            loss,
            accuracy,
            per_class: self.per_class.then_some(per_class),
        })
    }

    /// [`Evaluator::score`] of parameters wherever they live: a point on the evaluator's GPU is
    /// written into its model device to device (no host copy); elsewhere through the host.
    pub fn score_flat(&self, params: &Flat) -> crate::Result<Score> {
        params.write_to(&self.model.params)?;
        self.recalibrate()?;
        Ok(self.test_score(&self.model)?)
    }

    /// Sets BatchNorm running statistics to their mean over a fixed set of training batches (the
    /// same batches every time, so evaluations are comparable and runs reproducible).
    fn recalibrate(&self) -> Result<()> {
        crate::cuda::bind_thread(&self.model.device).map_err(candle_core::Error::wrap)?;
        let recal = Recalibration {
            batches: self.recal_batches,
            batch_size: self.recal_batch_size,
            seed: self.seed,
        };
        recalibrate_batchnorm(&self.model, &self.train, &self.norm, recal)
    }
}
