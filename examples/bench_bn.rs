//! Times the fused CPU BatchNorm (`ops::batch_norm`) against candle_nn's BatchNorm + candle's relu
//! (or add + relu) on ResNet-20's BatchNorm shapes at batch 128, in training mode: the forward
//! alone, and forward + backward of sum(y).
//!
//!     cargo run --release --example bench_bn [-- --threads 2 --reps 20]
//!
//! Runs inside a rayon pool of `--threads` threads (the trainer's workers run in their own) with
//! CANDLE_NUM_THREADS=1 unless set, as the trainer runs. Each figure is the median of `--reps`
//! runs after two warm-up runs. Forward + backward is `y.backward()`, which seeds dy with ones
//! and accumulates the gradients into fresh zeros as candle does; `seed only` times the seeding
//! alone (`backward()` of a variable of y's shape), so it can be subtracted. The last lines add
//! the figures up over ResNet-20's 19 BatchNorms (per stage: the stem's or each block's first BN
//! with ReLU, each block's second with the residual add and ReLU).

use std::process::ExitCode;
use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use candle_nn::ModuleT;
use grawa_train::ops::batch_norm::BatchNorm;

// The trainer's allocator (src/main.rs): without it every large tensor is a fresh mmap and its
// page faults dominate the timings.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: bench_bn [--threads N] [--reps N]
  --threads N   rayon threads (default 2)
  --reps N      timed runs per figure (default 20)
  --help        this text";

/// ResNet-20's BatchNorm inputs at batch 128 and how many BatchNorms of each kind a step runs:
/// (C, H, W, with ReLU, with add + ReLU).
const SHAPES: [(usize, usize, usize, usize, usize); 3] =
    [(16, 32, 32, 4, 3), (32, 16, 16, 3, 3), (64, 8, 8, 3, 3)];
const BATCH: usize = 128;

fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    t[t.len() / 2]
}

fn layers(c: usize) -> candle_core::Result<(BatchNorm, candle_nn::BatchNorm)> {
    let dev = Device::Cpu;
    let make = || {
        let gamma = Var::from_tensor(&Tensor::rand(0.5f32, 1.5, c, &dev)?)?;
        let beta = Var::from_tensor(&Tensor::rand(-0.5f32, 0.5, c, &dev)?)?;
        candle_nn::BatchNorm::new_with_momentum(
            c,
            Tensor::zeros(c, candle_core::DType::F32, &dev)?,
            Tensor::ones(c, candle_core::DType::F32, &dev)?,
            gamma.as_tensor().clone(),
            beta.as_tensor().clone(),
            1e-5,
            0.1,
        )
    };
    Ok((BatchNorm::new(make()?)?, make()?))
}

/// Milliseconds: (ours fwd, candle fwd, ours fwd+bwd, candle fwd+bwd, seed only).
fn bench(c: usize, h: usize, w: usize, add: bool, reps: usize) -> candle_core::Result<[f64; 5]> {
    let dev = Device::Cpu;
    let shape = (BATCH, c, h, w);
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, shape, &dev)?)?;
    let res = Var::from_tensor(&Tensor::randn(0f32, 1.0, shape, &dev)?)?;
    let (ours, theirs) = layers(c)?;
    let fwd_ours = || {
        if add {
            ours.forward_add_relu_t(x.as_tensor(), res.as_tensor(), true)
        } else {
            ours.forward_relu_t(x.as_tensor(), true)
        }
        .unwrap()
    };
    let fwd_theirs = || {
        let y = theirs.forward_t(x.as_tensor(), true).unwrap();
        if add {
            (y + res.as_tensor()).unwrap().relu().unwrap()
        } else {
            y.relu().unwrap()
        }
    };
    // backward() of a non-scalar seeds it with ones: the gradient of sum(y), no loss ops.
    let step = |y: Tensor| {
        y.backward().unwrap();
    };
    Ok([
        median_ms(reps, || drop(fwd_ours())),
        median_ms(reps, || drop(fwd_theirs())),
        median_ms(reps, || step(fwd_ours())),
        median_ms(reps, || step(fwd_theirs())),
        median_ms(reps, || step(x.as_tensor().clone())),
    ])
}

fn main() -> ExitCode {
    let (mut threads, mut reps) = (2usize, 20usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |what: &str| -> Option<usize> {
            let v = args.next().and_then(|v| v.parse().ok());
            if v.is_none() {
                eprintln!("{what} needs a number\n{USAGE}");
            }
            v
        };
        match a.as_str() {
            "--threads" => match num("--threads") {
                Some(v) => threads = v.max(1),
                None => return ExitCode::FAILURE,
            },
            "--reps" => match num("--reps") {
                Some(v) => reps = v.max(1),
                None => return ExitCode::FAILURE,
            },
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other}\n{USAGE}");
                return ExitCode::FAILURE;
            }
        }
    }
    // As the trainer (src/threads.rs): candle's own element-wise pool off, rayon does the work.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool");
    pool.install(|| {
        println!(
            "batch {BATCH}, {threads} threads, median of {reps}; ms (candle / ours = speed-up)"
        );
        println!(
            "{:<22} {:>8} {:>8} {:>6}   {:>8} {:>8} {:>6}   {:>9}",
            "shape  variant", "fwd", "candle", "x", "fwd+bwd", "candle", "x", "seed only"
        );
        let (mut tot_ours, mut tot_theirs, mut tot_ours_fb, mut tot_theirs_fb, mut tot_loss) =
            (0.0, 0.0, 0.0, 0.0, 0.0);
        for (c, h, w, n_relu, n_add) in SHAPES {
            for (add, count) in [(false, n_relu), (true, n_add)] {
                let t = bench(c, h, w, add, reps).expect("bench");
                let name = format!("{c}x{h}x{w} {}", if add { "add+relu" } else { "relu" });
                println!(
                    "{name:<22} {:>8.3} {:>8.3} {:>6.2}   {:>8.3} {:>8.3} {:>6.2}   {:>9.3}",
                    t[0],
                    t[1],
                    t[1] / t[0],
                    t[2],
                    t[3],
                    t[3] / t[2],
                    t[4]
                );
                let k = count as f64;
                tot_ours += k * t[0];
                tot_theirs += k * t[1];
                tot_ours_fb += k * t[2];
                tot_theirs_fb += k * t[3];
                tot_loss += k * t[4];
            }
        }
        println!(
            "ResNet-20 step, 19 BNs: fwd {tot_ours:.2} vs {tot_theirs:.2} ms ({:.2}x); \
             fwd+bwd {tot_ours_fb:.2} vs {tot_theirs_fb:.2} ms ({:.2}x)",
            tot_theirs / tot_ours,
            tot_theirs_fb / tot_ours_fb
        );
        println!(
            "  less the seed: fwd+bwd {:.2} vs {:.2} ms ({:.2}x)",
            tot_ours_fb - tot_loss,
            tot_theirs_fb - tot_loss,
            (tot_theirs_fb - tot_loss) / (tot_ours_fb - tot_loss)
        );
    });
    ExitCode::SUCCESS
}
