//! Which GPU a thread's CUDA calls go to.
//!
//! The driver keeps one *current context* per thread, and calls that take no context use it.
//! cudarc binds the right context before its own driver calls, but cuBLAS (every candle matmul
//! and convolution) runs on whatever context is current. A worker thread makes other GPUs'
//! contexts current without asking: a peer copy binds the destination's, and dropping an event
//! or a buffer of another GPU (the last reference to a center, a snapshot) binds that GPU's. A
//! matmul issued next would then run under the wrong device. So a worker binds its own context
//! at the top of each pass of its loop, and an evaluator before each evaluation.

use candle_core::Device;

/// Makes `device`'s CUDA context current on this thread; nothing for the CPU.
pub fn bind_thread(device: &Device) -> crate::Result<()> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(d) = device {
        let ctx = d.cuda_stream().context().clone();
        return ctx.bind_to_thread().map_err(|e| {
            crate::Error::Internal(format!(
                "GPU {}: cannot make its context current: {e}",
                ctx.ordinal()
            ))
        });
    }
    let _ = device;
    Ok(())
}
