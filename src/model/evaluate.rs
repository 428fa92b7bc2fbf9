//! Batches as tensors, and one evaluation pass: tensors in, numbers out.

use candle_core::{DType, Device, Result, Tensor, D};

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

/// Mean loss and accuracy (fraction correct) of `model` on `data`, BatchNorm in eval mode.
pub fn evaluate(
    model: &Model,
    data: &Dataset,
    norm: &Normalization,
    batch_size: usize,
) -> Result<(f64, f64)> {
    let (mut loss_sum, mut correct, mut seen) = (0f64, 0u64, 0usize);
    for batch in eval_batches(data, norm, batch_size) {
        let (x, y) = batch_tensors(&batch, &model.device)?;
        let logits = model.forward_t(&x, false)?;
        let n = batch.labels.len();
        // cross_entropy is a mean; weight it back to a sum so short last batches count right.
        loss_sum +=
            candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()? as f64 * n as f64;
        let hits = logits
            .argmax(D::Minus1)?
            .eq(&y)?
            .to_dtype(DType::U32)?
            .sum_all()?;
        correct += hits.to_scalar::<u32>()? as u64;
        seen += n;
    }
    if seen == 0 {
        candle_core::bail!("evaluation set is empty");
    }
    Ok((loss_sum / seen as f64, correct as f64 / seen as f64))
}
