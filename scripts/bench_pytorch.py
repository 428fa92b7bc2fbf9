#!/usr/bin/env python3
"""PyTorch twin of `grawa-train bench`: the same models, random batch shapes, optimizer, warm-up,
windows and timing method, and the same JSON line (framework "pytorch"). Needs torch; run it from
the venv that `scripts/bench-vs-pytorch.sh --setup` makes. Not part of the build or the tests.

    python scripts/bench_pytorch.py --model resnet20 --batch 128 --threads 2 --json

Timing, as in src/bench: each step is forward + cross-entropy | backward + loss.item() |
optimizer.step() + zero_grad; after --warmup untimed steps the run is cut into --windows windows of
--window-secs seconds (or --steps steps); a window's images/s counts finished steps plus the elapsed
fraction of the step under way at each edge. GFLOP/s: conv 2*Cout*Cin*k*k*Ho*Wo and linear
2*in*out per image (counted here from forward hooks), times 3 for forward plus backward. Peak
memory: VmHWM of /proc/self/status (also VmRSS right after `import torch`, which the CUDA
build from PyPI inflates).
"""

import argparse
import bisect
import json
import os
import statistics
import sys
import time
import warnings

# The CUDA wheel from PyPI warns when numpy is absent; nothing here needs numpy.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def rss_mb(field):
    """A memory line of /proc/self/status (VmRSS, VmHWM) in MiB, or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


# The CUDA build of torch maps and touches its GPU libraries at import: record that floor.
RSS_AFTER_IMPORT_MB = rss_mb("VmRSS")

CLASSES = 10
LR = 0.01
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
SHAPES = {
    "mlp": (1, 28, 28),
    "cnn": (1, 28, 28),
    "resnet20": (3, 32, 32),
    "vgg16": (3, 32, 32),
    "wrn16-8": (3, 32, 32),
    "densenet121": (3, 32, 32),
}


class Mlp(nn.Module):
    """src/model/mlp.rs: input -> 256 -> ReLU -> classes."""

    def __init__(self, in_dim, classes):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, 256)
        self.fc2 = nn.Linear(256, classes)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class Cnn(nn.Module):
    """src/model/cnn.rs: conv3x3(32, no pad) BN ReLU maxpool2, conv3x3(64) BN ReLU maxpool2,
    fc 128 ReLU, fc classes."""

    def __init__(self, channels, side, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 32, 3)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.bn2 = nn.BatchNorm2d(64)
        feat = ((side - 2) // 2 - 2) // 2
        self.fc1 = nn.Linear(64 * feat * feat, 128)
        self.fc2 = nn.Linear(128, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class BasicBlock(nn.Module):
    """src/model/resnet.rs: conv-BN-ReLU-conv-BN plus the option-A shortcut, then ReLU."""

    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = planes // 4 if (stride != 1 or in_planes != planes) else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.pad is None:
            short = x
        else:
            short = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + short)


class ResNet20(nn.Module):
    """ResNet-20 with option-A shortcuts (akamaster/pytorch_resnet_cifar10), kaiming_normal_."""

    def __init__(self, channels, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, in_planes = [], 16
        for stage, planes in enumerate([16, 32, 64]):
            for b in range(3):
                stride = 2 if stage > 0 and b == 0 else 1
                blocks.append(BasicBlock(in_planes, planes, stride))
                in_planes = planes
        self.blocks = nn.Sequential(*blocks)
        self.linear = nn.Linear(64, classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        out = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.linear(out.mean((2, 3)))


VGG16_CFG = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0]


class Vgg16(nn.Module):
    """src/model/vgg.rs: 13 conv3x3(bias)-BN-ReLU, 5 max-pools, Linear(512 -> classes)."""

    def __init__(self, channels, side, classes):
        super().__init__()
        layers, cin = [], channels
        for c in VGG16_CFG:
            if c == 0:
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(cin, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
                cin = c
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512 * (side // 32) ** 2, classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class WideBlock(nn.Module):
    """src/model/wrn.rs: BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus the identity, or a 1x1 projection
    of the pre-activated input when channels or stride change (the Wide ResNet authors' code)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        projects = cin != cout or stride != 1
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, 0, bias=False) if projects else None

    def forward(self, x):
        act = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(act))))
        return out + (x if self.shortcut is None else self.shortcut(act))


class WideResNet(nn.Module):
    """WRN-16-8 (Zagoruyko and Komodakis): 16 -> 128/256/512 channels, 2 blocks per group, dropout
    0, global average pooling; 10,961,370 parameters for 10 classes."""

    def __init__(self, channels, classes, depth=16, widen=8):
        super().__init__()
        n = (depth - 4) // 6
        self.conv1 = nn.Conv2d(channels, 16, 3, 1, 1, bias=False)
        blocks, cin = [], 16
        for g, width in enumerate([16 * widen, 32 * widen, 64 * widen]):
            for b in range(n):
                blocks.append(WideBlock(cin, width, 2 if g > 0 and b == 0 else 1))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, classes)
        init_like_ours(self)

    def forward(self, x):
        out = F.relu(self.bn(self.blocks(self.conv1(x))))
        return self.fc(out.mean((2, 3)))


class DenseLayer(nn.Module):
    def __init__(self, cin, growth):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, 1, 1, bias=False)

    def forward(self, x):
        new = self.conv2(F.relu(self.norm2(self.conv1(F.relu(self.norm1(x))))))
        return torch.cat([x, new], 1)


class DenseNet121(nn.Module):
    """src/model/densenet.rs, the CIFAR DenseNet-121: growth 32, blocks 6-12-24-16, bottleneck
    4*growth, compression 0.5, a 3x3 stem of 64 channels, no max-pool, global average pooling;
    6,956,298 parameters for 10 classes."""

    def __init__(self, channels, classes, growth=32, blocks=(6, 12, 24, 16)):
        super().__init__()
        layers, c = [nn.Conv2d(channels, 2 * growth, 3, 1, 1, bias=False)], 2 * growth
        for b, n in enumerate(blocks):
            for _ in range(n):
                layers.append(DenseLayer(c, growth))
                c += growth
            if b + 1 < len(blocks):
                layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False), nn.AvgPool2d(2)]
                c //= 2
        layers += [nn.BatchNorm2d(c), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, classes)
        init_like_ours(self)

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


def init_like_ours(net):
    """src/model/layers.rs: convolutions kaiming_normal_(fan_out), BatchNorm 1 and 0, Linear's
    bias 0 (its weight keeps PyTorch's default)."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)


def build(model):
    c, h, w = SHAPES[model]
    if model == "mlp":
        return Mlp(c * h * w, CLASSES)
    if model == "cnn":
        return Cnn(c, h, CLASSES)
    if model == "resnet20":
        return ResNet20(c, CLASSES)
    if model == "wrn16-8":
        return WideResNet(c, CLASSES)
    if model == "densenet121":
        return DenseNet121(c, CLASSES)
    return Vgg16(c, h, CLASSES)


def forward_flops(net, shape):
    """2 x multiply-accumulates of every Conv2d and Linear for one image, from forward hooks."""
    total = [0]

    def hook(mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            total[0] += 2 * mod.out_channels * (mod.in_channels // mod.groups) * kh * kw * out.shape[2] * out.shape[3]
        elif isinstance(mod, nn.Linear):
            total[0] += 2 * mod.in_features * mod.out_features

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, *shape))
    net.train()
    for h in handles:
        h.remove()
    return total[0]


def progress(ends, t):
    """Steps done by time t: finished ones plus the elapsed fraction of the one under way."""
    if t <= 0:
        return 0.0
    done = bisect.bisect_right(ends, t)
    if done == len(ends):
        return float(done)
    begin = ends[done - 1] if done > 0 else 0.0
    span = ends[done] - begin
    part = (t - begin) / span if span > 0 else 0.0
    return done + min(max(part, 0.0), 1.0)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=list(SHAPES), default="resnet20")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--window-secs", type=float, default=3.0)
    p.add_argument("--steps", type=int, default=None, help="steps per window instead of --window-secs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    for flag in ("batch", "threads", "windows"):
        if getattr(a, flag) < 1:
            p.error(f"--{flag} {getattr(a, flag)}: must be at least 1")
    if a.steps is not None and a.steps < 1:
        p.error(f"--steps {a.steps}: must be at least 1")
    if a.steps is None and not a.window_secs > 0:
        p.error(f"--window-secs {a.window_secs}: must be a positive number of seconds")

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    shape = SHAPES[a.model]
    net = build(a.model)
    net.train()
    fwd_flops = forward_flops(net, shape)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True, weight_decay=WEIGHT_DECAY)
    x = torch.randn(a.batch, *shape)
    y = torch.randint(0, CLASSES, (a.batch,))

    def step():
        t0 = time.perf_counter()
        loss = F.cross_entropy(net(x), y)
        t1 = time.perf_counter()
        loss.backward()
        value = loss.item()
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        del loss
        t3 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t2, value

    if not a.json:
        window = f"{a.steps} steps" if a.steps else f"{a.window_secs:g} s"
        print(f"pytorch bench {a.model}: batch {a.batch}, {a.threads} threads, {a.warmup} warm-up steps, "
              f"{a.windows} windows of {window} (torch {torch.__version__})", file=sys.stderr)
    for _ in range(a.warmup):
        step()
    records = []
    start = time.perf_counter()
    total = None if a.steps else a.windows * a.window_secs
    while True:
        if a.steps and len(records) >= a.steps * a.windows:
            break
        if total is not None and time.perf_counter() - start >= total:
            break
        f, b, o, value = step()
        records.append((time.perf_counter() - start, f, b, o, value))
    ends = [r[0] for r in records]
    if a.steps:
        edges = [0.0] + [ends[w * a.steps - 1] for w in range(1, a.windows + 1)]
        seconds = ends[-1]
    else:
        edges = [i * a.window_secs for i in range(a.windows + 1)]
        seconds = total
    rates = [(progress(ends, e1) - progress(ends, e0)) / max(e1 - e0, 1e-12) * a.batch
             for e0, e1 in zip(edges, edges[1:])]
    n = len(records)
    fwd_ms = 1e3 * sum(r[1] for r in records) / n
    bwd_ms = 1e3 * sum(r[2] for r in records) / n
    opt_ms = 1e3 * sum(r[3] for r in records) / n
    median = statistics.median(rates)
    report = {
        "framework": "pytorch",
        "model": a.model,
        "batch": a.batch,
        "threads": a.threads,
        "workers": 1,
        "warmup": a.warmup,
        "windows": a.windows,
        "window_secs": None if a.steps else a.window_secs,
        "steps_per_window": a.steps,
        "steps": n,
        "seconds": seconds,
        "images_per_second": median,
        "images_per_second_min": min(rates),
        "images_per_second_max": max(rates),
        "fwd_ms": fwd_ms,
        "bwd_ms": bwd_ms,
        "opt_ms": opt_ms,
        "step_ms": fwd_ms + bwd_ms + opt_ms,
        "peak_rss_mb": rss_mb("VmHWM"),
        "rss_after_import_mb": RSS_AFTER_IMPORT_MB,
        "forward_flops_per_image": fwd_flops,
        "gflops": 3 * fwd_flops * median / 1e9,
        "last_loss": records[-1][4],
        "torch_version": torch.__version__,
    }
    if a.json:
        print(json.dumps(report))
        return
    step_ms = report["step_ms"]
    print(f"model {a.model}  batch {a.batch}  threads {a.threads}  workers 1  ({n} timed steps in {seconds:.1f} s)")
    print(f"images/s    median {median:.1f}  min {min(rates):.1f}  max {max(rates):.1f}  (over {a.windows} windows)")
    print(f"ms/step     forward {fwd_ms:.2f} ({100 * fwd_ms / step_ms:.0f}%)  backward {bwd_ms:.2f} "
          f"({100 * bwd_ms / step_ms:.0f}%)  optimizer {opt_ms:.2f} ({100 * opt_ms / step_ms:.0f}%)  total {step_ms:.2f}")
    rss = report["peak_rss_mb"]
    base = report["rss_after_import_mb"]
    print(f"peak RSS    {'unknown' if rss is None else f'{rss:.0f} MiB'}"
          f"{'' if base is None else f'  ({base:.0f} MiB of it right after import torch)'}")
    print(f"compute     {report['gflops']:.2f} GFLOP/s  ({fwd_flops / 1e6:.2f} MFLOP forward per image, x3 for a training step)")


if __name__ == "__main__":
    main()
