#!/usr/bin/env bash
# Build the release `grawa-train` with the `cuda` feature on a machine without a GPU, for carrying
# to one, and print the binary's path on stdout (everything else goes to stderr):
#
#   bin="$(scripts/gpu-build.sh)"            # extra arguments go to cargo, e.g. --features nccl
#
# The compiler and link stubs come from scripts/cuda-toolchain.sh; the binary needs the real CUDA 13
# libraries (libcuda.so.1 from a driver >= 580, libcudart.so.13, libcublas(Lt).so.13, libcurand.so.10,
# libnvrtc.so.13) on the machine that runs it, and will not start without them (exit 127). On a
# workstation with its own CUDA toolkit, build there instead: `cargo build --release --features cuda`.
#
# One binary for every GPU from sm_80 up (A100, A10/A40, RTX 30xx/40xx/50xx, L4/L40S, H100/H200,
# B200): candle's kernels are PTX for compute_80 (CUDA_COMPUTE_CAP=80, scripts/cuda-toolchain.sh),
# ours compute_75 PTX, and the driver JIT-compiles both for the GPU it finds, once per machine
# with a CUDA cache (docs/gpu-runs.md has the sizes and the JIT time).
#
# Builds into ${CARGO_TARGET_DIR:-<repo root>/target-cuda} so the default build's target/ stays valid.
# A clean build takes several minutes, most of it nvcc on candle's kernels.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"

eval "$("$script_dir/cuda-toolchain.sh")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo_root/target-cuda}"

cd "$repo_root"
cargo build --release --features cuda --bin grawa-train "$@" >&2

bin="$CARGO_TARGET_DIR/release/grawa-train"
[[ -x "$bin" ]] || {
    echo "gpu-build: error: cargo finished but $bin is missing" >&2
    exit 1
}
# What the GPU machine must provide: the libraries the binary was linked against, by soname.
echo "gpu-build: $(du -h "$bin" | cut -f1) binary; it loads:" >&2
if command -v readelf >/dev/null; then
    readelf -d "$bin" | awk '/NEEDED/ {gsub(/[][]/, "", $NF); print "gpu-build:   " $NF}' >&2
fi
# What the embedded PTX targets (the newest of each build's outputs).
for crate in candle-kernels grawa-train; do
    out=$(ls -td "$CARGO_TARGET_DIR"/release/build/"$crate"-*/out 2>/dev/null | while read -r d; do
        compgen -G "$d/*.ptx" >/dev/null && { echo "$d"; break; }; done)
    [[ -n "$out" ]] && echo "gpu-build: $crate PTX: $(grep -h '^\.target' "$out"/*.ptx | sort -u | tr '\n' ' ')" >&2
done
echo "$bin"
