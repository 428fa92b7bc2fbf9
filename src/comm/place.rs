//! Where the hub of one process makes a round's results. On the CPU: host memory. On GPUs: its
//! own stream on the first worker's GPU, so the round's kernels do not queue behind a worker's
//! training and the center never leaves the GPUs. (Across ranks the round's all-reduce takes host
//! buffers, so the place is the host there: `super::Wiring::place`.)

use crate::buffer::FlatPlace;
use crate::model::LayerEntry;
use crate::Result;

/// The round's place for a run whose workers use `gpus` (one ordinal per worker; empty on the
/// CPU), with parameters laid out by `table`.
pub fn round_place(gpus: &[usize], table: &[LayerEntry]) -> Result<FlatPlace> {
    let Some(&first) = gpus.first() else {
        return Ok(FlatPlace::Host);
    };
    #[cfg(feature = "cuda")]
    enable_peers(gpus)?;
    device_place(first, table)
}

/// Turns on direct access between every pair of the run's GPUs where the hardware allows (peer
/// copies then go straight over NVLink or PCIe; elsewhere the driver stages them, which still
/// works). Returns the pairs (from, to) that have it.
#[cfg(feature = "cuda")]
pub fn enable_peers(gpus: &[usize]) -> Result<Vec<(usize, usize)>> {
    use crate::cuda::cudarc::driver::CudaContext;
    let mut ids = gpus.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let open = |g: usize| {
        CudaContext::new(g)
            .map_err(|e| crate::Error::usage(format!("GPU {g}: cannot open it: {e}")))
    };
    let ctxs = ids.iter().map(|&g| open(g)).collect::<Result<Vec<_>>>()?;
    let mut direct = Vec::new();
    for (a, ca) in ids.iter().zip(&ctxs) {
        for (b, cb) in ids.iter().zip(&ctxs) {
            if a != b
                && crate::cuda::enable_peer_access(ca, cb)
                    .map_err(|e| crate::Error::Internal(e.to_string()))?
            {
                direct.push((*a, *b));
            }
        }
    }
    Ok(direct)
}

#[cfg(feature = "cuda")]
fn device_place(ordinal: usize, table: &[LayerEntry]) -> Result<FlatPlace> {
    let len = table.last().map_or(0, |e| e.offset + e.len);
    let place = crate::buffer::CudaPlace::new(ordinal, table, len)?;
    Ok(FlatPlace::Device(place))
}

#[cfg(not(feature = "cuda"))]
fn device_place(ordinal: usize, _table: &[LayerEntry]) -> Result<FlatPlace> {
    // `--gpus` without the feature is refused when devices are opened; this is a backstop.
    Err(crate::Error::usage(format!(
        "GPU {ordinal}: this build has no CUDA support (build with --features cuda)"
    )))
}
