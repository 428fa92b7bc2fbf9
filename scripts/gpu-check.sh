#!/usr/bin/env bash
# Every GPU check of grawa-train in one device call. Two halves:
#
#   scripts/gpu-check.sh                  # here (no GPU needed): build the CUDA binaries (with and
#                                         # without NCCL) and the GPU test binaries, pack them as
#                                         # dist/gpu-check.tar.xz
#   scripts/gpu-check.sh --run PACK OUT   # on the GPU machine: unpack PACK, run everything, write
#                                         # the logs and OUT/gpu-check/summary.md
#
# With the device tool: build here, then one call
#   run(command='scripts/gpu-check.sh --run dist/gpu-check.tar.xz "$OUT"',
#       carry=["dist/gpu-check.tar.xz"], timeout_s=580)
# and copy the figures of summary.md into docs/gpu-runs.md.
#
# The run: `ldd` (a missing CUDA library stops the binary before main), `selftest` (every kernel
# against its CPU twin, peer copies, bandwidth against a device-to-device copy), the GPU test
# binaries (selftest_gpu, gpu_train, buffer_parity, gpu_round), `--gpus 1 --workers 4` synthetic
# runs of every algorithm, a ResNet-20 run for images/s, and the round benchmark (the round on
# the GPU against a device-to-device copy of its bytes). Where the machine has libnccl.so.2, the
# NCCL build's parts too: gpu_round with the NCCL round, the benchmark with `--round nccl` beside
# the hub, and `--round nccl` runs. Each step has its own time limit and a failing step does not
# stop the others. CUDA_CACHE_PATH points into OUT so candle's PTX is JIT-compiled once. The pack
# is xz-compressed (candle's PTX, in every binary, halves); where `tar` cannot read xz, Python's
# tarfile unpacks it.
set -uo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
TESTS="selftest_gpu gpu_train buffer_parity gpu_round"
ALGOS="lgrawa mgrawa local-sgd easgd lsgd ddp ddp-sam"
NCCL_TESTS="gpu_round"
NCCL_ALGOS="lgrawa ddp"

# Builds the binary, the round benchmark and test binaries TESTS with FEATURES into DIR.
build_into() {
    local features=$1 dir=$2 tests=$3
    mkdir -p "$dir/tests"
    cargo build --release --features "$features" --bin grawa-train --example bench_gpu_round >&2
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

pack() {
    set -e
    eval "$("$script_dir/cuda-toolchain.sh")"
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo_root/target-cuda}"
    cd "$repo_root"
    local stage="$repo_root/dist/gpu-check" out="$repo_root/dist/gpu-check.tar.xz"
    rm -rf "$stage" "$repo_root/dist/gpu-check.tar.gz"
    build_into cuda "$stage" "$TESTS"
    # The NCCL build needs libnccl.so.2 where it runs: kept apart, so a machine without NCCL
    # still runs everything else.
    build_into nccl "$stage/nccl" "$NCCL_TESTS"
    XZ_OPT="-6 -T0" tar -C "$repo_root/dist" -cJf "$out" gpu-check
    rm -rf "$stage"
    local bytes
    bytes=$(stat -c %s "$out")
    echo "gpu-check: dist/gpu-check.tar.xz, $((bytes / 1048576)) MiB (the carry limit is 64 MiB)" >&2
    if ((bytes >= 64 * 1048576)); then
        echo "gpu-check: too large to carry" >&2
        exit 1
    fi
    echo "$out"
}

# Runs one step with a time limit, its output in OUT/gpu-check/NAME.txt; records the exit status.
step() {
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" >"$res/$name.txt" 2>&1
    local rc=$?
    echo "| $name | $rc | $((SECONDS - t0)) s |" >>"$res/steps.md"
    echo "gpu-check: $name: exit $rc ($((SECONDS - t0)) s)" >&2
    return $rc
}

run_all() {
    local pack=$1 out=$2
    res="$out/gpu-check"
    mkdir -p "$res" && : >"$res/steps.md"
    local dir
    dir="$(mktemp -d)"
    tar -C "$dir" -xf "$pack" 2>/dev/null ||
        python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$pack" "$dir" ||
        { echo "gpu-check: cannot unpack $pack" >&2; exit 2; }
    local bin="$dir/gpu-check/grawa-train"
    export CUDA_CACHE_PATH="$out/cuda-cache" CUDA_CACHE_MAXSIZE=4294967296
    export RUST_BACKTRACE=1
    {
        date -u
        nvidia-smi -L 2>&1 || true
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
        nproc
        ldd "$bin" | grep -E "cuda|cublas|curand|nvrtc|nccl|not found" || true
    } >"$res/machine.txt" 2>&1
    if ldd "$bin" | grep -q "=> not found"; then
        echo "gpu-check: libraries missing, nothing can run:" >&2
        grep "=> not found" "$res/machine.txt" >&2
        exit 1
    fi
    step selftest 180 "$bin" selftest
    for t in $TESTS; do
        step "test-$t" 240 "$dir/gpu-check/tests/$t" --test-threads 1
    done
    local common=(--dataset synthetic --model cnn --gpus 1 --workers 4 --steps 400 --batch-size 64
        --lr 0.05 --eval-every 200 --synthetic-train 16000 --synthetic-test 2000 --quiet)
    for algo in $ALGOS; do
        step "run-$algo" 120 "$bin" "${common[@]}" --algo "$algo" --out "$res/runs/$algo"
    done
    step run-resnet20 180 "$bin" --dataset synthetic --model resnet20 --gpus 1 --workers 1 \
        --steps 300 --batch-size 128 --eval-every 300 --synthetic-train 12800 --synthetic-test 1000 \
        --quiet --out "$res/runs/resnet20"
    step bench-gpu-round 240 "$dir/gpu-check/bench_gpu_round"
    local nccl="$dir/gpu-check/nccl"
    if ldd "$nccl/grawa-train" | grep -q "=> not found"; then
        echo "| nccl | skipped: $(ldd "$nccl/grawa-train" | grep "not found" | tr -s ' \t' ' ' | tr '\n' ';') | |" >>"$res/steps.md"
    else
        for t in $NCCL_TESTS; do
            step "test-$t-nccl" 240 "$nccl/tests/$t" --test-threads 1
        done
        step bench-gpu-round-nccl 240 "$nccl/bench_gpu_round"
        for algo in $NCCL_ALGOS; do
            step "run-nccl-$algo" 120 "$nccl/grawa-train" "${common[@]}" --algo "$algo" --round nccl \
                --out "$res/runs/nccl-$algo"
        done
    fi
    summarize "$res" >"$res/summary.md"
    cat "$res/summary.md"
}

summarize() {
    local res=$1
    echo "# GPU check, $(date -u +%Y-%m-%d)"
    echo
    echo '```'
    cat "$res/machine.txt"
    echo '```'
    echo
    echo "| step | exit | time |"
    echo "|---|---|---|"
    cat "$res/steps.md"
    local log
    for log in "$res"/*.txt; do
        local name
        name=$(basename "$log" .txt)
        if grep -q "^| $name | [1-9]" "$res/steps.md"; then
            echo
            echo "Failed: $name, its last lines:"
            echo '```'
            tail -n 5 "$log"
            echo '```'
        fi
    done
    echo
    echo "## Runs (summary.json)"
    echo
    python3 - "$res/runs" <<'EOF'
import json, pathlib, sys
print("| run | algo | workers | steps | rounds | test accuracy | images/s |")
print("|---|---|---|---|---|---|---|")
for d in sorted(pathlib.Path(sys.argv[1]).glob("*")):
    f = d / "summary.json"
    if not f.exists():
        print(f"| {d.name} | no summary.json | | | | | |")
        continue
    s = json.loads(f.read_text())
    print(f"| {d.name} | {s['algo']} | {s['workers']} | {s['local_steps_total']} | {s['rounds']} "
          f"| {s['test_accuracy']:.4f} | {s['images_per_second']:.0f} |")
EOF
    local b
    for b in bench-gpu-round bench-gpu-round-nccl; do
        [[ -f "$res/$b.txt" ]] || continue
        echo
        echo "## $b"
        echo
        echo '```'
        tail -n 20 "$res/$b.txt"
        echo '```'
    done
    echo
    echo "## selftest"
    echo
    echo '```'
    tail -n 60 "$res/selftest.txt"
    echo '```'
    for log in "$res"/test-*.txt; do
        echo
        echo "## $(basename "$log" .txt)"
        echo
        echo '```'
        grep -E "^test |test result|panicked|skipped|no GPU" "$log" | tail -n 40
        echo '```'
    done
}

case "${1:-}" in
    --run)
        [[ $# -eq 3 ]] || { sed -n '2,12p' "$0" >&2; exit 2; }
        run_all "$2" "$3"
        ;;
    "")
        pack
        ;;
    *)
        sed -n '2,12p' "$0" >&2
        exit 2
        ;;
esac
