//! The checks every launcher makes before it takes a pointer: the stream is the kernels' own GPU,
//! and each buffer lives on that GPU and holds as many elements as the kernel will touch. A
//! kernel cannot check them itself: a wrong length there is a silent out-of-bounds access.

use std::sync::Arc;

use super::Kernels;
use crate::cuda::cudarc::driver::{CudaStream, DeviceSlice};
use crate::cuda::{CudaError, Result, MAX_WORKERS};

impl Kernels {
    pub(super) fn check_stream(&self, stream: &CudaStream, what: &str) -> Result<()> {
        if **stream.context() != *self.ctx {
            return Err(CudaError::Invalid(format!(
                "{what}: the stream is on GPU {} but the kernels were loaded on GPU {}",
                stream.context().ordinal(),
                self.ctx.ordinal()
            )));
        }
        Ok(())
    }

    /// The checks of an element-wise launch that updates `x` in place: the stream is ours, `x`
    /// lives on its GPU, and so does each named buffer of `others`, with as many elements as `x`.
    /// Returns that count as the kernels take it, or `None` when it is 0 (nothing to launch).
    pub(super) fn check_elementwise(
        &self,
        stream: &CudaStream,
        what: &str,
        x: &dyn DeviceSlice<f32>,
        others: &[(&str, &dyn DeviceSlice<f32>)],
    ) -> Result<Option<u64>> {
        self.check_stream(stream, what)?;
        let n = x.len();
        check_buffer(stream, x.stream(), n, n, what, "x")?;
        for (name, buffer) in others {
            check_buffer(stream, buffer.stream(), buffer.len(), n, what, name)?;
        }
        Ok((n != 0).then_some(n as u64))
    }
}

/// Errors unless a buffer lives on the stream's GPU and holds `want` elements.
pub(super) fn check_buffer(
    stream: &CudaStream,
    buffer_stream: &CudaStream,
    len: usize,
    want: usize,
    what: &str,
    name: &str,
) -> Result<()> {
    if **buffer_stream.context() != **stream.context() {
        return Err(CudaError::Invalid(format!(
            "{what}: {name} is on GPU {} but the launch is on GPU {} (copy it over first)",
            buffer_stream.context().ordinal(),
            stream.context().ordinal()
        )));
    }
    if len != want {
        return Err(CudaError::Invalid(format!(
            "{what}: {name} has {len} elements, expected {want}"
        )));
    }
    Ok(())
}

/// Checks the workers' buffers (1..=MAX_WORKERS, each `want` elements on the stream's GPU) and
/// returns how many there are.
pub(super) fn check_workers<'a>(
    stream: &CudaStream,
    buffers: impl Iterator<Item = (usize, &'a Arc<CudaStream>)>,
    want: usize,
    what: &str,
) -> Result<usize> {
    let mut m = 0;
    for (i, (len, s)) in buffers.enumerate() {
        check_buffer(stream, s, len, want, what, &format!("worker {i}"))?;
        m += 1;
    }
    if m == 0 || m > MAX_WORKERS {
        return Err(CudaError::Invalid(format!(
            "{what}: {m} workers given; one launch takes 1 to {MAX_WORKERS}"
        )));
    }
    Ok(m)
}
