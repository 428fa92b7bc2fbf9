#!/usr/bin/env bash
# Every GPU check of grawa-train in one device call, and its proof on a machine without a GPU.
#
#   scripts/gpu-check.sh                      # here: build the CUDA binaries (with and without
#                                             # NCCL) and the GPU test binaries, pack them as
#                                             # dist/gpu-check.tar.xz
#   scripts/gpu-check.sh --run PACK OUT       # on the GPU machine: every check, done in 540 s
#   scripts/gpu-check.sh --no-gpu OUT [PACK]  # here: the pack against CUDA 13's real runtime
#                                             # libraries and a driver stub with no GPU
#                                             # (scripts/gpu-nogpu.sh)
#   scripts/gpu-check.sh --print-runs         # the training runs' arguments, one per line
#   scripts/gpu-check.sh --print-plan         # every step: KIND BUILD NAME LIMIT [ARGS]
#
# With the device tool: build here, then one call
#   run(command='scripts/gpu-check.sh --run dist/gpu-check.tar.xz "$OUT"',
#       carry=["dist/gpu-check.tar.xz"], timeout_s=600)
# and copy the figures of summary.md into docs/gpu-runs.md.
#
# The run (docs/gpu-runs.md says what each step proves): the machine and its CUDA libraries
# (looked for where they usually are, scripts/gpu-libs.sh), `selftest`, the GPU test binaries,
# `--gpus 1 --workers 4` runs of every algorithm (with NCCL: `--round nccl` runs and NCCL's
# round test), a ResNet-20 run for images/s, and the round benchmarks, most telling first. One
# deadline for everything (GPU_CHECK_BUDGET, 540 s), each step capped by the time left
# (scripts/gpu-steps.sh); OUT gets summary.md (rewritten after every step, and from an exit trap
# whatever happens) and logs.tar.xz, and the short table of steps is the last thing printed.
# The CUDA JIT cache is /tmp/grawa-cuda-cache: candle's PTX is compiled once per machine.
set -uo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
# shellcheck source=scripts/gpu-steps.sh
source "$script_dir/gpu-steps.sh"
# shellcheck source=scripts/gpu-libs.sh
source "$script_dir/gpu-libs.sh"

TESTS="selftest_gpu buffer_parity gpu_round gpu_train"
NCCL_TESTS="gpu_round"
CARRY_LIMIT=$((64 * 1048576))
COMMON="--dataset synthetic --model cnn --gpus 1 --workers 4 --steps 200 --batch-size 64 --lr 0.05
--eval-every 100 --synthetic-train 8000 --synthetic-test 1000 --quiet"
COMMON=${COMMON//$'\n'/ }

# The steps in the order they run, most telling first: KIND BUILD NAME LIMIT [ARGS...].
# KIND: selftest, test (ARGS = the test binary), run (ARGS = grawa-train's flags), bench.
plan() {
    echo "selftest cuda selftest 90"
    echo "test cuda test-selftest_gpu 60 selftest_gpu"
    echo "test cuda test-buffer_parity 60 buffer_parity"
    echo "test cuda test-gpu_round 90 gpu_round"
    echo "test cuda test-gpu_train 150 gpu_train"
    echo "run cuda run-lgrawa 45 $COMMON --algo lgrawa"
    echo "run cuda run-ddp 45 $COMMON --algo ddp"
    echo "test nccl test-gpu_round-nccl 90 gpu_round"
    echo "run nccl run-nccl-lgrawa 45 $COMMON --algo lgrawa --round nccl"
    echo "run nccl run-nccl-ddp 45 $COMMON --algo ddp --round nccl"
    local algo
    for algo in mgrawa local-sgd easgd lsgd ddp-sam; do
        echo "run cuda run-$algo 45 $COMMON --algo $algo"
    done
    echo "run cuda run-resnet20 60 --dataset synthetic --model resnet20 --gpus 1 --workers 1" \
        "--steps 300 --batch-size 128 --eval-every 300 --synthetic-train 12800" \
        "--synthetic-test 1000 --quiet"
    echo "bench cuda bench-gpu-round 60"
    echo "bench nccl bench-gpu-round-nccl 60"
}

# Builds the binary, the round benchmark and test binaries TESTS with FEATURES into DIR.
build_into() {
    local features=$1 dir=$2 tests=$3
    mkdir -p "$dir/tests"
    cargo build --release --features "$features" --bin grawa-train --example bench_gpu_round >&2 || exit 1
    cp "$CARGO_TARGET_DIR/release/grawa-train" "$CARGO_TARGET_DIR/release/examples/bench_gpu_round" "$dir/"
    local args=()
    for t in $tests; do args+=(--test "$t"); done
    # The test binaries' paths, from cargo's own report of what it built.
    cargo test --release --features "$features" --no-run --message-format=json "${args[@]}" 2>/dev/null |
        python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])
' | while read -r name exe; do cp "$exe" "$dir/tests/$name"; done
    for t in $tests; do
        [[ -x "$dir/tests/$t" ]] || { echo "gpu-check: test binary $t ($features) was not built" >&2; exit 1; }
    done
    strip "$dir/grawa-train" "$dir/bench_gpu_round" "$dir"/tests/* 2>/dev/null || true
}

# The bytes that travel with the pack: every file of the work tree git does not ignore.
work_tree_bytes() {
    (cd "$repo_root" && git ls-files -co --exclude-standard -z | xargs -0 stat -c %s 2>/dev/null |
        awk '{s += $1} END {print s + 0}')
}

pack() {
    set -e
    eval "$("$script_dir/cuda-toolchain.sh")"
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo_root/target-cuda}"
    cd "$repo_root"
    local stage="$repo_root/dist/gpu-check" out="$repo_root/dist/gpu-check.tar.xz"
    rm -rf "$stage"
    build_into cuda "$stage" "$TESTS"
    # The NCCL build needs libnccl.so.2 where it runs: kept apart, so a machine without NCCL
    # still runs everything else.
    build_into nccl "$stage/nccl" "$NCCL_TESTS"
    # One stream with a dictionary larger than a binary: the binaries share most of their bytes
    # (candle's PTX, the library), which xz then stores once.
    # Written beside and renamed: a pack cut short (Ctrl-C, a time limit) never stands as one.
    rm -f "$out.tmp"
    XZ_OPT="--lzma2=preset=6,dict=192MiB -T1" tar -C "$repo_root/dist" -cJf "$out.tmp" gpu-check
    mv "$out.tmp" "$out"
    rm -rf "$stage"
    local bytes tree
    bytes=$(stat -c %s "$out")
    tree=$(work_tree_bytes)
    echo "gpu-check: dist/gpu-check.tar.xz $((bytes / 1048576)) MiB + work tree $((tree / 1048576)) MiB (the carry limit is 64 MiB for both)" >&2
    if ((bytes + tree >= CARRY_LIMIT)); then
        echo "gpu-check: too large to carry" >&2
        exit 1
    fi
    echo "$out"
}

# The machine, before anything runs (each probe time-limited: a broken driver can hang them).
describe_machine() {
    {
        date -u
        timeout 20 nvidia-smi -L 2>&1 || echo "nvidia-smi: not available"
        timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 || true
        echo "cores: $(nproc)  glibc: $(ldd --version 2>&1 | head -n1)"
    } >"$WORK/machine.txt" 2>&1
}

# Unpacks PACK into WORK/pack (xz through tar, or Python's tarfile where tar cannot read xz).
unpack() {
    mkdir -p "$WORK/pack"
    timeout 120 tar -C "$WORK/pack" -xf "$1" 2>/dev/null ||
        timeout 120 python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$1" "$WORK/pack"
}

# One line of plan() as a step, or skipped when its build cannot load.
run_planned() {
    local kind=$1 build=$2 name=$3 limit=$4
    shift 4
    local dir="$WORK/pack/gpu-check" missing=$CUDA_MISSING
    if [[ $build == nccl ]]; then
        dir="$dir/nccl"
        missing=$NCCL_MISSING
    fi
    if [[ -n "$missing" ]]; then
        record "$name" skipped 0 "cannot load: $missing missing"
        return
    fi
    # NCCL processes load kernels eagerly (src/cuda/loading.rs); the test binaries are told here.
    local env=(env)
    [[ $build == nccl ]] && env+=(CUDA_MODULE_LOADING=EAGER)
    case $kind in
        selftest) step "$name" "$limit" "${env[@]}" "$dir/grawa-train" selftest ;;
        test) step "$name" "$limit" "${env[@]}" "$dir/tests/$1" --test-threads 1 ;;
        run) step "$name" "$limit" "${env[@]}" "$dir/grawa-train" "$@" --out "$WORK/runs/$name" ;;
        bench) step "$name" "$limit" "${env[@]}" "$dir/bench_gpu_round" ;;
    esac
}

run_all() {
    local pack=$1
    OUT=$2
    WORK=$(mktemp -d /tmp/gpu-check.XXXXXX)
    SUMMARY_TITLE="GPU check"
    steps_begin "${GPU_CHECK_BUDGET:-540}"
    describe_machine
    write_summary
    if ! unpack "$pack"; then
        record unpack 1 0 "cannot unpack $pack"
        exit 1
    fi
    export CUDA_CACHE_PATH=/tmp/grawa-cuda-cache CUDA_CACHE_MAXSIZE=4294967296 RUST_BACKTRACE=1
    local dir="$WORK/pack/gpu-check"
    find_cuda_libs "$WORK/machine.txt" "$dir/grawa-train" "$dir/nccl/grawa-train"
    CUDA_MISSING=$(cuda_missing "$dir/grawa-train" | tr '\n' ' ' | sed 's/ $//')
    NCCL_MISSING=$(cuda_missing "$dir/nccl/grawa-train" | tr '\n' ' ' | sed 's/ $//')
    write_summary
    local line
    while read -r line; do
        # shellcheck disable=SC2086
        run_planned $line
    done < <(plan)
    steps_ok
}

# After the table in summary.md: the runs' figures and the tails that matter.
summary_extra() {
    [[ -d "$WORK/runs" ]] || return 0
    echo
    echo "## Runs (summary.json)"
    echo
    timeout 20 python3 - "$WORK/runs" <<'EOF' 2>&1
import json, pathlib, sys
print("| run | algo | workers | steps | rounds | test accuracy | images/s |")
print("|---|---|---|---|---|---|---|")
for d in sorted(pathlib.Path(sys.argv[1]).glob("*")):
    f = d / "summary.json"
    if not f.exists():
        print(f"| {d.name} | no summary.json | | | | | |")
        continue
    s = json.loads(f.read_text())
    print(f"| {d.name} | {s.get('algo')} | {s.get('workers')} | {s.get('local_steps_total')} "
          f"| {s.get('rounds')} | {s.get('test_accuracy', 0):.4f} | {s.get('images_per_second', 0):.0f} |")
EOF
    local log
    for log in "$WORK"/logs/bench-*.txt "$WORK/logs/selftest.txt"; do
        [[ -f "$log" ]] || continue
        printf '\n## %s\n\n```\n' "$(basename "$log" .txt)"
        tail -n 40 "$log" | cut -c1-200
        echo '```'
    done
    for log in "$WORK"/logs/test-*.txt; do
        [[ -f "$log" ]] || continue
        printf '\n## %s\n\n```\n' "$(basename "$log" .txt)"
        grep -E "^test |test result|panicked|skipped|no GPU" "$log" | tail -n 30 | cut -c1-200
        echo '```'
    done
}

usage() {
    sed -n '2,18p' "$0" >&2
    exit 2
}

case "${1:-}" in
    --run)
        [[ $# -eq 3 ]] || usage
        run_all "$2" "$3"
        ;;
    --no-gpu)
        [[ $# -ge 2 && $# -le 3 ]] || usage
        # shellcheck source=scripts/gpu-nogpu.sh
        source "$script_dir/gpu-nogpu.sh"
        nogpu_main "${@:2}"
        ;;
    --print-plan)
        plan
        ;;
    --print-runs)
        plan | awk '$1 == "run" { $1 = ""; $2 = ""; $4 = ""; sub(/^ +/, ""); gsub(/  +/, " "); print }'
        ;;
    "")
        pack
        ;;
    *)
        usage
        ;;
esac
