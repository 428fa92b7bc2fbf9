#!/usr/bin/env bash
# Reproduces the GRAWA paper's claims at CPU scale and writes the report (issue 13), with the run
# table docs/reproduction/runs.csv the report can be recomputed from (`grawa-train
# reproduction-report --from-csv`). The plan for the paper's regime (async variants, modelled
# links, a learning-rate grid on a validation split, 5 seeds) is docs/reproduction-plan.md.
#
#   scripts/reproduce.sh [--quick] [--doc FILE] [OUT]
#
#   OUT     the run folders (default runs/reproduction; runs/reproduction-quick with --quick)
#   --doc   the report (default docs/reproduction.md, its charts in docs/reproduction/;
#           OUT/reproduction.md with --quick)
#   --quick a seconds-long smoke version on synthetic data (the tests run it): every part, tiny
#           step budgets instead of minutes, two seeds, two workers (four when crowded)
#
# Environment: GRAWA_BIN (the binary; default: `cargo build --release`, then
# target/release/grawa-train), REPRO_THREADS (--threads of every run; default 2), GRAWA_DATA (the
# data folder, as for grawa-train and scripts/fetch-data.sh).
#
# Resumable, built on scripts/sweep.sh: a run with a summary.json is skipped, an interrupted one
# (it checkpoints on Ctrl-C) resumes, a flatness.json already written is kept. Ctrl-C stops the
# current run after its checkpoint and exits 130; run the same command again to go on. Each
# invocation appends the wall time of every part to OUT/timings.tsv (the report sums them) and
# records the machine in OUT/machine.txt.
#
# Parts (every run: the same flags and the same wall-clock budget for every algorithm of a part,
# --threads 2, seeds 1 2 3):
#   accuracy/mnist-mlp          7 algorithms x 3 seeds, MLP on MNIST, 4 workers, 15 s each;
#                               flatness at the full protocol (100 Lanczos iterations x 3 starts,
#                               30 Hutchinson probes, 320 images)
#   crowding                    mgrawa lgrawa ddp easgd lsgd with 8 and 16 workers, MLP as above
#                               (4 workers: the accuracy runs)
#   communication               mgrawa lgrawa local-sgd at tau 8 and 128, MLP as above (tau 32:
#                               the accuracy runs)
#   ablation/{accumulated,power2}  mgrawa lgrawa with --norm-source accumulated, --weight-power 2
#   accuracy/fashion-mnist-cnn  7 algorithms x 3 seeds, CNN on Fashion-MNIST, 4 workers, 3 min
#                               each; flatness with 10 Lanczos iterations x 1 start and 10
#                               Hutchinson probes (a CNN Hessian-vector product takes about 5 s on
#                               these cores: the full 330 would take half an hour per run)
#   report                      grawa-train reproduction-report OUT --out DOC
#
# Budget arithmetic for a 2-core machine (measured: an MLP run takes its 15 s plus about 1-2 s to
# start, load MNIST, evaluate and checkpoint; a CNN run its 180 s plus about 8 s; MLP flatness at
# the full protocol 20-35 s; a CNN Hessian-vector product 4-6 s):
#   MLP runs     (21 accuracy + 30 crowding + 18 communication + 12 ablation) = 81 x 17 s ~  23 min
#   MLP flatness 21 x ~30 s                                                             ~  10 min
#   CNN runs     21 x (180 + 8) s                                                       ~  66 min
#   CNN flatness 21 x (20 products x ~5 s + 5 s)                                        ~  37 min
#   sweep tables and plots, report                                                      ~   3 min
#   total                                                                               ~ 2 h 20 min
# (2.5 h if the machine is busy with other work: budgets are wall-clock, so a busy machine gives
# the runs fewer steps, not more time, but it slows the flatness measurements.)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
invocation="scripts/reproduce.sh"
[[ $# -eq 0 ]] || invocation+="$(printf ' %q' "$@")"

quick=0
doc=""
out=""
while [[ $# -gt 0 ]]; do
    case "$1" in
    --quick) quick=1 ;;
    --doc)
        [[ $# -ge 2 ]] || { echo "reproduce: --doc needs a file" >&2; exit 2; }
        doc=$2
        shift
        ;;
    -h | --help)
        sed -n '2,24p' "$0"
        exit 0
        ;;
    -*)
        echo "reproduce: unknown flag '$1' (see --help)" >&2
        exit 2
        ;;
    *)
        [[ -z "$out" ]] || { echo "reproduce: one OUT folder only (see --help)" >&2; exit 2; }
        out=$1
        ;;
    esac
    shift
done
if [[ -z "$out" ]]; then
    out="$repo/runs/reproduction"
    [[ $quick == 1 ]] && out="$repo/runs/reproduction-quick"
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
if [[ -z "$doc" ]]; then
    doc="$repo/docs/reproduction.md"
    [[ $quick == 1 ]] && doc="$out/reproduction.md"
fi
mkdir -p "$(dirname "$doc")"
doc="$(cd "$(dirname "$doc")" && pwd)/$(basename "$doc")"
cd "$repo"

if [[ -n "${GRAWA_BIN:-}" ]]; then
    bin=$GRAWA_BIN
else
    cargo build --release
    bin="$repo/target/release/grawa-train"
fi
[[ -x "$bin" ]] || { echo "reproduce: no binary at $bin" >&2; exit 2; }
threads=${REPRO_THREADS:-2}

# ---- the plan ---------------------------------------------------------------------------------
algos="mgrawa lgrawa ddp ddp-sam easgd lsgd local-sgd"
crowd_algos="mgrawa lgrawa ddp easgd lsgd"
tau_algos="mgrawa lgrawa local-sgd"
common=(--threads "$threads" --quiet)
if [[ $quick == 1 ]]; then
    seeds="1 2"
    workers=2
    crowd_workers="4"
    taus="8 16"
    base=synthetic-a
    small=(--dataset synthetic --model mlp --synthetic-test 256 --steps 40 --batch-size 8
        --lr 0.05 --eval-every 8 "${common[@]}")
    mlp=("${small[@]}" --synthetic-train 1024)
    other_name=synthetic-b
    other=("${small[@]}" --synthetic-train 512 --workers "$workers")
    mlp_flatness=(--iterations 4 --starts 1 --hutchinson 2 --samples 32)
    other_flatness=("${mlp_flatness[@]}")
    sweep_report=0
else
    seeds="1 2 3"
    workers=4
    crowd_workers="8 16"
    taus="8 128"
    base=mnist-mlp
    # A step decay (x0.1) two thirds into the budget (the authors decay at 500 s of 900 s).
    mlp=(--dataset mnist --model mlp --minutes 0.25 --batch-size 32 --lr 0.05
        --lr-schedule step --milestones 10s --eval-every 256 "${common[@]}")
    other_name=fashion-mnist-cnn
    other=(--dataset fashion-mnist --model cnn --minutes 3 --batch-size 64 --lr 0.1
        --lr-schedule step --milestones 120s --eval-every 128 --workers "$workers" "${common[@]}")
    mlp_flatness=()
    other_flatness=(--iterations 10 --starts 1 --hutchinson 10)
    sweep_report=1
fi

# ---- timing: one line per part and invocation in OUT/timings.tsv -------------------------------
part=""
part_t0=0
part_load=""
begin() {
    part=$1
    part_t0=$(date +%s%N)
    part_load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
    echo "== reproduce: $part"
}
finish() {
    [[ -n "$part" ]] || return 0
    local ms=$((($(date +%s%N) - part_t0) / 1000000))
    printf '%s\t%d.%03d\t%s\t%s\t%s\n' "$part" $((ms / 1000)) $((ms % 1000)) "$1" \
        "$(date '+%Y-%m-%d %H:%M:%S')" "$part_load" >>"$out/timings.tsv"
    part=""
}
on_exit() {
    local rc=$?
    if [[ $rc -eq 130 ]]; then
        finish interrupted
        echo "reproduce: interrupted; run the same command again to resume" >&2
    else
        finish "failed (exit $rc)"
    fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# run_part NAME COMMAND...: COMMAND, timed as part NAME.
run_part() {
    begin "$1"
    shift
    "$@"
    finish done
}

# sweep OUT ALGOS [GRID_FLAG GRID_VALUES] -- FLAGS...: scripts/sweep.sh over the seeds.
sweep() {
    local dir=$1 algos=$2 flag="" values=""
    shift 2
    if [[ "$1" != "--" ]]; then
        flag=$1 values=$2
        shift 2
    fi
    GRAWA_BIN="$bin" SWEEP_REPORT=$sweep_report GRID_FLAG="$flag" GRID_VALUES="$values" \
        scripts/sweep.sh "$dir" "$algos" "$seeds" "$@"
}

# flatness DIR FLAGS...: measures every finished run in DIR that has no flatness.json yet.
flatness() {
    local dir=$1 run name status
    shift
    for run in "$dir"/*/; do
        run=${run%/}
        name=$(basename "$run")
        [[ -f "$run/summary.json" ]] || continue
        if [[ -f "$run/flatness.json" ]]; then
            echo "flatness: $name measured, skipped"
            continue
        fi
        echo "flatness: $name"
        status=0
        "$bin" flatness --checkpoint "$run" "$@" >/dev/null || status=$?
        if [[ $status -ge 128 ]]; then
            exit 130
        elif [[ $status -ne 0 ]]; then
            echo "flatness: $name failed (exit $status); going on" >&2
        fi
    done
}

fetch_data() {
    scripts/fetch-data.sh mnist
    scripts/fetch-data.sh fashion-mnist
}

# ---- the record of this invocation ------------------------------------------------------------
{
    printf 'command\t%s\n' "$invocation"
    printf 'mode\t%s\n' "$([[ $quick == 1 ]] && echo "quick (smoke test on synthetic data)" || echo full)"
    printf 'base\t%s\n' "$base"
} >"$out/manifest.txt"
{
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')"
    echo "cores (nproc): $(nproc)"
    echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null)"
    echo "system: $(uname -srm)"
    echo "threads per run (--threads): $threads"
    if commit=$(git rev-parse --short HEAD 2>/dev/null); then
        git diff --quiet HEAD 2>/dev/null || commit+=" with uncommitted changes"
        echo "commit: $commit"
    fi
    echo "last invocation started: $(date '+%Y-%m-%d %H:%M:%S %Z')"
} >"$out/machine.txt"

# ---- the parts ---------------------------------------------------------------------------------
[[ $quick == 1 ]] || run_part "data" fetch_data
run_part "$base: training" sweep "$out/accuracy/$base" "$algos" -- "${mlp[@]}" --workers "$workers"
run_part "$base: flatness" flatness "$out/accuracy/$base" "${mlp_flatness[@]}"
run_part "crowding" sweep "$out/crowding" "$crowd_algos" --workers "$crowd_workers" -- "${mlp[@]}"
run_part "communication" sweep "$out/communication" "$tau_algos" --tau "$taus" -- \
    "${mlp[@]}" --workers "$workers"
run_part "ablation: accumulated" sweep "$out/ablation/accumulated" "mgrawa lgrawa" -- \
    "${mlp[@]}" --workers "$workers" --norm-source accumulated
run_part "ablation: power2" sweep "$out/ablation/power2" "mgrawa lgrawa" -- \
    "${mlp[@]}" --workers "$workers" --weight-power 2
run_part "$other_name: training" sweep "$out/accuracy/$other_name" "$algos" -- "${other[@]}"
run_part "$other_name: flatness" flatness "$out/accuracy/$other_name" "${other_flatness[@]}"

echo "== reproduce: report"
# Paths inside the repository are given relative to it (the report quotes the runs folder).
"$bin" reproduction-report "${out#"$repo"/}" --out "${doc#"$repo"/}" >/dev/null
echo "reproduce: report in $doc; runs in $out"
