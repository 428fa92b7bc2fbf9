#!/usr/bin/env bash
# Every GPU check of grawa-train in one device call. Two halves:
#
#   scripts/gpu-check.sh                  # here (no GPU needed): build the CUDA binary and the GPU
#                                         # test binaries, pack them as dist/gpu-check.tar.gz
#   scripts/gpu-check.sh --run PACK OUT   # on the GPU machine: unpack PACK, run everything, write
#                                         # the logs and OUT/gpu-check/summary.md
#
# With the device tool: build here, then one call
#   run(command='scripts/gpu-check.sh --run dist/gpu-check.tar.gz "$OUT"',
#       carry=["dist/gpu-check.tar.gz"], timeout_s=540)
# and copy the figures of summary.md into docs/gpu-runs.md.
#
# The run: `ldd` (a missing CUDA library stops the binary before main), `selftest` (every kernel
# against its CPU twin, peer copies, bandwidth against a device-to-device copy), the GPU test
# binaries (selftest_gpu, gpu_train, buffer_parity), `--gpus 1 --workers 4` synthetic runs of every
# algorithm, and a ResNet-20 run for images/s. Each step has its own time limit and a failing step
# does not stop the others. CUDA_CACHE_PATH points into OUT so candle's PTX is JIT-compiled once.
set -uo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
TESTS="selftest_gpu gpu_train buffer_parity"
ALGOS="lgrawa mgrawa local-sgd easgd lsgd ddp ddp-sam"

pack() {
    set -e
    eval "$("$script_dir/cuda-toolchain.sh")"
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo_root/target-cuda}"
    cd "$repo_root"
    local stage="$repo_root/dist/gpu-check"
    rm -rf "$stage" && mkdir -p "$stage/tests"
    cargo build --release --features cuda --bin grawa-train >&2
    cp "$CARGO_TARGET_DIR/release/grawa-train" "$stage/"
    local args=()
    for t in $TESTS; do args+=(--test "$t"); done
    # The test binaries' paths, from cargo's own report of what it built.
    cargo test --release --features cuda --no-run --message-format=json "${args[@]}" 2>/dev/null |
        python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])
' | while read -r name exe; do cp "$exe" "$stage/tests/$name"; done
    for t in $TESTS; do
        [[ -x "$stage/tests/$t" ]] || { echo "gpu-check: test binary $t was not built" >&2; exit 1; }
    done
    strip "$stage/grawa-train" "$stage"/tests/* 2>/dev/null || true
    tar -C "$repo_root/dist" -czf "$repo_root/dist/gpu-check.tar.gz" gpu-check
    rm -rf "$stage"
    local bytes
    bytes=$(stat -c %s "$repo_root/dist/gpu-check.tar.gz")
    echo "gpu-check: dist/gpu-check.tar.gz, $((bytes / 1048576)) MiB (the carry limit is 64 MiB)" >&2
    if ((bytes >= 64 * 1048576)); then
        echo "gpu-check: too large to carry" >&2
        exit 1
    fi
    echo "$repo_root/dist/gpu-check.tar.gz"
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
    tar -C "$dir" -xzf "$pack" || { echo "gpu-check: cannot unpack $pack" >&2; exit 2; }
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
    echo
    echo "## selftest"
    echo
    echo '```'
    tail -n 60 "$res/selftest.txt"
    echo '```'
    for t in $TESTS; do
        echo
        echo "## test $t"
        echo
        echo '```'
        grep -E "^test |test result|panicked|skipped|no GPU" "$res/test-$t.txt" | tail -n 40
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
