//! Where the pulling thread makes a round's results. On the CPU: host memory. In a GPU run of one
//! process: its own stream on the first worker's GPU, so the round's kernels do not queue behind
//! a worker's training and the center never leaves the GPUs. Across ranks the round's
//! all-reduce takes host buffers (`ranks::RankCollective`), so the place stays the host there.

use crate::buffer::FlatPlace;
use crate::model::LayerEntry;
use crate::Result;

/// The round's place for a run whose workers use `gpus` (one ordinal per local worker; empty on
/// the CPU), with parameters laid out by `table`, over `ranks` processes.
pub fn round_place(gpus: &[usize], table: &[LayerEntry], ranks: usize) -> Result<FlatPlace> {
    let Some(&first) = gpus.first() else {
        return Ok(FlatPlace::Host);
    };
    if ranks > 1 {
        return Ok(FlatPlace::Host);
    }
    device_place(first, table)
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
