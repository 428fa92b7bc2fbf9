#!/usr/bin/env bash
# Training-step throughput of grawa-train against PyTorch on the CPU, side by side from one run:
# the same models, batch, optimizer (SGD momentum 0.9, Nesterov, weight decay 5e-4), threads,
# warm-up and windows on both sides (`grawa-train bench` and scripts/bench_pytorch.py), one after
# the other, never at the same time.
#
#   scripts/bench-vs-pytorch.sh --setup --models ""        # once: PyTorch into .venv-bench/ (~4 GB)
#   scripts/bench-vs-pytorch.sh [--models "mlp cnn resnet20"] [--batch 128] [--threads 2]
#                               [--warmup 3] [--windows 5] [--window-secs 3] [--workers M]
#                               [--raw FILE] [--wait-idle] [--untuned-peer] [--rounds R]
#
# PyTorch runs with a tuned glibc allocator by default (GLIBC_TUNABLES below: large blocks stay
# mapped and untrimmed, so a step does not page-fault its activations back in), since our binary
# runs on mimalloc and an untuned peer would pay up to 2x in page faults. --untuned-peer runs it
# with glibc's defaults instead.
# --workers M adds a table of grawa-train alone: M workers (each with threads/M threads, as in
# training) against one worker with all the threads, in total images/s.
# --rounds R measures each model's pair R times, alternating ours and PyTorch (A B A B ...), so
# that both sides see the same drifts of a shared host; the table then gives the medians over
# rounds, the ratio as the median of the rounds' ratios, each round's ratio with its `others`,
# and the largest `others` of any round.
# --raw FILE appends every JSON line measured to FILE. BENCH_VENV=DIR uses another venv.
# The `others` column is the CPU that other processes used while a row was measured, in % of all
# cores, for each side: well above 0 means the cores were shared and the number is suspect.
# --wait-idle waits (up to 10 minutes) before each measurement until the cores are idle.
# PyTorch stays out of the build and the tests: only this script and bench_pytorch.py use it.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${BENCH_VENV:-.venv-bench}
SETUP=0
MODELS="mlp cnn resnet20"
BATCH=128
THREADS=$(nproc)
WARMUP=3
WINDOWS=5
WINDOW_SECS=3
WORKERS=""
RAW=""
WAIT_IDLE=0
ROUNDS=1
PEER_TUNABLES="glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
need() { [[ $# -ge 2 && -n "$2" ]] || { echo "bench-vs-pytorch.sh: $1 needs a value" >&2; exit 2; }; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --setup) SETUP=1; shift ;;
    --models) [[ $# -ge 2 ]] || need "$@"; MODELS="$2"; shift 2 ;;
    --batch) need "$@"; BATCH="$2"; shift 2 ;;
    --threads) need "$@"; THREADS="$2"; shift 2 ;;
    --warmup) need "$@"; WARMUP="$2"; shift 2 ;;
    --windows) need "$@"; WINDOWS="$2"; shift 2 ;;
    --window-secs) need "$@"; WINDOW_SECS="$2"; shift 2 ;;
    --workers) need "$@"; WORKERS="$2"; shift 2 ;;
    --raw) need "$@"; RAW="$2"; shift 2 ;;
    --wait-idle) WAIT_IDLE=1; shift ;;
    --untuned-peer) PEER_TUNABLES=""; shift ;;
    --rounds) need "$@"; ROUNDS="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench-vs-pytorch.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for m in $MODELS; do
  case "$m" in mlp|cnn|resnet20|vgg16|wrn16-8|densenet121) ;; *) echo "bench-vs-pytorch.sh: --models: unknown model '$m' (mlp, cnn, resnet20, vgg16, wrn16-8, densenet121)" >&2; exit 2 ;; esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "bench-vs-pytorch.sh: --rounds: expected a whole number of 1 or more, got '$ROUNDS'" >&2; exit 2; }

if [[ $SETUP == 1 ]]; then
  # PyPI's torch for Linux x86_64 is the CUDA build: it needs its nvidia-* wheels even to import
  # (a --no-deps install fails with "libcublasLt.so not found"), so there is no CPU-only install
  # from PyPI. Triton (1 GB) is only for torch.compile and GPU kernels; eager CPU training runs
  # without it, so it is removed again.
  start=$(date +%s)
  [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --no-cache-dir --progress-bar off torch
  "$VENV/bin/pip" uninstall --quiet --yes triton || true
  echo "PyTorch in $VENV: $(du -sh "$VENV" | cut -f1), set up in $(( $(date +%s) - start )) s" >&2
fi

if ! [[ -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c 'import warnings; warnings.simplefilter("ignore"); import torch' 2>/dev/null; then
  echo "bench-vs-pytorch.sh: no PyTorch in $VENV; create it with: scripts/bench-vs-pytorch.sh --setup (pip install torch into $VENV/, about 4 GB; delete the folder afterwards)" >&2
  exit 2
fi

[[ -n ${MODELS// /} ]] || exit 0   # --setup --models "": only the venv
cargo build --release --quiet
BIN=target/release/grawa-train
COMMON=(--batch "$BATCH" --threads "$THREADS" --warmup "$WARMUP" --windows "$WINDOWS" --window-secs "$WINDOW_SECS")
LINES=$(mktemp)
trap 'rm -f "$LINES"' EXIT

NCPU=$(nproc)
HZ=$(getconf CLK_TCK)
busy_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
wait_idle() { # until the cores are less than 10% busy over a second (10 minutes at most)
  [[ $WAIT_IDLE == 1 ]] || return 0
  local i b0 b1
  for ((i = 0; i < 600; i++)); do
    b0=$(busy_jiffies); sleep 1; b1=$(busy_jiffies)
    (( (b1 - b0) * 100 < 10 * HZ * NCPU )) && return 0
  done
  echo "bench-vs-pytorch.sh: the cores stayed busy; measuring anyway" >&2
}
# measure TAG COMMAND...: runs it, keeps its JSON line and the share of the cores others used.
measure() {
  local tag=$1 tf out b0 b1 wall user sys others
  shift
  wait_idle
  tf=$(mktemp)
  b0=$(busy_jiffies)
  { TIMEFORMAT='%R %U %S'; time "$@" > "$tf.out" 2>&3; } 3>&2 2> "$tf"
  b1=$(busy_jiffies)
  read -r wall user sys < "$tf"
  out=$(cat "$tf.out")
  rm -f "$tf" "$tf.out"
  others=$(awk -v d=$((b1 - b0)) -v hz="$HZ" -v u="$user" -v s="$sys" -v w="$wall" -v n="$NCPU" \
    'BEGIN { o = 100 * (d / hz - u - s) / (w * n); if (o < 0) o = 0; printf "%.0f", o }')
  echo "{\"tag\": \"$tag\", \"others\": $others, \"result\": $out}" >> "$LINES"
  [[ -z $RAW ]] || echo "$out" >> "$RAW"
}

if [[ -n $PEER_TUNABLES ]]; then
  echo "PyTorch's allocator: tuned, GLIBC_TUNABLES=$PEER_TUNABLES (--untuned-peer for glibc's defaults)"
else
  echo "PyTorch's allocator: glibc's defaults (untuned peer)"
fi
for m in $MODELS; do
  for ((round = 1; round <= ROUNDS; round++)); do
    echo "== $m: grawa-train (round $round of $ROUNDS)" >&2
    measure ours "$BIN" bench --model "$m" "${COMMON[@]}" --json
    echo "== $m: pytorch (round $round of $ROUNDS)" >&2
    GLIBC_TUNABLES="$PEER_TUNABLES" OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" \
      measure pytorch "$VENV/bin/python" scripts/bench_pytorch.py --model "$m" "${COMMON[@]}" --json
  done
  if [[ -n $WORKERS && $WORKERS != 1 ]]; then
    echo "== $m: grawa-train, $WORKERS workers" >&2
    measure workers "$BIN" bench --model "$m" "${COMMON[@]}" --workers "$WORKERS" --json
  fi
done

python3 - "$LINES" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def find_all(tag, model):
    return [r for r in rows if r["tag"] == tag and r["result"]["model"] == model]
models = list(dict.fromkeys(r["result"]["model"] for r in rows))
mb = lambda v: "-" if v is None else f"{v:.0f}"
med = statistics.median
rounds = max((len(find_all("ours", m)) for m in models), default=1)
def side(runs):
    """One side of a model over its rounds: medians of the rounds, extremes of every window."""
    rs = [r["result"] for r in runs]
    pick = lambda k: med([r[k] for r in rs])
    return {
        "ips": pick("images_per_second"),
        "min": min(r["images_per_second_min"] for r in rs),
        "max": max(r["images_per_second_max"] for r in rs),
        "split": f"{pick('fwd_ms'):.1f} / {pick('bwd_ms'):.1f} / {pick('opt_ms'):.1f}",
        "gflops": pick("gflops"),
        "rss": max((r["peak_rss_mb"] for r in rs if r.get("peak_rss_mb") is not None), default=None),
        "import": rs[0].get("rss_after_import_mb"),
        "others": max(r["others"] for r in runs),
    }
extra = " ours/PyTorch by round (others %) |" if rounds > 1 else ""
print("| model | batch | threads | ours img/s (min-max) | PyTorch img/s (min-max) | ours/PyTorch | ours fwd/bwd/opt ms | PyTorch fwd/bwd/opt ms | ours GFLOP/s | PyTorch GFLOP/s | ours peak RSS MiB | PyTorch peak RSS MiB (after import) | others % (ours / PyTorch) |" + extra)
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if rounds > 1 else ""))
for m in models:
    ours, peer = find_all("ours", m), find_all("pytorch", m)
    if not ours or not peer:
        continue
    a, b = side(ours), side(peer)
    first = ours[0]["result"]
    by_round = [o["result"]["images_per_second"] / p["result"]["images_per_second"] for o, p in zip(ours, peer)]
    line = (f"| {m} | {first['batch']} | {first['threads']} | {a['ips']:.1f} ({a['min']:.1f}-{a['max']:.1f}) "
            f"| {b['ips']:.1f} ({b['min']:.1f}-{b['max']:.1f}) "
            f"| {med(by_round):.2f} | {a['split']} | {b['split']} | {a['gflops']:.1f} | {b['gflops']:.1f} "
            f"| {mb(a['rss'])} | {mb(b['rss'])} ({mb(b['import'])}) | {a['others']} / {b['others']} |")
    if rounds > 1:
        line += " " + ", ".join(f"{r:.2f} ({o['others']}/{q['others']})"
                                for r, o, q in zip(by_round, ours, peer)) + " |"
    print(line)
many = [r for r in rows if r["tag"] == "workers"]
if many:
    print()
    print("| model | batch | threads | 1 worker img/s | workers | total img/s (min-max) | ratio | peak RSS MiB | others % |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in many:
        w = r["result"]
        one = side(find_all("ours", w["model"]))["ips"]
        print(f"| {w['model']} | {w['batch']} | {w['threads']} | {one:.1f} | {w['workers']} "
              f"| {w['images_per_second']:.1f} ({w['images_per_second_min']:.1f}-{w['images_per_second_max']:.1f}) "
              f"| {w['images_per_second'] / one:.2f} | {mb(w['peak_rss_mb'])} | {r['others']} |")
EOF
