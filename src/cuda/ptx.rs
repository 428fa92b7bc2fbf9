//! The PTX of `kernels/*.cu`, compiled by build.rs (nvcc --ptx, compute_75, --fmad=false) and
//! embedded, so the binary needs no kernel files at run time. The driver JIT-compiles it for the
//! GPU it loads on, once per process.

/// `kernels/average.cu`: layer_sumsq, weighted_center, center_and_pull, pull, easgd_round,
/// uniform_average.
pub const AVERAGE: &str = include_str!(concat!(env!("OUT_DIR"), "/average.ptx"));

/// `kernels/sgd.cu`: sgd_step.
pub const SGD: &str = include_str!(concat!(env!("OUT_DIR"), "/sgd.ptx"));

/// Every module, with the source it was compiled from (for messages): `Kernels::load` loads
/// each kernel each one declares.
pub const MODULES: [(&str, &str); 2] = [("kernels/average.cu", AVERAGE), ("kernels/sgd.cu", SGD)];
