//! Hessian-vector products of a model's training loss, `H v ~ (g(x + eps v) - g(x - eps v)) /
//! (2 eps)`, on an f64 copy of the model, with a kink check: why so, and the measurements behind
//! the step and the tolerances, in docs/flatness.md.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{ModuleT, VarMap};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::lanczos::norm_of;
use crate::data::seed::derive_seed;
use crate::data::{sample_batch, Batch, Dataset, ImageShape, Normalization};
use crate::model::evaluate::batch_tensors;
use crate::model::init::SeededVarMap;
use crate::model::layers::BN_MOMENTUM;
use crate::model::{Model, ModelKind, ParamSet};

/// The step of the finite differences, relative to `max(1, ||x||)` (docs/flatness.md, "The step").
pub const REL_STEP: f64 = 1e-10;

/// One-sided differences that disagree by more than this fraction of their size mean a kink was
/// crossed. Smooth: they differ by about `eps` relative (1e-10) plus rounding (1e-6); a crossed
/// kink: by orders of magnitude more than the difference itself.
pub const KINK_TOLERANCE: f64 = 1e-2;

/// Differences of gradients below this fraction of the gradient's norm are rounding noise (f64
/// gradients are accurate to about 1e-15 of their norm), never a kink's jump.
const NOISE_FLOOR: f64 = 1e-12;

/// How many times a step that crossed a kink is shortened (by 16 each) before falling back to a
/// one-sided difference. The last step is then `REL_STEP / 256` relative, still well above f64
/// rounding.
const SHORTENINGS: usize = 2;

/// Images per forward/backward pass over the fixed set. The loss does not depend on it (BatchNorm
/// is in eval mode, so each image's loss is its own); it only bounds memory (ResNet-20 on 320
/// CIFAR images at once would hold gigabytes of f64 activations on the CPU).
pub const HVP_BATCH: usize = 64;

/// Seed tag of the fixed image subset.
const TAG_SUBSET: u64 = 0x0066_6978_6564; // "fixed"

/// How a product was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Difference {
    /// Central difference, the one-sided differences agreeing (smooth along the step).
    Central,
    /// A kink was crossed; central difference with a step 16 or 256 times shorter, which
    /// crossed none.
    Shortened,
    /// Kinks on every try: the smaller one-sided difference of the shortest step (the side
    /// without the jump, unless both sides had one).
    OneSided,
}

/// A Hessian-vector product and how it was obtained.
#[derive(Clone, Debug, PartialEq)]
pub struct Product {
    /// `H v`.
    pub hv: Vec<f64>,
    /// Which difference gave it.
    pub difference: Difference,
}

/// The step `eps` for direction norm `v_norm` at a point of norm `x_norm`: `rel * max(1, x_norm) /
/// v_norm`, so the parameters move by `rel * max(1, x_norm)` (docs/flatness.md says why).
pub fn step_size(x_norm: f64, v_norm: f64, rel: f64) -> f64 {
    rel * x_norm.max(1.0) / v_norm
}

/// `H v` at `x0` by finite differences of `grad` (which returns the gradient at a point), given the
/// gradient `g0` at `x0`, with the step of [`step_size`] for relative step `rel` and the kink
/// handling of docs/flatness.md. A zero `v` gives a zero product without calling `grad`.
///
/// # Panics
/// If `x0`, `g0` and `v` differ in length, or `grad` returns a vector of another length.
pub fn finite_difference<E>(
    x0: &[f64],
    g0: &[f64],
    v: &[f64],
    rel: f64,
    mut grad: impl FnMut(&[f64]) -> std::result::Result<Vec<f64>, E>,
) -> std::result::Result<Product, E> {
    assert!(
        x0.len() == v.len() && g0.len() == v.len(),
        "finite_difference: point, gradient and direction differ in length"
    );
    let v_norm = norm_of(v);
    if v_norm == 0.0 {
        return Ok(Product {
            hv: vec![0.0; v.len()],
            difference: Difference::Central,
        });
    }
    let eps = step_size(norm_of(x0), v_norm, rel);
    let mut sides = |eps: f64| -> std::result::Result<(Vec<f64>, Vec<f64>), E> {
        let shifted = |sign: f64| -> Vec<f64> {
            x0.iter()
                .zip(v)
                .map(|(&x, &d)| x + sign * eps * d)
                .collect()
        };
        let plus = grad(&shifted(1.0))?;
        let minus = grad(&shifted(-1.0))?;
        assert!(
            plus.len() == v.len() && minus.len() == v.len(),
            "gradient of the wrong length"
        );
        let d_plus: Vec<f64> = plus.iter().zip(g0).map(|(p, g)| p - g).collect();
        let d_minus: Vec<f64> = g0.iter().zip(&minus).map(|(g, m)| g - m).collect();
        Ok((d_plus, d_minus))
    };
    let central = |d_plus: &[f64], d_minus: &[f64], eps: f64| -> Vec<f64> {
        d_plus
            .iter()
            .zip(d_minus)
            .map(|(p, m)| (p + m) / (2.0 * eps))
            .collect()
    };
    let floor = NOISE_FLOOR * norm_of(g0);
    let agree = |p: &[f64], m: &[f64]| agree(p, m, floor);
    let (mut p, mut m) = sides(eps)?;
    if agree(&p, &m) {
        return Ok(Product {
            hv: central(&p, &m, eps),
            difference: Difference::Central,
        });
    }
    // A kink was crossed: shorten the step, which makes a crossing 16 times less likely each time.
    let mut eps = eps;
    for _ in 0..SHORTENINGS {
        eps /= 16.0;
        (p, m) = sides(eps)?;
        if agree(&p, &m) {
            return Ok(Product {
                hv: central(&p, &m, eps),
                difference: Difference::Shortened,
            });
        }
    }
    let side = if norm_of(&p) <= norm_of(&m) { p } else { m };
    Ok(Product {
        hv: side.iter().map(|d| d / eps).collect(),
        difference: Difference::OneSided,
    })
}

/// Whether two one-sided gradient differences agree (no kink between them): they differ by at
/// most [`KINK_TOLERANCE`] of the larger, plus `floor`.
fn agree(d_plus: &[f64], d_minus: &[f64], floor: f64) -> bool {
    let diff: f64 = d_plus
        .iter()
        .zip(d_minus)
        .map(|(p, m)| (p - m) * (p - m))
        .sum::<f64>()
        .sqrt();
    diff <= KINK_TOLERANCE * norm_of(d_plus).max(norm_of(d_minus)) + floor
}

/// The fixed image set of the flatness measurement: `samples` training images (all of them, when
/// there are fewer) drawn without replacement from a seed derived from `seed`, normalised, not
/// augmented. The same arguments always give the same batch.
pub fn fixed_subset(train: &Dataset, norm: &Normalization, samples: usize, seed: u64) -> Batch {
    let mut rng = StdRng::seed_from_u64(derive_seed(&[seed, TAG_SUBSET]));
    sample_batch(train, norm, samples, &mut rng)
}

/// The Hessian of a model's mean cross-entropy on a fixed image set, at the model's parameters when
/// the operator is built, as the operator `v -> H v` (docs/flatness.md for how).
///
/// It works on an f64 twin of the model: the model itself is only read, once, at construction.
pub struct ModelHessian {
    loss: FixedLoss,
    center: Vec<f64>,
    /// Gradient at the center.
    g0: Vec<f64>,
    rel_step: f64,
    products: usize,
    kinks: usize,
}

/// The mean loss over the fixed set, as a function of the twin's parameters.
struct FixedLoss {
    twin: Twin,
    /// (images as f64, labels, count) per pass.
    batches: Vec<(Tensor, Tensor, usize)>,
    samples: usize,
}

/// An f64 copy of a network: its variables and its forward pass.
struct Twin {
    params: ParamSet,
    net: Box<dyn ModuleT + Send + Sync>,
    device: Device,
}

impl ModelHessian {
    /// The operator for `model` on the images of `batch`, evaluated `batch_size` images at a time,
    /// with the default step [`REL_STEP`].
    pub fn new(model: &Model, batch: &Batch, batch_size: usize) -> Result<Self> {
        if batch.is_empty() {
            candle_core::bail!("flatness: the fixed image set is empty");
        }
        if batch_size == 0 {
            candle_core::bail!("flatness: batch size 0");
        }
        let d = batch.shape.len();
        let device = model.device.clone();
        let mut batches = Vec::new();
        for (imgs, labels) in batch
            .images
            .chunks(batch_size * d)
            .zip(batch.labels.chunks(batch_size))
        {
            let part = Batch {
                images: imgs.to_vec(),
                labels: labels.to_vec(),
                shape: batch.shape,
            };
            let (x, y) = batch_tensors(&part, &device)?;
            batches.push((x.to_dtype(DType::F64)?, y, labels.len()));
        }
        // The class count is the width of the model's output.
        let classes = model
            .forward_t(&batches[0].0.to_dtype(DType::F32)?, false)?
            .dim(1)?;
        let twin = Twin::of(model, batch.shape, classes)?;
        let center = flat_f64(&twin.params)?;
        let loss = FixedLoss {
            twin,
            batches,
            samples: batch.len(),
        };
        let g0 = loss.gradient(&center)?;
        Ok(Self {
            loss,
            center,
            g0,
            rel_step: REL_STEP,
            products: 0,
            kinks: 0,
        })
    }

    /// The operator on [`fixed_subset`]`(train, norm, samples, seed)`, [`HVP_BATCH`] images a pass.
    pub fn from_train(
        model: &Model,
        train: &Dataset,
        norm: &Normalization,
        samples: usize,
        seed: u64,
    ) -> Result<Self> {
        Self::new(model, &fixed_subset(train, norm, samples, seed), HVP_BATCH)
    }

    /// The same operator with relative step `rel` instead of [`REL_STEP`] (for accuracy studies).
    pub fn with_rel_step(mut self, rel: f64) -> Self {
        self.rel_step = rel;
        self
    }

    /// Number of trainable parameters: the operator's dimension.
    pub fn dim(&self) -> usize {
        self.center.len()
    }

    /// Images in the fixed set.
    pub fn samples(&self) -> usize {
        self.loss.samples
    }

    /// Hessian-vector products computed so far (each costs two gradient passes, four when a kink
    /// was crossed).
    pub fn products(&self) -> usize {
        self.products
    }

    /// Products whose first step crossed a kink (docs/flatness.md, "Kinks").
    pub fn kinks(&self) -> usize {
        self.kinks
    }

    /// The parameters the Hessian is taken at (the model's, in f64, in its layer-table order).
    pub fn center(&self) -> &[f64] {
        &self.center
    }

    /// The gradient of the mean loss at the center.
    pub fn center_gradient(&self) -> &[f64] {
        &self.g0
    }

    /// Mean loss over the fixed set at the center (forward passes only).
    pub fn loss(&self) -> Result<f64> {
        self.loss.value(&self.center)
    }

    /// The gradient of the mean loss at `x` (in the layer-table order), in f64.
    ///
    /// # Panics
    /// If `x.len() != self.dim()`.
    pub fn gradient(&self, x: &[f64]) -> Result<Vec<f64>> {
        assert_eq!(x.len(), self.dim(), "gradient: point of the wrong length");
        self.loss.gradient(x)
    }

    /// `H v` at the center by finite differences (docs/flatness.md).
    ///
    /// # Panics
    /// If `v.len() != self.dim()`.
    pub fn hvp(&mut self, v: &[f64]) -> Result<Vec<f64>> {
        assert_eq!(v.len(), self.dim(), "hvp: direction of the wrong length");
        let loss = &self.loss;
        let product = finite_difference(&self.center, &self.g0, v, self.rel_step, |x| {
            loss.gradient(x)
        })?;
        self.products += 1;
        if product.difference != Difference::Central {
            self.kinks += 1;
        }
        if let Some(i) = product.hv.iter().position(|h| !h.is_finite()) {
            candle_core::bail!(
                "flatness: Hessian-vector product is not finite (entry {i}): the loss or its \
                 gradient overflows near these parameters"
            );
        }
        Ok(product.hv)
    }
}

impl FixedLoss {
    /// Mean loss at `x` (forward passes only).
    fn value(&self, x: &[f64]) -> Result<f64> {
        self.twin.write(x)?;
        let mut total = 0f64;
        for (xs, ys, n) in &self.batches {
            let logits = self.twin.net.forward_t(xs, false)?;
            let l = candle_nn::loss::cross_entropy(&logits, ys)?.to_scalar::<f64>()?;
            total += l * *n as f64;
        }
        Ok(total / self.samples as f64)
    }

    /// Gradient of the mean loss at `x`, accumulated over the batches.
    fn gradient(&self, x: &[f64]) -> Result<Vec<f64>> {
        self.twin.write(x)?;
        let mut grad = vec![0f64; x.len()];
        let total = self.samples as f64;
        for (xs, ys, n) in &self.batches {
            let logits = self.twin.net.forward_t(xs, false)?;
            // cross_entropy is the batch mean; weight it by the batch's share of the set so the
            // sum over batches is the mean over the set.
            let loss = (candle_nn::loss::cross_entropy(&logits, ys)? * (*n as f64 / total))?;
            let grads = loss.backward()?;
            for (var, e) in self.twin.params.vars().iter().zip(self.twin.params.table()) {
                if let Some(g) = grads.get(var.as_tensor()) {
                    let g = g.flatten_all()?.to_vec1::<f64>()?;
                    for (acc, v) in grad[e.offset..e.offset + e.len].iter_mut().zip(g) {
                        *acc += v;
                    }
                }
            }
        }
        Ok(grad)
    }
}

impl Twin {
    /// An f64 network of `model`'s kind for `shape` images and `classes` classes, holding `model`'s
    /// parameters and BatchNorm statistics.
    fn of(model: &Model, shape: ImageShape, classes: usize) -> Result<Self> {
        let varmap = VarMap::new();
        let device = model.device.clone();
        let vb = candle_nn::VarBuilder::from_backend(
            Box::new(SeededVarMap::new(varmap.clone(), 0)),
            DType::F64,
            device.clone(),
        );
        // The same constructor `Model` uses; the momentum is irrelevant in eval mode.
        let net = model.kind.network(shape, classes, BN_MOMENTUM, vb)?;
        let params = ParamSet::trainable(&varmap);
        let buffers = ParamSet::buffers(&varmap);
        copy_set(&model.params, &params, model.kind)?;
        copy_set(&model.buffers, &buffers, model.kind)?;
        Ok(Twin {
            params,
            net,
            device,
        })
    }

    /// Sets the parameters from `x` (layer-table order).
    fn write(&self, x: &[f64]) -> Result<()> {
        for (var, e) in self.params.vars().iter().zip(self.params.table()) {
            let t = Tensor::from_slice(&x[e.offset..e.offset + e.len], var.shape(), &self.device)?;
            var.set(&t)?;
        }
        Ok(())
    }
}

/// Copies every variable of `src` (f32) into the same-named variable of `dst` (f64); the two layer
/// tables must be the same.
fn copy_set(src: &ParamSet, dst: &ParamSet, kind: ModelKind) -> Result<()> {
    if src.table() != dst.table() {
        candle_core::bail!(
            "flatness: the f64 copy of this {kind} does not have the model's layers \
             (image shape or class count differ?)"
        );
    }
    for (s, d) in src.vars().iter().zip(dst.vars()) {
        d.set(&s.as_tensor().to_dtype(DType::F64)?)?;
    }
    Ok(())
}

/// The variables of an f64 set as one flat vector, in table order.
fn flat_f64(set: &ParamSet) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(set.len());
    for var in set.vars() {
        out.extend(var.as_tensor().flatten_all()?.to_vec1::<f64>()?);
    }
    Ok(out)
}
