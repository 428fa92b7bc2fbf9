//! GPUs as the trainer sees them: how many there are, whether two can reach each other's memory
//! directly, and copies between buffers on the same or different GPUs.
//!
//! A copy between GPUs is `cuMemcpyPeerAsync` (cudarc's `memcpy_dtod` across contexts). It works
//! whether or not peer access is enabled: with it the bytes go straight over NVLink or PCIe,
//! without it the driver stages them through host memory. [`enable_peer_access`] turns the direct
//! path on where the hardware allows; the self-test reports which pairs have it and the bandwidth
//! each gets.

use std::sync::Arc;

use super::cudarc::driver::{sys, CudaContext, CudaStream, DevicePtr, DevicePtrMut, DriverError};
use super::ordering::{read_order, StreamAt};
use super::{Context, CudaError, Result};

/// How many CUDA GPUs this process can see (after `CUDA_VISIBLE_DEVICES`). A driver that reports
/// no device gives `Ok(0)`; a driver that cannot start (too old for this binary, broken install)
/// is an error saying why.
pub fn device_count() -> Result<usize> {
    match CudaContext::device_count() {
        Ok(n) => Ok(usize::try_from(n).unwrap_or(0)),
        Err(DriverError(sys::CUresult::CUDA_ERROR_NO_DEVICE)) => Ok(0),
        Err(e) => Err(e).context("initialising the CUDA driver (cuInit)"),
    }
}

/// The CUDA version the driver supports, as (major, minor), e.g. (13, 0).
pub fn driver_version() -> Result<(i32, i32)> {
    let mut v = 0i32;
    // SAFETY: cuDriverGetVersion only writes the int it is given.
    unsafe { sys::cuDriverGetVersion(&mut v) }
        .result()
        .context("asking the driver its version")?;
    Ok((v / 1000, (v % 1000) / 10))
}

/// Whether kernels and copies on `from`'s GPU can reach `to`'s memory directly (NVLink or PCIe
/// peer-to-peer). False for the same GPU: no peer access is needed there.
pub fn peer_access_possible(from: &CudaContext, to: &CudaContext) -> Result<bool> {
    if from.cu_device() == to.cu_device() {
        return Ok(false);
    }
    let mut can = 0i32;
    // SAFETY: both handles come from live contexts; the call only writes `can`.
    unsafe { sys::cuDeviceCanAccessPeer(&mut can, from.cu_device(), to.cu_device()) }
        .result()
        .context(&format!(
            "asking whether GPU {} can access GPU {}",
            from.ordinal(),
            to.ordinal()
        ))?;
    Ok(can != 0)
}

/// Lets `from`'s GPU access `to`'s memory directly, where the hardware allows. Returns whether
/// direct access is on (already-enabled counts as on); false means copies between the two will be
/// staged through host memory, which still works.
pub fn enable_peer_access(from: &CudaContext, to: &CudaContext) -> Result<bool> {
    if !peer_access_possible(from, to)? {
        return Ok(false);
    }
    from.bind_to_thread()
        .context(&format!("binding GPU {}'s context", from.ordinal()))?;
    // SAFETY: `to` is a live context; flags must be 0.
    match unsafe { sys::cuCtxEnablePeerAccess(to.cu_ctx(), 0) }.result() {
        Ok(()) | Err(DriverError(sys::CUresult::CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED)) => {
            Ok(true)
        }
        Err(e) => Err(e).context(&format!(
            "enabling peer access from GPU {} to GPU {}",
            from.ordinal(),
            to.ordinal()
        )),
    }
}

/// Copies `src` into `dst` on `stream` (the destination's stream): a plain device-to-device copy
/// on one GPU, a peer copy between two. `dst` must be at least as long as `src`.
pub fn copy<S, D>(stream: &Arc<CudaStream>, src: &S, dst: &mut D) -> Result<()>
where
    S: DevicePtr<f32>,
    D: DevicePtrMut<f32>,
{
    if dst.len() < src.len() {
        return Err(CudaError::Invalid(format!(
            "copy: {} elements do not fit in a buffer of {}",
            src.len(),
            dst.len()
        )));
    }
    if **dst.stream().context() != **stream.context() {
        return Err(CudaError::Invalid(format!(
            "copy: run it on the destination's GPU ({}), not GPU {}",
            dst.stream().context().ordinal(),
            stream.context().ordinal()
        )));
    }
    let (from, to) = (src.stream().context().ordinal(), stream.context().ordinal());
    stream.memcpy_dtod(src, dst).context(&format!(
        "copying {} floats from GPU {from} to GPU {to}",
        src.len()
    ))
}

/// Orders a read of a buffer owned by `owner`'s stream, queued on `reader`, before the owner's
/// next use of it (its next write, its free): `reader` records an event after the read and
/// `owner` waits for it. Needed whenever the two streams differ (`ordering::read_order`):
/// cudarc keeps one read event per buffer, so with several readers only the last one orders
/// the owner, and a peer copy's read is recorded on the source's own stream, which does not
/// cover the copy at all. Waiting on another context's event is allowed.
pub fn fence_read(reader: &Arc<CudaStream>, owner: &Arc<CudaStream>) -> Result<()> {
    if !read_order(stream_at(reader), stream_at(owner)).needs_fence() {
        return Ok(());
    }
    let done = reader
        .record_event(None)
        .context("recording the end of a read of another stream's buffer")?;
    owner
        .wait(&done)
        .context("ordering a buffer's next use after another stream's read of it")
}

/// A stream as `ordering`'s rule sees it.
fn stream_at(s: &CudaStream) -> StreamAt {
    StreamAt {
        gpu: s.context().ordinal(),
        stream: s.cu_stream() as usize,
    }
}

/// Records `buf` as written at the current end of `stream`: readers that wait for its write
/// from now on wait for everything queued there so far. For work cudarc's own record missed,
/// such as an NCCL collective inside a group, which is enqueued only when the group ends
/// (`cuda::group`).
pub fn record_write<T, B: DevicePtrMut<T>>(buf: &mut B, stream: &CudaStream) {
    // The guard records the buffer's write event on `stream` when it drops.
    let (_, recorded) = buf.device_ptr_mut(stream);
    drop(recorded);
}
