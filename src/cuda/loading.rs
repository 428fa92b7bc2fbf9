//! How the driver loads kernel code in a process that runs NCCL.
//!
//! Since CUDA 12.2 the driver loads a kernel's code lazily, at its first launch, and loading may
//! need to synchronise the context. NCCL's kernels spin on the GPU until every peer's kernel
//! runs: if one GPU's NCCL kernel waits for a peer while the thread that must launch the peer's
//! next kernel is blocked loading it behind that wait, the run deadlocks (CUDA's programming
//! guide, "Lazy Loading", and NCCL's troubleshooting notes). Loading every kernel before the
//! first collective is not possible here: candle loads its modules (about 11 MB of PTX) on first
//! use, and which ones a run touches depends on the model and the evaluation. So a build with
//! NCCL asks for eager loading, `CUDA_MODULE_LOADING=EAGER`, which the driver reads once, when
//! it starts: every module's kernels are loaded when the module is, and nothing is loaded
//! behind a spinning collective. It costs the load time and memory of kernels a run never
//! launches, a small part of the module loads that happen anyway.

/// With the `nccl` feature, sets `CUDA_MODULE_LOADING=EAGER` unless the environment sets it
/// already. Call it first thing in `main`, before any thread or CUDA call: the driver reads the
/// variable once, at `cuInit`. Without `nccl` it does nothing.
pub fn eager_for_nccl() {
    #[cfg(feature = "nccl")]
    if std::env::var_os("CUDA_MODULE_LOADING").is_none() {
        // Before any other thread exists (see above), so nothing reads the environment meanwhile.
        std::env::set_var("CUDA_MODULE_LOADING", "EAGER");
    }
}

/// Refuses to make NCCL communicators while the driver loads kernels lazily (a binary whose
/// `main` did not call [`eager_for_nccl`], or `CUDA_MODULE_LOADING=LAZY` in the environment).
#[cfg(feature = "nccl")]
pub fn require_eager() -> crate::Result<()> {
    use super::cudarc::driver::sys::{cuModuleGetLoadingMode, CUmoduleLoadingMode};
    let mut mode = CUmoduleLoadingMode::CU_MODULE_EAGER_LOADING;
    // SAFETY: the call only writes the mode it is given; the driver was started by the caller's
    // contexts.
    let status = unsafe { cuModuleGetLoadingMode(&mut mode) };
    if status.result().is_ok() && mode == CUmoduleLoadingMode::CU_MODULE_LAZY_LOADING {
        return Err(crate::Error::usage(format!(
            "NCCL with lazily loaded kernels can deadlock (a kernel loaded behind a spinning \
             collective); set CUDA_MODULE_LOADING=EAGER (it is {:?} here) and run again",
            std::env::var("CUDA_MODULE_LOADING").unwrap_or_else(|_| "unset".into())
        )));
    }
    Ok(())
}
