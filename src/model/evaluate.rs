//! A model run on data outside the optimizer: a batch as tensors, the evaluation pass (mean loss
//! and accuracy), and BatchNorm's running statistics recalibrated on training batches. The
//! trainer's evaluator and the flatness measurement both build on these.

use candle_core::{Device, Result, Tensor, D};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::Model;
use crate::data::{eval_batches, sample_batch, Batch, Dataset, Normalization};

/// A batch as tensors on `device`: images (N, C, H, W) and u32 labels (N).
pub fn batch_tensors(batch: &Batch, device: &Device) -> Result<(Tensor, Tensor)> {
    let s = batch.shape;
    let n = batch.labels.len();
    let x = Tensor::from_slice(&batch.images, (n, s.channels, s.height, s.width), device)?;
    let y = Tensor::from_slice(&batch.labels, n, device)?;
    Ok((x, y))
}

/// Mean loss, accuracy (fraction correct) and each class's accuracy (NaN for a class with no
/// image in `data`) of `model` on `data`, BatchNorm in eval mode.
pub fn evaluate(
    model: &Model,
    data: &Dataset,
    norm: &Normalization,
    batch_size: usize,
) -> Result<(f64, f64, Vec<f64>)> {
    let (mut loss_sum, mut seen) = (0f64, 0usize);
    let mut hits = vec![0u64; data.num_classes];
    let mut counts = vec![0u64; data.num_classes];
    for batch in eval_batches(data, norm, batch_size) {
        let (x, y) = batch_tensors(&batch, &model.device)?;
        let logits = model.forward_t(&x, false)?;
        let n = batch.labels.len();
        // cross_entropy is a mean; weight it back to a sum so short last batches count right.
        loss_sum +=
            candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()? as f64 * n as f64;
        let hit = logits.argmax(D::Minus1)?.eq(&y)?.to_vec1::<u8>()?;
        for (&label, &h) in batch.labels.iter().zip(&hit) {
            counts[label as usize] += 1;
            hits[label as usize] += u64::from(h);
        }
        seen += n;
    }
    if seen == 0 {
        candle_core::bail!("evaluation set is empty");
    }
    let correct: u64 = hits.iter().sum();
    let per_class = hits
        .iter()
        .zip(&counts)
        .map(|(&h, &n)| {
            if n == 0 {
                f64::NAN
            } else {
                h as f64 / n as f64
            }
        })
        .collect();
    Ok((
        loss_sum / seen as f64,
        correct as f64 / seen as f64,
        per_class,
    ))
}

/// Which training batches BatchNorm's statistics are recalibrated on: `batches` batches of
/// `batch_size` images drawn from `seed`, the same batches every time, so evaluations are
/// comparable and runs reproducible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recalibration {
    pub batches: usize,
    pub batch_size: usize,
    pub seed: u64,
}

/// Sets `model`'s BatchNorm running statistics to their mean over the training batches of
/// `recal` (the evaluated point's own statistics: the workers' belong to other points). `model`
/// must be built with BatchNorm momentum 1.0 (`Model::with_bn_momentum`): a forward pass in
/// training mode then leaves exactly that batch's statistics, so their plain mean over the batches
/// is PyTorch's cumulative average.
pub fn recalibrate_batchnorm(
    model: &Model,
    train: &Dataset,
    norm: &Normalization,
    recal: Recalibration,
) -> Result<()> {
    let buffers = &model.buffers;
    if buffers.is_empty() {
        return Ok(());
    }
    let mut rng = StdRng::seed_from_u64(recal.seed ^ 0x6263_616c); // "bcal"
    let mut sum = vec![0f64; buffers.len()];
    let mut stats = vec![0f32; buffers.len()];
    for _ in 0..recal.batches {
        let batch = sample_batch(train, norm, recal.batch_size, &mut rng);
        let (x, _) = batch_tensors(&batch, &model.device)?;
        model.forward_t(&x, true)?;
        buffers.read_flat(&mut stats)?;
        for (s, &v) in sum.iter_mut().zip(&stats) {
            *s += v as f64;
        }
    }
    let mean: Vec<f32> = sum
        .iter()
        .map(|&s| (s / recal.batches as f64) as f32)
        .collect();
    buffers.write_flat(&mean)
}
