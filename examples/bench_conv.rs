//! Our CPU convolution against candle's on ResNet-20's convolution shapes at batch 128:
//! forward, input gradient and weight gradient (each our own op, timed alone), and a full
//! backward through autograd of sum(y * r) for both ("bwd": both gradients plus candle's
//! bookkeeping, the product's own backward and the accumulation of the gradients, which is a
//! large share of ours). Runs inside a rayon pool like a worker. GFLOP/s count
//! 2*Cout*Cin*k*k*Ho*Wo*N per pass (candle's backward: two passes).
//!
//! cargo run --release --example bench_conv [-- --threads T --batch N --reps R]

use std::time::Instant;

use candle_core::{Device, Tensor, Var};

// The trainer's allocator (outputs of these sizes are allocated and freed every call).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use grawa_train::ops::conv::{conv2d, Conv2dBwdInput, Conv2dBwdWeight};

struct Shape {
    cin: usize,
    cout: usize,
    hw: usize,
    stride: usize,
    /// How many convolutions of this shape a ResNet-20 forward has.
    count: usize,
}

const SHAPES: &[Shape] = &[
    Shape {
        cin: 3,
        cout: 16,
        hw: 32,
        stride: 1,
        count: 1,
    },
    Shape {
        cin: 16,
        cout: 16,
        hw: 32,
        stride: 1,
        count: 6,
    },
    Shape {
        cin: 16,
        cout: 32,
        hw: 32,
        stride: 2,
        count: 1,
    },
    Shape {
        cin: 32,
        cout: 32,
        hw: 16,
        stride: 1,
        count: 5,
    },
    Shape {
        cin: 32,
        cout: 64,
        hw: 16,
        stride: 2,
        count: 1,
    },
    Shape {
        cin: 64,
        cout: 64,
        hw: 8,
        stride: 1,
        count: 5,
    },
];

/// Median and minimum seconds of `reps` runs of `f` after one warm-up run.
fn time(reps: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let mut t: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let a = Instant::now();
            f();
            a.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (t[t.len() / 2], t[0])
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn main() -> candle_core::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let threads = arg(&args, "--threads", 2);
    let n = arg(&args, "--batch", 128);
    let reps = arg(&args, "--reps", 5);
    let candle_reps = arg(&args, "--candle-reps", 3);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool");
    pool.install(|| run(n, reps, candle_reps, threads))
}

fn run(n: usize, reps: usize, candle_reps: usize, threads: usize) -> candle_core::Result<()> {
    let dev = Device::Cpu;
    println!(
        "batch {n}, {threads} threads, median of {reps} (ours) / {candle_reps} (candle) runs; \
         ms per call, GFLOP/s in brackets"
    );
    println!(
        "{:<18} {:>17} {:>17} {:>17} {:>11} | {:>17} {:>19} | {:>6} {:>6}",
        "shape",
        "ours fwd",
        "ours dX",
        "ours dW",
        "ours bwd",
        "candle fwd",
        "candle bwd",
        "x fwd",
        "x bwd"
    );
    // Sums over a ResNet-20 step of (median, minimum) times.
    let (mut ours_step, mut candle_step, mut flops_step) = ((0.0, 0.0), (0.0, 0.0), 0.0);
    for s in SHAPES {
        let (k, pad) = (3, 1);
        let ho = (s.hw + 2 * pad - k) / s.stride + 1;
        let flops = 2.0 * (s.cout * s.cin * k * k * ho * ho * n) as f64;
        let x = Var::randn(0f32, 1.0, (n, s.cin, s.hw, s.hw), &dev)?;
        let w = Var::randn(0f32, 0.1, (s.cout, s.cin, k, k), &dev)?;
        let dy = Tensor::randn(0f32, 1.0, (n, s.cout, ho, ho), &dev)?;

        let fwd = time(reps, || {
            conv2d(x.as_tensor(), w.as_tensor(), None, s.stride, pad).unwrap();
        });
        let bwd_in = Conv2dBwdInput {
            stride: s.stride,
            padding: pad,
            h: s.hw,
            w: s.hw,
        };
        let dx = time(reps, || {
            dy.apply_op2_no_bwd(w.as_tensor(), &bwd_in).unwrap();
        });
        let bwd_w = Conv2dBwdWeight {
            stride: s.stride,
            padding: pad,
            kh: k,
            kw: k,
        };
        let dw = time(reps, || {
            x.as_tensor().apply_op2_no_bwd(&dy, &bwd_w).unwrap();
        });
        // Full backward through autograd (both gradients plus candle's bookkeeping).
        let y = conv2d(x.as_tensor(), w.as_tensor(), None, s.stride, pad)?;
        let loss = (&y * &dy)?.sum_all()?;
        let bwd = time(reps, || {
            loss.backward().unwrap();
        });

        let cfwd = time(candle_reps, || {
            x.as_tensor()
                .conv2d(w.as_tensor(), pad, s.stride, 1, 1)
                .unwrap();
        });
        let yc = x.as_tensor().conv2d(w.as_tensor(), pad, s.stride, 1, 1)?;
        let lossc = (&yc * &dy)?.sum_all()?;
        let cbwd = time(candle_reps, || {
            lossc.backward().unwrap();
        });

        let gf = |t: f64, passes: f64| passes * flops / t / 1e9;
        let (fwd_min, dx_min, dw_min) = (fwd.1, dx.1, dw.1);
        let (fwd, dx, dw, bwd, cfwd, cbwd) = (fwd.0, dx.0, dw.0, bwd.0, cfwd.0, cbwd.0);
        println!(
            "{:<18} {:>8.2} [{:>5.1}] {:>8.2} [{:>5.1}] {:>8.2} [{:>5.1}] {:>11.2} | {:>8.2} [{:>5.1}] {:>9.2} [{:>5.1}] | {:>6.1} {:>6.1}",
            format!("{}->{} {}x{} s{} (x{})", s.cin, s.cout, s.hw, s.hw, s.stride, s.count),
            fwd * 1e3,
            gf(fwd, 1.0),
            dx * 1e3,
            gf(dx, 1.0),
            dw * 1e3,
            gf(dw, 1.0),
            bwd * 1e3,
            cfwd * 1e3,
            gf(cfwd, 1.0),
            cbwd * 1e3,
            gf(cbwd, 2.0),
            cfwd / fwd,
            cbwd / bwd,
        );
        let c = s.count as f64;
        // The first layer's input needs no gradient in a real step.
        let first = s.cin == 3;
        ours_step.0 += c * (fwd + dw + if first { 0.0 } else { dx });
        ours_step.1 += c * (fwd_min + dw_min + if first { 0.0 } else { dx_min });
        candle_step.0 += c * (cfwd + cbwd);
        flops_step += c * flops * if first { 2.0 } else { 3.0 };
    }
    println!(
        "ResNet-20 step, convolutions only (our ops: forward, dX, dW; candle: forward, autograd \
         backward): ours {:.1} ms median ({:.1} GFLOP/s), {:.1} ms best ({:.1} GFLOP/s); \
         candle {:.1} ms median; ratio {:.1}",
        ours_step.0 * 1e3,
        flops_step / ours_step.0 / 1e9,
        ours_step.1 * 1e3,
        flops_step / ours_step.1 / 1e9,
        candle_step.0 * 1e3,
        candle_step.0 / ours_step.0
    );
    Ok(())
}
