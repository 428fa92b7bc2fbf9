// How nvcc compiles `kernels/*.cu` to PTX. Included (`include!`) by build.rs, which embeds the
// PTX in a `cuda` build, and by tests/ptx_params.rs, which compiles the same PTX on any machine
// with nvcc to check every kernel's parameters against its launcher: one list for both.

/// Virtual architecture of the PTX. compute_75 (Turing) is the oldest that nvcc 13 accepts; the
/// driver JIT-compiles PTX for any newer GPU (every card from sm_80 up: A100, RTX 30/40/50, L40,
/// H100/H200, B200), and the kernels use nothing newer than warp shuffles.
#[allow(dead_code)]
const PTX_ARCH: &str = "compute_75";

/// nvcc's flags besides the architecture and the files. `--fmad=false`: no FMA contraction, so
/// the element-wise kernels round exactly as their CPU twins (see kernels/README.md).
#[allow(dead_code)]
const NVCC_PTX_FLAGS: [&str; 4] = ["--ptx", "-O3", "--fmad=false", "-std=c++17"];
