//! The GPUs this binary can use: how many (for validating `--gpus`), and the self-test over all
//! of them. Compiled in every build; without the `cuda` feature each says why there are none.

use crate::selftest::Outcome;
#[cfg(not(feature = "cuda"))]
use crate::selftest::HOW_TO_BUILD_CUDA;

/// Runs every check on every visible GPU and returns the outcome without printing anything
/// ([`Outcome::NotBuilt`] in a build without `cuda`).
pub fn check_all() -> Outcome {
    #[cfg(feature = "cuda")]
    {
        crate::cuda::selftest::run_checks()
    }
    #[cfg(not(feature = "cuda"))]
    {
        Outcome::NotBuilt
    }
}

/// How many GPUs this binary can use, for validating `--gpus N`: `Ok(n)` with the `cuda` feature
/// (0 when the driver sees none); `Err` with a one-line reason when the build has no CUDA support
/// or the driver cannot start.
pub fn gpu_count() -> Result<usize, String> {
    #[cfg(feature = "cuda")]
    {
        crate::cuda::device_count().map_err(|e| format!("the CUDA driver cannot start: {e}"))
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(format!(
            "this grawa-train was built without the `cuda` feature; {HOW_TO_BUILD_CUDA}"
        ))
    }
}
