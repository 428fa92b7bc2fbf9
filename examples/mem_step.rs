//! Where a training step's memory goes: live heap bytes (a counting wrapper around the trainer's
//! allocator, mimalloc) after the forward, at the backward's peak, after the backward and after
//! the optimizer step, and the process's resident set after each step. One worker on one thread.
//!
//!     cargo run --release --example mem_step [-- --model resnet20|vgg16|cnn --batch 128 --steps 3]
//!
//! The live bytes are what the step holds; the resident set adds the allocator's free memory and
//! the binary. `grawa-train bench` reports the peak resident set (VmHWM) of the real trainer.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{Device, Tensor};
use grawa_train::bench::runner::{LR, SGD};
use grawa_train::model::{Model, ModelKind};
use grawa_train::optim::Sgd;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if new > l.size() {
            let now = LIVE.fetch_add(new - l.size(), Ordering::Relaxed) + new - l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(l.size() - new, Ordering::Relaxed);
        }
        unsafe { mimalloc::MiMalloc.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn mib(b: usize) -> f64 {
    b as f64 / (1 << 20) as f64
}

fn rss() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<f64>()
        .unwrap()
        / 1024.0
}

fn main() -> candle_core::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let get = |k: &str, d: &str| {
        args.iter()
            .position(|a| a == k)
            .map(|i| args[i + 1].clone())
            .unwrap_or(d.to_string())
    };
    let kind: ModelKind = match get("--model", "resnet20").as_str() {
        "vgg16" => ModelKind::Vgg16,
        "cnn" => ModelKind::Cnn,
        _ => ModelKind::Resnet20,
    };
    let batch: usize = get("--batch", "128").parse().unwrap();
    let steps: usize = get("--steps", "3").parse().unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| {
        let dev = Device::Cpu;
        let shape = kind.synthetic_shape();
        let net = Model::new(kind, shape, 10, 1, &dev).unwrap();
        let mut opt = Sgd::new(SGD, &net.params);
        let x = Tensor::randn(0f32, 1., (batch, shape.channels, shape.height, shape.width), &dev)?;
        let y = Tensor::zeros(batch, candle_core::DType::U32, &dev)?;
        for s in 0..steps {
            let base = LIVE.load(Ordering::Relaxed);
            PEAK.store(base, Ordering::Relaxed);
            let logits = net.forward_t(&x, true)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            let fwd = LIVE.load(Ordering::Relaxed);
            let fwd_peak = PEAK.load(Ordering::Relaxed);
            let grads = loss.backward()?;
            let bwd_peak = PEAK.load(Ordering::Relaxed);
            let bwd = LIVE.load(Ordering::Relaxed);
            opt.step(&net.params, &grads, LR)?;
            drop((grads, loss, logits));
            println!(
                "step {s}: base {:.1}  after fwd {:.1} (fwd peak {:.1})  bwd peak {:.1}  after bwd {:.1}  after step {:.1} MiB live; rss {:.1}",
                mib(base), mib(fwd), mib(fwd_peak), mib(bwd_peak), mib(bwd), mib(LIVE.load(Ordering::Relaxed)), rss()
            );
        }
        Ok(())
    })
}
