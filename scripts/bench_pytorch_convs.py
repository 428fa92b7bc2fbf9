"""PyTorch's CPU convolutions (oneDNN) alone, per layer shape, on the shapes of
examples/bench_conv_lanes.rs: forward, input gradient and weight gradient, each timed alone.

This measures the oneDNN route of issue 14 without building it: PyTorch's CPU convolution is
oneDNN's, so these are the times our layers would take behind oneDNN primitives (less PyTorch's
dispatch, which at these sizes is noise). Compare with

    cargo run --release --example bench_conv_lanes -- --model vgg16

Run with the benchmark venv and the tuned allocator (scripts/bench-vs-pytorch.sh sets both up):

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184 \\
        .venv-bench/bin/python scripts/bench_pytorch_convs.py --model vgg16 --threads 2
"""

import argparse
import time

import torch

# (Cin, Cout, H = W, stride, how many a forward has): the tables of examples/bench_conv_lanes.rs.
SHAPES = {
    "resnet20": [
        (3, 16, 32, 1, 1),
        (16, 16, 32, 1, 6),
        (16, 32, 32, 2, 1),
        (32, 32, 16, 1, 5),
        (32, 64, 16, 2, 1),
        (64, 64, 8, 1, 5),
    ],
    "vgg16": [
        (3, 64, 32, 1, 1),
        (64, 64, 32, 1, 1),
        (64, 128, 16, 1, 1),
        (128, 128, 16, 1, 1),
        (128, 256, 8, 1, 1),
        (256, 256, 8, 1, 2),
        (256, 512, 4, 1, 1),
        (512, 512, 4, 1, 2),
        (512, 512, 2, 1, 3),
    ],
}


def median_seconds(f, reps):
    f()
    t = []
    for _ in range(reps):
        a = time.perf_counter()
        f()
        t.append(time.perf_counter() - a)
    t.sort()
    return t[len(t) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(SHAPES), default="vgg16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n = args.batch
    print(f"PyTorch {torch.__version__}, batch {n}, {args.threads} threads, median of {args.reps}; ms [GFLOP/s]")
    print(f"{'shape':<22} {'forward':>16} {'dX':>16} {'dW':>16}")
    totals = [0.0, 0.0, 0.0]
    for cin, cout, hw, stride, count in SHAPES[args.model]:
        ho = (hw + 2 - 3) // stride + 1
        flops = 2.0 * cout * cin * 9 * ho * ho * n
        x = torch.randn(n, cin, hw, hw)
        w = torch.randn(cout, cin, 3, 3) * 0.1
        dy = torch.randn(n, cout, ho, ho)

        def grads(mask):
            return torch.ops.aten.convolution_backward(
                dy, x, w, None, [stride] * 2, [1, 1], [1, 1], False, [0, 0], 1, mask
            )

        times = [
            median_seconds(lambda: torch.nn.functional.conv2d(x, w, stride=stride, padding=1), args.reps),
            median_seconds(lambda: grads([True, False, False]), args.reps),
            median_seconds(lambda: grads([False, True, False]), args.reps),
        ]
        cells = " ".join(f"{t * 1e3:>7.2f} [{flops / t / 1e9:>5.1f}]" for t in times)
        print(f"{f'{cin}->{cout} {hw}x{hw} s{stride} (x{count})':<22} {cells}")
        for i, t in enumerate(times):
            totals[i] += count * t
    print(
        "one step's convolutions: forward {:.1f} ms, dX {:.1f} ms, dW {:.1f} ms".format(
            *(t * 1e3 for t in totals)
        )
    )


if __name__ == "__main__":
    main()
