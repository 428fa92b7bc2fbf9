//! Batches as tensors, and one evaluation pass: tensors in, numbers out.

use candle_core::{Device, Result, Tensor, D};

use crate::data::{eval_batches, Batch, Dataset, Normalization};
use crate::model::Model;

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
