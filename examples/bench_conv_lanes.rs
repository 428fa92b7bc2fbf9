//! Our convolution's three passes on a model's shapes at batch 128 (forward, input gradient,
//! weight gradient; scripts/bench_pytorch_convs.py times PyTorch's on the same shapes), each
//! beside the path it took before its channel-lane kernel (`conv_cf` for the forward and input
//! gradient, `conv_wgrad` for the weight gradient; before: direct pixel lanes or im2col + GEMM),
//! alternated call by call so that both see the same machine.
//! Runs inside a rayon pool like a worker. GFLOP/s count 2*Cout*Cin*k*k*Ho*Wo*N.
//!
//! cargo run --release --example bench_conv_lanes [-- --model resnet20|vgg16|cnn --threads T --batch N --reps R
//!     --only LABEL --before path|padding]
//! LABEL: the shapes whose label contains it, e.g. "512->512 4x4". `--before padding` compares
//! the forward and input gradient with the channel-lane kernel computing the taps on the padding
//! (the default, `path`, with the path taken before the channel-lane kernel).

use std::time::Instant;

use candle_core::{Device, Tensor};

// The trainer's allocator (outputs of these sizes are allocated and freed every call).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use grawa_train::ops::conv::{
    conv2d, set_channel_fwd, set_channel_wgrad, set_skip_padding, Conv2dBwdInput, Conv2dBwdWeight,
};

/// (Cin, Cout, H = W, stride, how many a forward has); padding 1 except for the CNN (0).
type Shape = (usize, usize, usize, usize, usize);

const RESNET20: &[Shape] = &[
    (3, 16, 32, 1, 1),
    (16, 16, 32, 1, 6),
    (16, 32, 32, 2, 1),
    (32, 32, 16, 1, 5),
    (32, 64, 16, 2, 1),
    (64, 64, 8, 1, 5),
];

/// The CNN's two convolutions (3x3 without padding, MNIST's 28x28).
const CNN: &[Shape] = &[(1, 32, 28, 1, 1), (32, 64, 13, 1, 1)];

const VGG16: &[Shape] = &[
    (3, 64, 32, 1, 1),
    (64, 64, 32, 1, 1),
    (64, 128, 16, 1, 1),
    (128, 128, 16, 1, 1),
    (128, 256, 8, 1, 1),
    (256, 256, 8, 1, 2),
    (256, 512, 4, 1, 1),
    (512, 512, 4, 1, 2),
    (512, 512, 2, 1, 3),
];

fn arg<'a>(args: &'a [String], name: &str, default: &'a str) -> &'a str {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |s| s.as_str())
}

fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    t[t.len() / 2]
}

fn main() -> candle_core::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let model = arg(&args, "--model", "resnet20").to_string();
    let threads: usize = arg(&args, "--threads", "2").parse().expect("--threads");
    let n: usize = arg(&args, "--batch", "128").parse().expect("--batch");
    let reps: usize = arg(&args, "--reps", "5").parse().expect("--reps");
    let shapes = match model.as_str() {
        "resnet20" => RESNET20,
        "vgg16" => VGG16,
        "cnn" => CNN,
        m => panic!("--model {m}: expected resnet20, vgg16 or cnn"),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool");
    let only = arg(&args, "--only", "");
    let before_padding = match arg(&args, "--before", "path") {
        "path" => false,
        "padding" => true,
        b => panic!("--before {b}: expected path or padding"),
    };
    let shapes: Vec<Shape> = shapes
        .iter()
        .copied()
        .filter(|s| label(s).contains(only))
        .collect();
    let pad = usize::from(model != "cnn");
    pool.install(|| run(&shapes, pad, n, reps.max(1), threads, before_padding))
}

/// A shape's row label, e.g. "512->512 4x4 s1 (x2)".
fn label(&(cin, cout, hw, stride, count): &Shape) -> String {
    format!("{cin}->{cout} {hw}x{hw} s{stride} (x{count})")
}

fn run(
    shapes: &[Shape],
    pad: usize,
    n: usize,
    reps: usize,
    threads: usize,
    before_padding: bool,
) -> candle_core::Result<()> {
    let dev = Device::Cpu;
    println!("batch {n}, {threads} threads, median of {reps} alternated calls; ms [GFLOP/s]");
    println!(
        "{:<22} {:>16} {:>8} {:>16} {:>8} {:>16} {:>16} {:>7}",
        "shape", "forward", "before", "dX", "before", "dW", "dW before", "before/new"
    );
    let (mut new_total, mut old_total) = (0.0, 0.0);
    let (mut fwd_total, mut dx_total) = (0.0, 0.0);
    let (mut fwd_before, mut dx_before) = (0.0, 0.0);
    for &(cin, cout, hw, stride, count) in shapes {
        let k = 3;
        let ho = (hw + 2 * pad - k) / stride + 1;
        let flops = 2.0 * (cout * cin * k * k * ho * ho * n) as f64;
        let x = Tensor::randn(0f32, 1.0, (n, cin, hw, hw), &dev)?;
        let w = Tensor::randn(0f32, 0.1, (cout, cin, k, k), &dev)?;
        let dy = Tensor::randn(0f32, 1.0, (n, cout, ho, ho), &dev)?;
        let op = Conv2dBwdWeight {
            stride,
            padding: pad,
            kh: k,
            kw: k,
        };
        let timed = |f: &dyn Fn()| {
            let a = Instant::now();
            f();
            a.elapsed().as_secs_f64()
        };
        let fwd = || {
            conv2d(&x, &w, None, stride, pad).unwrap();
        };
        let dw = || {
            x.apply_op2_no_bwd(&dy, &op).unwrap();
        };
        let op_dx = Conv2dBwdInput {
            stride,
            padding: pad,
            h: hw,
            w: hw,
        };
        let dx = || {
            dy.apply_op2_no_bwd(&w, &op_dx).unwrap();
        };
        let (mut tf, mut tn, mut to, mut tx) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut tfb, mut txb) = (Vec::new(), Vec::new());
        for rep in 0..=reps {
            let f = timed(&fwd);
            let xg = timed(&dx);
            let before = |on: bool| {
                if before_padding {
                    set_skip_padding(on)
                } else {
                    set_channel_fwd(on)
                }
            };
            before(false);
            let fb = timed(&fwd);
            let xgb = timed(&dx);
            before(true);
            if rep > 0 {
                tfb.push(fb);
                txb.push(xgb);
            }
            set_channel_wgrad(true);
            let a = timed(&dw);
            set_channel_wgrad(false);
            let b = timed(&dw);
            set_channel_wgrad(true);
            // The first round warms the scratch buffers.
            if rep > 0 {
                tf.push(f);
                tx.push(xg);
                tn.push(a);
                to.push(b);
            }
        }
        let (f, a, b, xg) = (median(tf), median(tn), median(to), median(tx));
        let (fb, xgb) = (median(tfb), median(txb));
        let gf = |t: f64| flops / t / 1e9;
        println!(
            "{:<22} {:>7.2} [{:>5.1}] {:>8.2} {:>7.2} [{:>5.1}] {:>8.2} {:>7.2} [{:>5.1}] {:>7.2} [{:>5.1}] {:>7.2}",
            label(&(cin, cout, hw, stride, count)),
            f * 1e3,
            gf(f),
            fb * 1e3,
            xg * 1e3,
            gf(xg),
            xgb * 1e3,
            a * 1e3,
            gf(a),
            b * 1e3,
            gf(b),
            b / a
        );
        new_total += count as f64 * a;
        fwd_total += count as f64 * f;
        dx_total += count as f64 * xg;
        fwd_before += count as f64 * fb;
        dx_before += count as f64 * xgb;
        old_total += count as f64 * b;
    }
    println!(
        "one step's convolutions: forward {:.1} ms, dX {:.1} ms, dW {:.1} ms",
        fwd_total * 1e3,
        dx_total * 1e3,
        new_total * 1e3
    );
    println!(
        "before ({}): forward {:.1} ms, dX {:.1} ms",
        if before_padding {
            "computing the taps on the padding"
        } else {
            "the path before the channel-lane forward"
        },
        fwd_before * 1e3,
        dx_before * 1e3
    );
    println!(
        "weight gradients of one step: default {:.1} ms, before the channel-lane kernel {:.1} ms, \
         ratio {:.2}",
        new_total * 1e3,
        old_total * 1e3,
        old_total / new_total
    );
    Ok(())
}
