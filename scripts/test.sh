#!/usr/bin/env bash
# The project's test command (README, CI): format and lint checks, the CUDA build checked with
# fetched compilers (the CUDA code must compile everywhere, GPU or not), then the whole suite in
# release mode (candle is 25-64x slower in debug). Fetches real MNIST so the real-data tests run.
# The runs across processes (feature `mpi`) need OpenMPI and libclang: installed here when missing
# and this is root with apt (CI), else those checks are skipped with a message.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

have_mpi() {
    command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1 &&
        compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null
}
if ! have_mpi && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing OpenMPI and libclang for the mpi feature" >&2
    # Best effort: without them the mpi checks are skipped below, the rest still runs.
    { apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenmpi-dev openmpi-bin libclang-dev >/dev/null; } ||
        echo "test.sh: could not install OpenMPI/libclang" >&2
fi

cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
(
    eval "$(scripts/cuda-toolchain.sh)"
    CARGO_TARGET_DIR=target-cuda cargo clippy --features cuda --all-targets -- -D warnings
    if have_mpi; then
        # GPU ranks will take NCCL and MPI together: both must build side by side.
        CARGO_TARGET_DIR=target-cuda cargo clippy --features nccl,mpi --all-targets -- -D warnings
    fi
)
if have_mpi; then
    cargo clippy --release --all-targets --features mpi -- -D warnings
fi
scripts/fetch-data.sh mnist
# tests/ptx_params.rs compiles kernels/*.cu with the nvcc fetched above: required here, so a
# missing toolchain fails instead of skipping the check of every kernel's parameters.
GRAWA_REQUIRE_NVCC=1 cargo test --release
if have_mpi; then
    # As root (CI), OpenMPI refuses to start without these.
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
        cargo test --release --features mpi --test mpi_ranks
else
    echo "test.sh: OpenMPI/libclang missing and not installable here: the mpi tests were skipped" >&2
fi
