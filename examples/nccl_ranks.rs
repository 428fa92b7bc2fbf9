//! The NCCL communicator across ranks, checked and timed on GPUs (features `nccl` and `mpi`):
//! every rank takes its machine-local GPU, joins one communicator bootstrapped over MPI, and
//! all-reduces buffers of 0.27M, 11M and 100M f32 in place. Each element must come out as the sum
//! over ranks of (rank + 1), exactly (small integers); rank 0 prints the median time and the
//! bandwidth (one buffer's bytes / time) beside MPI's all-reduce of the same bytes in host memory.
//!
//!     cargo build --release --features nccl,mpi --example nccl_ranks
//!     mpirun -np R target/release/examples/nccl_ranks     # one rank per GPU: NCCL takes no two
//!                                                          # ranks on one device

use std::time::Instant;

use grawa_train::cuda::cudarc::driver::CudaContext;
use grawa_train::cuda::device_count;
use grawa_train::ranks::mpi::start;
use grawa_train::ranks::nccl::{rank_gpu, NcclRanks};
use grawa_train::ranks::Peers;

const SIZES: [usize; 3] = [270_000, 11_000_000, 100_000_000];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    grawa_train::cuda::loading::eager_for_nccl();
    let (_world, mut peers) = start(1)?;
    let layout = peers.layout();
    let gpu = rank_gpu(device_count()?).ok_or("no GPU visible to this rank")?;
    let stream = CudaContext::new(gpu)?.default_stream();
    let nccl = NcclRanks::new(&mut peers, stream.clone())?;
    let want = (layout.ranks * (layout.ranks + 1) / 2) as f32;
    if layout.is_root() {
        println!(
            "{} ranks; rank 0 on GPU {}; median ms and GB/s (one buffer's bytes / time)",
            layout.ranks,
            nccl.ordinal()
        );
        println!(
            "{:>11} {:>9} {:>7} {:>9} {:>7}",
            "params", "nccl ms", "GB/s", "mpi ms", "GB/s"
        );
    }
    for n in SIZES {
        let mine = vec![(layout.rank + 1) as f32; n];
        let (mut on_gpu, mut on_host) = (Vec::new(), Vec::new());
        for rep in 0..6 {
            let mut buf = stream.clone_htod(&mine)?;
            stream.synchronize()?;
            let t = Instant::now();
            nccl.all_reduce_sum(&mut buf)?;
            stream.synchronize()?;
            let gpu_s = t.elapsed().as_secs_f64();
            let back = stream.clone_dtoh(&buf)?;
            if let Some(i) = back.iter().position(|&v| v != want) {
                return Err(format!("n = {n}: element {i} is {}, want {want}", back[i]).into());
            }
            let t = Instant::now();
            let sum = peers.all_reduce_sum(mine.clone())?;
            let host_s = t.elapsed().as_secs_f64();
            std::hint::black_box(sum);
            if rep > 0 {
                on_gpu.push(gpu_s);
                on_host.push(host_s);
            }
        }
        let (g, h) = (median(on_gpu), median(on_host));
        let gbps = |s: f64| n as f64 * 4.0 / s / 1e9;
        if layout.is_root() {
            println!(
                "{n:>11} {:>9.3} {:>7.1} {:>9.3} {:>7.2}",
                g * 1e3,
                gbps(g),
                h * 1e3,
                gbps(h)
            );
        }
    }
    Ok(())
}
