#!/usr/bin/env bash
# The README's main job: fetch MNIST if missing, build in release, train on the CPU and print the
# test accuracy. Extra arguments go to grawa-train (e.g. --epochs 2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/fetch-data.sh mnist
cargo build --release
exec target/release/grawa-train --dataset mnist --model mlp --epochs 1 "$@"
