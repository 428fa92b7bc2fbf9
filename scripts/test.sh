#!/usr/bin/env bash
# The project's test command (README, CI): format and lint checks, the CUDA build checked with
# fetched compilers (the CUDA code must compile everywhere, GPU or not), then the whole suite in
# release mode (candle is 25-64x slower in debug). Fetches real MNIST so the real-data tests run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
(
    eval "$(scripts/cuda-toolchain.sh)"
    CARGO_TARGET_DIR=target-cuda cargo clippy --features cuda --all-targets -- -D warnings
)
scripts/fetch-data.sh mnist
cargo test --release
