#!/usr/bin/env bash
# A CUDA 13.0 compiler and link stubs for building `--features cuda` on a machine without a GPU or
# a CUDA install (our dev machines and CI), printed as environment settings to `eval`:
#
#   eval "$(scripts/cuda-toolchain.sh)"
#   CARGO_TARGET_DIR=target-cuda cargo check --features cuda
#
# What it sets up, in ${GRAWA_CUDA_DIR:-<repo root>/.cuda} (git-ignored):
# - nvcc, cicc, ptxas and the headers from NVIDIA's CUDA 13.0 wheels on PyPI (`pip download
#   --no-deps`, about 104 MB; Debian only has CUDA 11.8, and the cu12 nvcc wheels hold only ptxas).
#   candle-kernels needs nvcc even for `cargo check`, and build.rs compiles kernels/*.cu with it.
# - Link stubs under nvidia/cu13/lib/stubs: candle turns on cudarc's `dynamic-linking`, so the final
#   link wants libcuda, libcublas, libcublasLt, libcurand, libnvrtc (and libnccl with `nccl`). No
#   wheel ships a libcuda stub, so each stub is a tiny .so built with gcc that exports every function
#   name cudarc's bindings for that library declare (read from the locked cudarc's sources, so a
#   cudarc upgrade brings its new names along). Each stub carries the real library's soname, so a
#   binary linked against them loads the real CUDA 13 libraries on a GPU machine. The stubs are only
#   for linking: nothing here can run a CUDA binary.
#
# Idempotent: a finished setup is recorded in a stamp file and reused; a half-finished one (no
# stamp) is redone from scratch. Progress goes to stderr, only the settings to stdout.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
root="${GRAWA_CUDA_DIR:-$repo_root/.cuda}"

# The wheels that hold a working CUDA 13.0 nvcc (the cu12 nvcc wheels hold only ptxas; these, unzipped
# into one folder with exec bits restored, are a whole nvcc).
WHEELS=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-cuda-runtime==13.0.96
    nvidia-cuda-cccl==13.0.85
)
# library name|soname of the real CUDA 13 library|cudarc bindings that declare its functions
STUBS=(
    "cuda|libcuda.so.1|driver"
    "cublas|libcublas.so.13|cublas"
    "cublasLt|libcublasLt.so.13|cublaslt"
    "curand|libcurand.so.10|curand"
    "nvrtc|libnvrtc.so.13|nvrtc"
    "nccl|libnccl.so.2|nccl"
)
STAMP_VERSION="1 ${WHEELS[*]} ${STUBS[*]}"

log() { echo "cuda-toolchain: $*" >&2; }
die() {
    echo "cuda-toolchain: error: $*" >&2
    exit 1
}

cu="$root/nvidia/cu13"
stamp="$root/.toolchain-stamp"

# The cudarc sources Cargo.lock pins, fetched by cargo if they are not in the registry yet.
cudarc_dir() {
    local manifest
    manifest="$(cd "$repo_root" && cargo metadata --format-version 1 --features cuda 2>/dev/null |
        python3 -c 'import json, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "cudarc":
        print(p["manifest_path"])
        break')" || true
    [[ -n "$manifest" && -f "$manifest" ]] ||
        die "cannot locate the cudarc sources (cargo metadata --features cuda failed; is the network up?)"
    dirname "$manifest"
}

setup() {
    command -v python3 >/dev/null || die "python3 (with pip) is needed to fetch the wheels"
    command -v gcc >/dev/null || die "gcc is needed to build the link stubs"
    command -v unzip >/dev/null || die "unzip is needed to unpack the wheels"

    rm -rf "$root/nvidia" "$root/unpacked" "$stamp"
    mkdir -p "$root/wheels"

    log "fetching ${WHEELS[*]} into $root/wheels"
    python3 -m pip download --quiet --no-deps --dest "$root/wheels" "${WHEELS[@]}" >&2 ||
        die "pip download failed"

    log "unpacking"
    mkdir -p "$root/unpacked"
    local whl
    for w in "${WHEELS[@]}"; do
        # pip names files with underscores: nvidia-cuda-nvcc==13.0.88 -> nvidia_cuda_nvcc-13.0.88-*.whl
        local name="${w%%==*}" version="${w##*==}"
        whl="$(ls "$root/wheels/${name//-/_}-${version}-"*.whl 2>/dev/null | head -n1)"
        [[ -n "$whl" ]] || die "no wheel for $w in $root/wheels"
        unzip -q -o "$whl" -d "$root/unpacked" || die "cannot unzip $whl"
    done
    mv "$root/unpacked/nvidia" "$root/nvidia"
    rm -rf "$root/unpacked"

    # Wheels do not keep exec bits.
    chmod +x "$cu"/bin/* "$cu"/nvvm/bin/*
    "$cu/bin/nvcc" --version >/dev/null || die "the unpacked nvcc does not run"

    # candle-kernels links libcudart dynamically: the runtime wheel has the real library, only the
    # unversioned name the linker looks for is missing.
    ln -sf libcudart.so.13 "$cu/lib/libcudart.so"

    local src
    src="$(cudarc_dir)"
    log "building link stubs from the bindings in $src"
    mkdir -p "$cu/lib/stubs"
    local entry lib soname module names
    for entry in "${STUBS[@]}"; do
        IFS='|' read -r lib soname module <<<"$entry"
        names="$(grep -ohE '^pub unsafe fn [A-Za-z_][A-Za-z0-9_]*' "$src/src/$module/sys/mod.rs" |
            awk '{print $4}' | sort -u)"
        [[ -n "$names" ]] || die "no function names found in $src/src/$module/sys/mod.rs"
        # Bodies never run: a binary linked against a stub loads the real library by its soname.
        awk '{print "void " $1 "(void) {}"}' <<<"$names" >"$cu/lib/stubs/$lib.c"
        gcc -shared -fPIC -fno-builtin -w -Wl,-soname,"$soname" \
            -o "$cu/lib/stubs/lib$lib.so" "$cu/lib/stubs/$lib.c" ||
            die "cannot build the $lib stub"
        rm -f "$cu/lib/stubs/$lib.c"
        log "  lib$lib.so ($soname): $(wc -l <<<"$names") symbols"
    done

    echo "$STAMP_VERSION" >"$stamp"
    log "ready in $root"
}

if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$STAMP_VERSION" || ! -x "$cu/bin/nvcc" ]]; then
    setup
else
    log "already set up in $root"
fi

# cudarc's build script adds \$CUDA_HOME/lib and \$CUDA_HOME/lib/stubs to the link search path, and
# reads the CUDA version from CUDARC_CUDA_VERSION instead of asking a GPU; candle-kernels takes the
# target architecture from CUDA_COMPUTE_CAP (no nvidia-smi here). 80: candle's kernels become PTX
# for compute_80, which the driver JIT-compiles for every GPU from sm_80 up (A100, A10/A40,
# RTX 30xx/40xx/50xx, L4/L40S, H100/H200, B200), at the same first-run cost as any other target
# (candle embeds PTX only). 90 would make candle's build (cudaforge) emit sm_90a, code specific to
# H100/H200 that no other GPU runs. candle's statically linked MoE/GGUF kernels get sm_80 code
# only (Ampere and Ada); grawa-train never launches them. Our own kernels (build.rs) are
# compute_75 PTX and run everywhere. docs/gpu-runs.md has the cards and the costs. LIBRARY_PATH
# is a second route to the stubs for links outside cudarc.
cat <<EOF
export PATH="$cu/bin:\$PATH"
export CUDA_HOME="$cu"
export CUDA_COMPUTE_CAP="\${CUDA_COMPUTE_CAP:-80}"
export CUDARC_CUDA_VERSION=13000
export LIBRARY_PATH="$cu/lib/stubs:$cu/lib\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
EOF
