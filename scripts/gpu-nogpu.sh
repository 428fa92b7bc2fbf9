# Sourced by scripts/gpu-check.sh for `--no-gpu OUT [PACK]`: the GPU check proven on a machine
# without a GPU.
#
# The packed binaries (PACK as given; without it dist/gpu-check.tar.xz, built by
# scripts/gpu-check.sh from this checkout each time, incrementally) run against CUDA 13's real
# runtime libraries, from NVIDIA's PyPI wheels (cuBLAS,
# cudart, cuRAND, NVRTC, NCCL: about 800 MB, fetched once into ${GRAWA_CUDA_CACHE:-~/.cache/grawa-cuda},
# never into the repository), and a libcuda.so.1 stub in place of the driver: every entry
# returns CUDA_ERROR_NO_DEVICE, cuGetErrorString/Name give the driver's message and
# cuDriverGetVersion says 13.0. Checked, each a step of OUT/summary.md:
# - every NEEDED library of every packed binary resolves, found by the GPU check's own lookup
#   (scripts/gpu-libs.sh; the wheels stand for a Python's site-packages), and no binary needs a
#   glibc symbol newer than 2.35;
# - `grawa-train selftest` and `--gpus 1` (and `--round nccl` of the NCCL build) exit 2 saying the
#   driver sees no GPU;
# - `scripts/gpu-check.sh --run` goes end to end: OUT/summary.md, at most 8 files, every planned
#   step in the table, the table printed last; and again with a step made to hang
#   (GPU_CHECK_HANG) under a 60 s budget, which must still end in time with that step stopped;
# - ptxas of the fetched CUDA 13.0 compiles our PTX and candle's for sm_80, sm_86, sm_89, sm_90
#   and sm_120 (the seconds are what a driver's first-run JIT costs, roughly).

CACHE="${GRAWA_CUDA_CACHE:-$HOME/.cache/grawa-cuda}"
# Versions that work together with the toolchain's CUDA 13.0 (docs/gpu-runs.md).
RUNTIME_WHEELS="nvidia-cublas==13.0.2.14 nvidia-cuda-runtime==13.0.96 nvidia-curand==10.4.5.25
nvidia-cuda-nvrtc==13.0.88 nvidia-nccl-cu13==2.32.6"
RUNTIME_WHEELS=${RUNTIME_WHEELS//$'\n'/ }
ARCHS="80 86 89 90 120"
MAX_GLIBC=2.35


# The runtime wheels, fetched once and unpacked into CACHE/runtime (nvidia/*/lib).
fetch_runtime() {
    local stamp="$CACHE/runtime/.stamp" wheels
    read -ra wheels <<<"$RUNTIME_WHEELS"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$RUNTIME_WHEELS" ]]; then
        echo "already in $CACHE/runtime"
    else
        mkdir -p "$CACHE/wheels" && rm -rf "$CACHE/runtime" && mkdir -p "$CACHE/runtime" || return 1
        python3 -m pip download --quiet --no-deps --dest "$CACHE/wheels" "${wheels[@]}" || return 1
        local w name version whl
        for w in "${wheels[@]}"; do
            name="${w%%==*}" version="${w##*==}"
            whl="$(ls "$CACHE/wheels/${name//-/_}-${version}-"*.whl | head -n1)"
            unzip -q -o "$whl" -d "$CACHE/runtime" || return 1
        done
        echo "$RUNTIME_WHEELS" >"$stamp"
    fi
    du -sh "$CACHE/wheels" "$CACHE/runtime"
    ls "$CACHE"/runtime/nvidia/*/lib
}

# CACHE/stub/libcuda.so.1: the link stub's entry points (every function cudarc binds, from
# scripts/cuda-toolchain.sh), each returning CUDA_ERROR_NO_DEVICE.
build_stub() {
    local link="$CUDA_HOME/lib/stubs/libcuda.so" src="$CACHE/stub/libcuda.c"
    mkdir -p "$CACHE/stub"
    local names
    names=$(nm -D --defined-only "$link" | awk '{print $NF}' | grep '^cu') || return 1
    {
        cat <<'C'
/* libcuda.so.1 for a machine without a GPU (scripts/gpu-nogpu.sh): no device, ever. */
typedef int CUresult;
enum { SUCCESS = 0, NO_DEVICE = 100 };
CUresult cuGetErrorString(CUresult e, const char **s) {
    *s = e == NO_DEVICE ? "no CUDA-capable device is detected" : "unknown error (stub driver)";
    return SUCCESS;
}
CUresult cuGetErrorName(CUresult e, const char **s) {
    *s = e == NO_DEVICE ? "CUDA_ERROR_NO_DEVICE" : "CUDA_ERROR_UNKNOWN";
    return SUCCESS;
}
CUresult cuDriverGetVersion(int *v) { *v = 13000; return SUCCESS; }
C
        grep -vxE 'cuGetErrorString|cuGetErrorName|cuDriverGetVersion' <<<"$names" |
            awk '{print "CUresult " $1 "(void) { return NO_DEVICE; }"}'
    } >"$src"
    gcc -shared -fPIC -fno-builtin -w -Wl,-soname,libcuda.so.1 -o "$CACHE/stub/libcuda.so.1" "$src" || return 1
    echo "$(wc -l <<<"$names") entry points in $CACHE/stub/libcuda.so.1"
}

# Every packed binary's libraries resolve through the GPU check's lookup; glibc <= MAX_GLIBC.
check_loading() {
    local bins=("$WORK"/pack/gpu-check/{grawa-train,bench_gpu_round} "$WORK"/pack/gpu-check/tests/*
        "$WORK"/pack/gpu-check/nccl/{grawa-train,bench_gpu_round} "$WORK"/pack/gpu-check/nccl/tests/*)
    local log="$WORK/logs/libraries.txt"
    find_cuda_libs "$log" "${bins[@]}"
    cat "$log"
    local bad=0 b newest
    for b in "${bins[@]}"; do
        if ldd "$b" | grep -q "not found"; then
            echo "$(basename "$b"): $(ldd "$b" | grep "not found" | tr -s ' \t' ' ')"
            bad=1
        fi
        newest=$(objdump -T "$b" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)
        echo "$(basename "$b"): newest glibc symbol $newest"
        if [[ "$(printf '%s\n' "$newest" "$MAX_GLIBC" | sort -V | tail -n1)" != "$MAX_GLIBC" ]]; then
            echo "  newer than $MAX_GLIBC"
            bad=1
        fi
    done
    [[ -z "$CUDA_MISSING" && $bad == 0 ]]
}

# expect_no_gpu COMMAND...: exits 2 and says the driver sees no GPU.
expect_no_gpu() {
    local out rc
    out=$("$@" 2>&1)
    rc=$?
    echo "\$ $(basename "$1") ${*:2}"
    echo "$out" | tail -n 20
    echo "exit $rc"
    [[ $rc == 2 ]] && grep -qiE 'no GPU|sees 0|sees no' <<<"$out"
}

# Both builds' selftest, and a training run asking for a GPU (and NCCL's round).
selftest_says_no_gpu() {
    expect_no_gpu "$BIN" selftest && expect_no_gpu "$NCCL_BIN" selftest
}

gpus_says_no_gpu() {
    local train=(--dataset synthetic --steps 1 --gpus 1 --out "$WORK/never")
    expect_no_gpu "$BIN" "${train[@]}" && expect_no_gpu "$NCCL_BIN" "${train[@]}" --round nccl
}

# gpu-check.sh --run against the stub: OUT2 holds summary.md and at most 8 files, the table
# lists every planned step and comes last; with HANG set that step hangs and BUDGET still holds.
check_run() {
    local out2=$1 budget=$2 hang=${3:-} t0=$SECONDS
    GPU_CHECK_BUDGET=$budget GPU_CHECK_HANG=$hang \
        "$script_dir/gpu-check.sh" --run "$PACK" "$out2" >"$WORK/run.stdout" 2>"$WORK/run.stderr"
    local rc=$? took=$((SECONDS - t0)) files planned
    files=$(find "$out2" -type f | wc -l)
    planned=$("$script_dir/gpu-check.sh" --print-plan | grep -c .)
    echo "exit $rc after $took s (budget $budget s); $files files in OUT: $(ls "$out2" | tr '\n' ' ')"
    echo "last lines on stdout:"
    tail -n 4 "$WORK/run.stdout"
    cat "$out2/summary.md"
    local ok=1
    [[ -f "$out2/summary.md" && -f "$out2/logs.tar.xz" ]] || { echo "missing summary.md or logs.tar.xz"; ok=0; }
    ((files <= 8)) || { echo "more than 8 files"; ok=0; }
    ((took <= budget + 10)) || { echo "over the budget"; ok=0; }
    [[ "$(tail -n 1 "$WORK/run.stdout")" == "| "* ]] || { echo "the table is not last"; ok=0; }
    (($(grep -cE '^\| [a-z0-9_-]+ \| ([0-9]+|skipped) \|' "$out2/summary.md") >= planned)) ||
        { echo "steps missing from the table"; ok=0; }
    if grep -q 'cannot load' "$out2/summary.md"; then echo "a build could not load"; ok=0; fi
    if [[ -n "$hang" ]]; then
        grep -qE "^\| $hang \| (124|137|125) \|" "$out2/summary.md" || { echo "$hang was not stopped"; ok=0; }
    fi
    ((ok == 1))
}

# ptxas (CUDA 13.0, as the drivers' JIT) on our PTX and candle's, for each architecture.
check_ptxas() {
    local target="${CARGO_TARGET_DIR:-$repo_root/target-cuda}/release/build"
    local ours candle
    ours=$(ls -td "$target"/grawa-train-*/out 2>/dev/null | while read -r d; do
        [[ -f "$d/average.ptx" ]] && { echo "$d"; break; }; done)
    candle=$(ls -td "$target"/candle-kernels-*/out 2>/dev/null | while read -r d; do
        compgen -G "$d/*.ptx" >/dev/null && { echo "$d"; break; }; done)
    [[ -n "$ours" && -n "$candle" ]] || { echo "no PTX under $target (build the pack here first)"; return 1; }
    echo "ours: $ours ($(grep -h '^\.target' "$ours"/*.ptx | sort -u | tr '\n' ' '))"
    echo "candle: $candle ($(du -ch "$candle"/*.ptx | tail -n1 | cut -f1), $(grep -h '^\.target' "$candle"/*.ptx | sort -u | tr '\n' ' '))"
    local arch f ok=1 t0
    for arch in $ARCHS; do
        t0=$SECONDS
        for f in "$ours"/*.ptx "$candle"/*.ptx; do
            ptxas -arch="sm_$arch" -O3 "$f" -o /dev/null || { echo "sm_$arch: ptxas failed on $f"; ok=0; }
        done
        echo "sm_$arch: ptxas $((SECONDS - t0)) s for all of it"
    done
    ((ok == 1))
}

summary_extra() {
    local name
    for name in runtime stub loading selftest-no-gpu gpus-no-gpu run-no-gpu run-with-a-hang ptxas; do
        [[ -f "$WORK/logs/$name.txt" ]] || continue
        printf '\n## %s\n\n```\n' "$name"
        tail -n 60 "$WORK/logs/$name.txt" | cut -c1-240
        echo '```'
    done
}

# fn_step NAME LIMIT FUNCTION ARGS...: a step that runs one of this script's functions.
fn_step() {
    step "$1" "$2" bash -c '"$@"' _ "${@:3}"
}

# nogpu_main OUT [PACK]
nogpu_main() {
    OUT=$(mkdir -p "$1" && cd "$1" && pwd)
    PACK="${2:-$repo_root/dist/gpu-check.tar.xz}"
    # Without PACK the pack is built from this checkout (incrementally), never an older one reused.
    BUILD_PACK=$([[ $# -ge 2 ]] && echo 0 || echo 1)
    WORK=$(mktemp -d /tmp/gpu-nogpu.XXXXXX)
    SUMMARY_TITLE="GPU check without a GPU"
    # Steps run in a child bash: it needs these functions and settings.
    BIN="$WORK/pack/gpu-check/grawa-train"
    NCCL_BIN="$WORK/pack/gpu-check/nccl/grawa-train"
    export -f fetch_runtime build_stub check_loading expect_no_gpu selftest_says_no_gpu \
        gpus_says_no_gpu check_run check_ptxas find_cuda_libs cuda_missing cuda_lib_dirs pythons
    export CACHE WORK PACK BIN NCCL_BIN MAX_GLIBC ARCHS RUNTIME_WHEELS repo_root script_dir
    steps_begin 3600
    echo "CUDA runtime libraries and the driver stub: $CACHE" >&2
    eval "$("$script_dir/cuda-toolchain.sh")"
    fn_step runtime 1800 fetch_runtime
    fn_step stub 120 build_stub
    if [[ $BUILD_PACK == 1 || ! -f "$PACK" ]]; then
        step pack 3000 "$script_dir/gpu-check.sh"
    fi
    mkdir -p "$WORK/pack"
    step unpack 300 tar -C "$WORK/pack" -xf "$PACK"
    # The driver stub where a driver would be; the wheels where a Python keeps them.
    export LD_LIBRARY_PATH="$CACHE/stub" GPU_CHECK_SITES="$CACHE/runtime"
    fn_step loading 300 check_loading
    find_cuda_libs /dev/null "$BIN" "$NCCL_BIN"
    fn_step selftest-no-gpu 60 selftest_says_no_gpu
    fn_step gpus-no-gpu 60 gpus_says_no_gpu
    # gpu-check.sh must find the wheels itself.
    export LD_LIBRARY_PATH="$CACHE/stub"
    fn_step run-no-gpu 700 check_run "$WORK/out-run" 540
    fn_step run-with-a-hang 120 check_run "$WORK/out-hang" 60 test-selftest_gpu
    fn_step ptxas 1800 check_ptxas
    steps_ok
}
