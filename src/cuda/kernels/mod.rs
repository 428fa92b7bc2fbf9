//! Our kernels on one GPU and their host launchers. The `__global__` functions are in
//! `kernels/*.cu`; each launcher here checks its arguments, takes the stream it runs on explicitly
//! and returns as soon as the work is queued (read results back with `stream.clone_dtoh`, which
//! waits). Buffers may be `CudaSlice`s or views; they must live on the stream's GPU.
//!
//! | launcher            | kernel            | CPU twin (the reference)               |
//! |---------------------|-------------------|----------------------------------------|
//! | `layer_sumsq`       | `layer_sumsq`     | `average::naive::naive_layer_sumsq`    |
//! | `weighted_center`   | `weighted_center` | `average::naive::naive_weighted_center`|
//! | `center_and_pull`   | `center_and_pull` | `average::naive::naive_center_and_pull`|
//! | `pull`              | `pull`            | `average::naive::naive_pull`           |
//! | `easgd_round`       | `easgd_round`     | `average::naive::naive_easgd_round`    |
//! | `uniform_average`   | `uniform_average` | `average::naive::naive_uniform_average`|
//! | `sgd_step`          | `sgd_step`        | `optim::sgd_update`                    |
//! | `scale_add`         | `scale_add`       | `buffer::host` (`[f32]::scale_add`)     |
//! | `divide`            | `divide`          | `buffer::host` (`[f32]::divide`)        |
//!
//! The files: this one loads the kernels and queues a launch; `launchers` holds one method per
//! kernel; `checks` the argument checks every launcher makes before it touches a pointer;
//! `layout` and `weights` the per-model layer table and the per-round weights as the kernels
//! read them on the GPU.

mod checks;
mod launchers;
mod layout;
mod weights;

use std::sync::Arc;

use crate::cuda::cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaStream, LaunchConfig, PushKernelArg,
};
use crate::cuda::cudarc::nvrtc::Ptx;
use crate::cuda::launch_args::{self as args, Arg, Launch};
use crate::cuda::{ptx, Context, CudaError, Result};

pub use layout::DeviceLayout;
pub use weights::DeviceWeights;

/// Threads per block for every kernel (a multiple of 32, as `block_sum` needs).
const BLOCK: u32 = 256;

/// Most blocks per launch; the kernels loop over the rest. 4096 blocks of 256 threads keep any
/// current GPU full (an H100 holds 132 x 8 such blocks at once) without launching millions.
const MAX_GRID: u32 = 4096;

/// The kernels of `kernels/*.cu`, loaded into one GPU's context, by name.
pub struct Kernels {
    ctx: Arc<CudaContext>,
    functions: Vec<(String, CudaFunction)>,
}

impl Kernels {
    /// Loads the embedded PTX into `ctx` (the driver JIT-compiles it for this GPU), every kernel
    /// each module declares. Refuses PTX whose kernels' parameters differ from what the
    /// launchers pass (`launch_args`): cudarc would launch them anyway and corrupt memory.
    pub fn load(ctx: &Arc<CudaContext>) -> Result<Self> {
        let mut entries = Vec::new();
        let mut functions = Vec::new();
        for (file, text) in ptx::MODULES {
            let found = args::ptx_entries(text)
                .map_err(|e| CudaError::Invalid(format!("reading the PTX of {file}: {e}")))?;
            let module = load_module(ctx, text, file)?;
            for e in &found {
                let f = module.load_function(&e.name).context(&format!(
                    "loading kernel {} on GPU {}",
                    e.name,
                    ctx.ordinal()
                ))?;
                functions.push((e.name.clone(), f));
            }
            entries.extend(found);
        }
        args::check_launches(&entries, &args::every_kernel()).map_err(|e| {
            CudaError::Invalid(format!(
                "the embedded PTX does not match its launchers (rebuild): {e}"
            ))
        })?;
        Ok(Self {
            ctx: ctx.clone(),
            functions,
        })
    }

    /// The context the kernels were loaded into.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// Queues `launch` on `stream` with `grid` blocks. The caller holds the guards of every
    /// buffer whose pointer is among the arguments until this returns.
    fn launch(&self, stream: &Arc<CudaStream>, launch: &Launch, grid: u32) -> Result<()> {
        let f = self
            .functions
            .iter()
            .find(|(name, _)| name == launch.kernel)
            .map(|(_, f)| f)
            .ok_or_else(|| CudaError::Invalid(format!("no kernel {}", launch.kernel)))?;
        let mut b = stream.launch_builder(f);
        for a in &launch.args {
            match a {
                Arg::Ptr(v) | Arg::U64(v) => b.arg(v),
                Arg::U32(v) => b.arg(v),
                Arg::I32(v) => b.arg(v),
                Arg::F32(v) => b.arg(v),
                Arg::Workers(v) => b.arg(&**v),
            };
        }
        // SAFETY: the argument list matches the kernel's parameters (checked against the PTX
        // when the kernels were loaded); every pointer is a buffer the launcher checked to hold
        // what the kernel reads and keeps alive (its guards) until the launch is queued.
        unsafe { b.launch(config(grid)) }.context(&format!("launching {}", launch.kernel))?;
        Ok(())
    }
}

fn load_module(ctx: &Arc<CudaContext>, ptx: &str, file: &str) -> Result<Arc<CudaModule>> {
    ctx.load_module(Ptx::from_src(ptx)).context(&format!(
        "loading the PTX of {file} on GPU {}",
        ctx.ordinal()
    ))
}

fn config(grid: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (grid, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Blocks for a grid-stride loop over `n` elements.
fn elementwise_grid(n: u64) -> u32 {
    n.div_ceil(u64::from(BLOCK)).clamp(1, u64::from(MAX_GRID)) as u32
}
