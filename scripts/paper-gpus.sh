#!/usr/bin/env bash
# The paper's comparison on GPUs: ResNet-20 on CIFAR-10 with the authors' recipe
# (configs/paper-resnet20-cifar10.toml), every method with its own settings, 5 seeds, then the
# report. Resumable like scripts/sweep.sh (a finished run is skipped, an interrupted one resumes).
#
#   scripts/paper-gpus.sh [--gpus N] [--seeds "1 2 3 4 5"] [--dry-run] [OUT] [-- FLAGS...]
#
#   OUT       the run folders (default runs/paper-gpus): OUT/accuracy/resnet20-cifar10/<run>/, and
#             the report OUT/reproduction.md with its charts and run table in OUT/reproduction/
#   --gpus N  one worker per GPU, GPUs 0..N-1 (default 4); 0: on the CPU (a smoke test only)
#   --dry-run print the runs (new, finished, to resume) and run nothing
#   FLAGS     added to every run, after the config (they win over it)
#
# Needs a CUDA build (`cargo build --release --features cuda`, README "GPUs") and CIFAR-10 in
# data/cifar-10-batches-bin/ (README "Data sets"). 7 methods x 5 seeds x 15 minutes: about 9 h on
# one 4-GPU machine. GRAWA_BIN names the binary (default target/release/grawa-train).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
config=configs/paper-resnet20-cifar10.toml

gpus=4
seeds="1 2 3 4 5"
dry=0
out=""
while [[ $# -gt 0 ]]; do
    case "$1" in
    --gpus | --seeds)
        [[ $# -ge 2 ]] || { echo "paper-gpus: $1 needs a value" >&2; exit 2; }
        [[ $1 == --gpus ]] && gpus=$2 || seeds=$2
        shift
        ;;
    --dry-run) dry=1 ;;
    --)
        shift
        break
        ;;
    -h | --help)
        sed -n '2,17p' "$0"
        exit 0
        ;;
    -*)
        echo "paper-gpus: unknown flag '$1' (see --help)" >&2
        exit 2
        ;;
    *)
        [[ -z "$out" ]] || { echo "paper-gpus: one OUT folder only (see --help)" >&2; exit 2; }
        out=$1
        ;;
    esac
    shift
done
[[ "$gpus" =~ ^[0-9]+$ ]] || { echo "paper-gpus: --gpus takes a count, not '$gpus'" >&2; exit 2; }
out=${out:-runs/paper-gpus}
runs="$out/accuracy/resnet20-cifar10"
bin=${GRAWA_BIN:-target/release/grawa-train}
place=()
[[ $gpus == 0 ]] || place=(--gpus "$gpus")

# Each method (ALGO[:SCHEDULE]) and its own settings, as the authors give them.
methods=(
    "mgrawa:async|--tau 32 --pull 0.5 --prox 0.01"
    "lgrawa:async|--tau 32 --pull 0.5 --prox 0.01"
    "easgd|--tau 4 --beta 0.1"
    "lsgd|--tau 4 --pull 0.1 --prox 0.1"
    "local-sgd|--tau 32"
    "ddp|"
    "ddp-sam|--rho 0.05"
)
for m in "${methods[@]}"; do
    read -r -a own <<<"${m#*|}"
    GRAWA_BIN="$bin" SWEEP_REPORT=0 SWEEP_DRY_RUN=$dry scripts/sweep.sh "$runs" "${m%%|*}" \
        "$seeds" -- --config "$config" "${place[@]}" "${own[@]}" "$@"
done
[[ $dry == 0 ]] || exit 0

{
    printf 'command\tscripts/paper-gpus.sh --gpus %s\n' "$gpus"
    printf "mode\tthe authors' recipe, %s\n" "$config"
} >"$out/manifest.txt"
"$bin" reproduction-report "$out" --out "$out/reproduction.md"
