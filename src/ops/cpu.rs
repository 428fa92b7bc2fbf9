//! Plumbing shared by the CPU ops: borrowing a tensor's f32 data without copying when it is
//! contiguous, and how much parallelism to ask of gemm.

use std::borrow::Cow;

use candle_core::{CpuStorage, Layout, Result, Storage, Tensor};

/// The f32 elements of `storage` under `layout`, in row-major order: borrowed when contiguous,
/// gathered otherwise.
pub(crate) fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
) -> Result<Cow<'a, [f32]>> {
    let data = storage.as_slice::<f32>()?;
    Ok(match layout.contiguous_offsets() {
        Some((start, end)) => Cow::Borrowed(&data[start..end]),
        None => Cow::Owned(gather_strided(data, layout)),
    })
}

/// The f32 elements of `storage` under a contiguous `layout`, borrowed; `None` when the layout is
/// strided (for ops that require contiguous inputs and never copy).
pub(crate) fn contiguous_slice<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
) -> Result<Option<&'a [f32]>> {
    let data = storage.as_slice::<f32>()?;
    Ok(layout
        .contiguous_offsets()
        .map(|(start, end)| &data[start..end]))
}

/// The elements of a strided view in row-major order (candle keeps its own iterator private).
fn gather_strided(data: &[f32], layout: &Layout) -> Vec<f32> {
    let dims = layout.dims();
    let stride = layout.stride();
    let count: usize = dims.iter().product();
    let mut out = Vec::with_capacity(count);
    let mut index = vec![0usize; dims.len()];
    let mut offset = layout.start_offset();
    for _ in 0..count {
        out.push(data[offset]);
        // Odometer increment of the multi-index, keeping `offset` in step.
        for d in (0..dims.len()).rev() {
            index[d] += 1;
            offset += stride[d];
            if index[d] < dims[d] {
                break;
            }
            offset -= stride[d] * dims[d];
            index[d] = 0;
        }
    }
    out
}

/// Runs `f` on a CPU tensor's f32 elements in row-major order (borrowed when contiguous).
pub fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => Ok(f(&contiguous_f32(cpu, layout)?)),
        _ => candle_core::bail!("expected a CPU tensor, found one on {:?}", t.device()),
    }
}

/// A CPU tensor's f32 elements as an owned row-major vector.
pub fn to_vec_f32(t: &Tensor) -> Result<Vec<f32>> {
    with_f32(t, |s| s.to_vec())
}

/// Below this many multiply-adds a GEMM is not worth splitting across threads.
const PARALLEL_MIN_MACS: usize = 1 << 16;

/// gemm's parallelism for a product of `macs` multiply-adds: the current rayon pool (a worker's
/// own pool during training) when it has several threads and the product is big enough.
pub fn gemm_parallelism(macs: usize) -> gemm::Parallelism {
    let threads = rayon::current_num_threads();
    if threads > 1 && macs >= PARALLEL_MIN_MACS {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    }
}
