#!/usr/bin/env bash
# The project's test command (README, CI): format and lint checks, then the whole suite in release
# mode (candle is 25-64x slower in debug). Fetches real MNIST first so the real-data test runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
scripts/fetch-data.sh mnist
cargo test --release
