//! Plumbing shared by the CPU ops: borrowing a tensor's f32 data without copying when it is
//! contiguous, how much parallelism to ask of gemm, and a bounds-checked gemm call.

use std::borrow::Cow;

use candle_core::{CpuStorage, Layout, Result, Storage, Tensor};
use gemm::Parallelism;

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

/// `contiguous_f32` with the op's name in its error.
pub(crate) fn f32_data<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<Cow<'a, [f32]>> {
    contiguous_f32(s, l).map_err(|e| candle_core::Error::msg(format!("{op}: {e}")))
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
pub fn gemm_parallelism(macs: usize) -> Parallelism {
    let threads = rayon::current_num_threads();
    if threads > 1 && macs >= PARALLEL_MIN_MACS {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    }
}

/// A strided matrix operand: element (i, j) at `data[i*rs + j*cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

fn span(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    (rows - 1) * rs + (cols - 1) * cs + 1
}

/// `dst (m x n) = lhs (m x k) . rhs (k x n)`, or `dst += ...` when `accumulate`; dst element (i, j)
/// at `dst[i*dst_rs + j*dst_cs]`. Bounds are checked here, so the `gemm` call is sound.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    dst_cs: usize,
    accumulate: bool,
    lhs: Mat,
    rhs: Mat,
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        span(m, n, dst_rs, dst_cs) <= dst.len(),
        "gemm dst out of bounds"
    );
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst[i * dst_rs + j * dst_cs] = 0.0;
                }
            }
        }
        return;
    }
    assert!(
        span(m, k, lhs.rs, lhs.cs) <= lhs.data.len(),
        "gemm lhs out of bounds"
    );
    assert!(
        span(k, n, rhs.rs, rhs.cs) <= rhs.data.len(),
        "gemm rhs out of bounds"
    );
    // SAFETY: every element the product touches lies inside the slices (checked above), `dst`
    // is borrowed mutably and so aliases neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}
