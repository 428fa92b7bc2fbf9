#!/usr/bin/env bash
# The README's main job: fetch MNIST if missing, build in release, then train four workers kept
# together by LGRAWA on the CPU and print the test accuracy of their averaged model. Extra
# arguments go to grawa-train (e.g. --algo easgd, --schedule async, --epochs 4).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/fetch-data.sh mnist
cargo build --release
exec target/release/grawa-train --dataset mnist --model mlp --workers 4 --algo lgrawa \
    --epochs 2 --batch-size 32 --lr 0.05 "$@"
