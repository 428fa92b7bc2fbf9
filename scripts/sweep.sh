#!/usr/bin/env bash
# Runs a grid of algorithms x seeds (x any other flag lists), one run after another, each in its
# own folder under OUT; skips finished runs, resumes interrupted ones, then prints and writes the
# comparison table (compare.md, compare.csv) and the plots (plots/).
#
#   scripts/sweep.sh OUT "ALGOS" "SEEDS" [-- FLAGS...]
#   scripts/sweep.sh runs/paper "lgrawa mgrawa easgd lsgd ddp ddp-sam" "36 720 1042" -- \
#       --dataset mnist --model mlp --workers 4 --minutes 2 --batch-size 32 --lr 0.05 --flatness
#
# An entry of ALGOS may name a schedule, ALGO:SCHEDULE (mgrawa:async): `--schedule SCHEDULE`, and
# the run folder is ALGO-SCHEDULE-sSEED (mgrawa-async-s3) instead of ALGO-sSEED.
# Extra grids: set GRID_FLAG and GRID_VALUES, e.g. GRID_FLAG=--tau GRID_VALUES="8 32"; each value
# becomes part of the run folder's name. LR_TSV=FILE gives each run the --lr of its algorithm's
# line in FILE (algorithm<TAB>lr, '#' lines skipped). SWEEP_DRY_RUN=1 runs nothing and writes
# nothing: one line per run, "plan: NAME new|finished|resume". SWEEP_REPORT=0 skips the table and
# plots at the end (scripts/reproduce.sh makes its own). A relative OUT is taken from the
# repository root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ $# -lt 3 ]]; then
    sed -n '2,18p' "$0" >&2
    exit 2
fi
out=$1 algos=$2 seeds=$3
shift 3
[[ "${1:-}" == "--" ]] && shift
bin=${GRAWA_BIN:-target/release/grawa-train}
dry=${SWEEP_DRY_RUN:-0}
lr_tsv=${LR_TSV:-}
if [[ $dry == 0 ]]; then
    [[ -x "$bin" ]] || cargo build --release
    mkdir -p "$out"
fi
if [[ -n "$lr_tsv" && $dry == 0 && ! -f "$lr_tsv" ]]; then
    echo "sweep: LR_TSV: no file $lr_tsv" >&2
    exit 2
fi

# lr_of ALGO: the learning rate of ALGO in LR_TSV.
lr_of() {
    local lr
    lr=$(awk -F'\t' -v a="$1" '$1 == a { print $2; exit }' "$lr_tsv")
    if [[ -z "$lr" ]]; then
        echo "sweep: LR_TSV $lr_tsv has no learning rate for '$1'" >&2
        exit 2
    fi
    echo "$lr"
}

grid_values=${GRID_VALUES:-"-"}
runs=()
# Seed by seed, every algorithm within a seed: a shared host's drift in speed (which changes what
# a wall-clock budget buys) then falls on every algorithm alike, not on whichever ran last.
for seed in $seeds; do
    for g in $grid_values; do
        for entry in $algos; do
            algo=${entry%%:*}
            extra=()
            name="$algo-s$seed"
            if [[ "$entry" == *:* ]]; then
                name="$algo-${entry#*:}-s$seed"
                extra+=(--schedule "${entry#*:}")
            fi
            if [[ "$g" != "-" ]]; then
                name="$name-${GRID_FLAG#--}$g"
                extra+=("$GRID_FLAG" "$g")
            fi
            dir="$out/$name"
            runs+=("$dir")
            state=new
            if [[ -f "$dir/summary.json" ]]; then
                state=finished
            elif compgen -G "$dir/checkpoints/*/COMPLETE" >/dev/null; then
                state=resume
            fi
            if [[ $dry != 0 ]]; then
                echo "plan: $name $state"
                continue
            fi
            if [[ $state == finished ]]; then
                echo "sweep: $name finished, skipped"
                continue
            fi
            [[ -z "$lr_tsv" ]] || extra+=(--lr "$(lr_of "$algo")")
            args=(--algo "$algo" --seed "$seed" "${extra[@]}" "$@")
            if [[ $state == resume ]]; then
                echo "sweep: $name interrupted, resuming"
                args+=(--resume "$dir")
            else
                rm -rf "$dir"
                echo "sweep: $name"
                args+=(--out "$dir")
            fi
            # 130: interrupted (the checkpoint is kept): stop the sweep, a re-run resumes it. 2: the
            # flags or the data were refused, as they would be for every other run: stop too.
            status=0
            "$bin" "${args[@]}" || status=$?
            if [[ $status -eq 130 ]]; then
                echo "sweep: interrupted; run the same command again to resume" >&2
                exit 130
            elif [[ $status -eq 2 ]]; then
                echo "sweep: $name refused its flags or data (exit 2); stopping" >&2
                exit 2
            elif [[ $status -ne 0 ]]; then
                echo "sweep: $name failed (exit $status); going on" >&2
            fi
        done
    done
done
[[ $dry == 0 ]] || exit 0

done_runs=()
for d in "${runs[@]}"; do [[ -f "$d/summary.json" ]] && done_runs+=("$d"); done
if [[ ${#done_runs[@]} -gt 0 && "${SWEEP_REPORT:-1}" != 0 ]]; then
    "$bin" compare "${done_runs[@]}" --csv "$out/compare.csv" --md "$out/compare.md"
    "$bin" plot "${done_runs[@]}" --out "$out/plots" >/dev/null
    echo "sweep: tables in $out/compare.md and $out/compare.csv, plots in $out/plots"
fi
