#!/usr/bin/env bash
# Reproduces the GRAWA paper's claims at CPU scale in the paper's regime (issue 27) and writes the
# report, with the run table docs/reproduction/runs.csv it can be recomputed from (`grawa-train
# reproduction-report --from-csv`). The plan and its sizing: docs/reproduction-plan.md.
#
#   scripts/reproduce.sh [--quick | --check] [--dry-run] [--doc FILE] [OUT]
#
#   OUT        the run folders (default runs/reproduction, runs/reproduction-quick with --quick,
#              runs/reproduction-check with --check)
#   --doc      the report (default docs/reproduction.md, its charts and runs.csv in
#              docs/reproduction/; OUT/reproduction.md with --quick or --check)
#   --quick    a seconds-long smoke version on synthetic data (the tests run it): every stage, tiny
#              step budgets instead of a clock, two seeds, two workers (four when crowded)
#   --check    the full plan's runs with their real flags and data, one seed, one grid rate, 2
#              steps each (about 2 minutes): every flag and file the full run needs, checked
#   --dry-run  run nothing: print each stage's runs (finished, to resume, new) and the estimated
#              wall time of what is left, from the cost model below
#
# Environment: GRAWA_BIN (the binary; default: `cargo build --release`, then
# target/release/grawa-train), REPRO_THREADS (--threads of every run; default 2), GRAWA_DATA (the
# data folder, as for grawa-train and scripts/fetch-data.sh).
#
# Resumable, built on scripts/sweep.sh: a run with a summary.json is skipped, an interrupted one
# (it checkpoints on Ctrl-C) resumes, a flatness.json already written is kept, and the learning
# rates the grid chose are kept in OUT/lr.tsv (delete it to choose again). Ctrl-C stops the
# current run after its checkpoint and exits 130; run the same command again to go on. Each
# invocation appends the wall time of every stage to OUT/timings.tsv (the report sums them) and
# records the machine in OUT/machine.txt.
#
# Stages (every run: Fashion-MNIST, the CNN, batch 64, --threads 2, a 30 s budget with the rate
# x0.1 at 20 s, evaluations every 5 s of it, 2,000 training images held out for validation):
#   grid/fmnist-cnn-eth       7 algorithms (sync) x 3 rates x seed 100 on the Ethernet link:
#                             0.025 0.05 0.1, x4 for ddp and ddp-sam (their 4 workers' gradients
#                             average to one batch of 256: Goyal et al. 2017's linear rule); the
#                             best final validation accuracy -> OUT/lr.tsv
#   accuracy/fmnist-cnn-eth   mgrawa and lgrawa under async and sync, ddp ddp-sam easgd lsgd
#                             local-sgd: 9 methods x seeds 1-5, 4 workers, cluster Ethernet
#                             (--link 1Gbit/s,50us: 10 GbE scaled to this CPU's step time);
#                             flatness of each (Lanczos 6 iterations x 1 start, Hutchinson 4)
#   accuracy/fmnist-cnn-pcie  async mgrawa and lgrawa, ddp easgd lsgd local-sgd x 5 seeds on
#                             --link pcie4-x16 (a workstation's GPUs)
#   crowding                  async mgrawa and lgrawa, ddp easgd lsgd x 5 seeds: 8 workers, two of
#                             them at half speed (DDP's rate x2 again: its batch is 512)
#   communication             async mgrawa and lgrawa, local-sgd at tau 128 x 5 seeds
#   report                    grawa-train reproduction-report OUT --out DOC
# The async variants take their algorithm's rate; every stage the Ethernet grid's choice.
#
# Budget arithmetic (2 cores; docs/reproduction-plan.md has the measurements): a run costs its
# 30 s budget (evaluations are inside it) plus RUN_OVERHEAD_S to start, load the data and score
# and checkpoint the end; a flatness measurement FLATNESS_S.
#   grid           21 runs x (30 + 5) s                                    12.3 min
#   accuracy, eth  45 runs x 35 s                                           26.3 min
#   accuracy, pcie 30 runs x 35 s                                           17.5 min
#   crowding       25 runs x 35 s                                           14.6 min
#   communication  15 runs x 35 s                                            8.8 min
#   flatness       45 x 30 s                                                22.5 min
#   build, data, report                                                      4   min
#   total          136 runs, 45 measurements                           about 1 h 46 min
# leaving 29 minutes (21 %) of 2 h 15 min for a busier machine (budgets are wall clock: load
# stretches the overheads and flatness, not the budgets). `--dry-run` prints the same sums for
# what is left.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
invocation="scripts/reproduce.sh"
[[ $# -eq 0 ]] || invocation+="$(printf ' %q' "$@")"

# The cost model of --dry-run (seconds; see the header).
RUN_OVERHEAD_S=5
FLATNESS_S=30
FIXED_S=240

quick=0
check=0
dry=0
doc=""
out=""
while [[ $# -gt 0 ]]; do
    case "$1" in
    --quick) quick=1 ;;
    --check) check=1 ;;
    --dry-run) dry=1 ;;
    --doc)
        [[ $# -ge 2 ]] || { echo "reproduce: --doc needs a file" >&2; exit 2; }
        doc=$2
        shift
        ;;
    -h | --help)
        sed -n '2,21p' "$0"
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
[[ $quick == 0 || $check == 0 ]] || { echo "reproduce: --quick or --check, not both" >&2; exit 2; }
if [[ -z "$out" ]]; then
    out="$repo/runs/reproduction"
    [[ $quick == 1 ]] && out="$repo/runs/reproduction-quick"
    [[ $check == 1 ]] && out="$repo/runs/reproduction-check"
fi
[[ $dry == 1 ]] || mkdir -p "$out"
[[ ! -d "$(dirname "$out")" ]] || out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
if [[ -z "$doc" ]]; then
    doc="$repo/docs/reproduction.md"
    [[ $quick == 1 || $check == 1 ]] && doc="$out/reproduction.md"
fi
cd "$repo"

# ---- the plan ---------------------------------------------------------------------------------
grid_algos="mgrawa lgrawa easgd lsgd local-sgd"
grid_scaled="ddp ddp-sam" # their rates scaled by the worker count
eth_methods="mgrawa:async lgrawa:async mgrawa lgrawa ddp ddp-sam easgd lsgd local-sgd"
pcie_methods="mgrawa:async lgrawa:async ddp easgd lsgd local-sgd"
crowd_methods="mgrawa:async lgrawa:async ddp easgd lsgd"
tau_methods="mgrawa:async lgrawa:async local-sgd"
eth_link="1Gbit/s,50us"
pcie_link="pcie4-x16"
threads=${REPRO_THREADS:-2}
grid_seeds="100"
if [[ $quick == 1 ]]; then
    RUN_OVERHEAD_S=1 FLATNESS_S=1 FIXED_S=0
    seeds="1 2"
    workers=2
    crowd_workers=4
    crowd_speeds="1,1,1,0.5"
    val_images=64
    other_tau=8
    grid_rates="0.02 0.05"
    eth=synthetic-eth
    pcie=synthetic-pcie
    budget_s=0
    run=(--dataset synthetic --model mlp --synthetic-train 1024 --synthetic-test 256 --steps 48
        --batch-size 8 --eval-every 8 --threads "$threads" --quiet)
    flat=(--iterations 4 --starts 1 --hutchinson 2 --samples 32)
else
    seeds="1 2 3 4 5"
    workers=4
    crowd_workers=8
    crowd_speeds="1,1,1,1,1,1,0.5,0.5"
    val_images=2000
    other_tau=128
    grid_rates="0.025 0.05 0.1"
    eth=fmnist-cnn-eth
    pcie=fmnist-cnn-pcie
    budget_s=30
    # A step decay (x0.1) two thirds into the budget (the authors decay at 500 s of 900 s).
    run=(--dataset fashion-mnist --model cnn --minutes 0.5 --batch-size 64 --lr-schedule step
        --milestones 20s --eval-every 5s --threads "$threads" --quiet)
    flat=(--iterations 6 --starts 1 --hutchinson 4)
fi
if [[ $check == 1 ]]; then
    seeds="1"
    grid_rates=${grid_rates%% *}
    run+=(--steps 2)
    flat=(--iterations 2 --starts 1 --hutchinson 1 --samples 32)
    RUN_OVERHEAD_S=5 FLATNESS_S=3 FIXED_S=60 budget_s=0
fi
# The same held-out images at every worker count (each shard gives val_images / workers).
val=(--val-split $((val_images / workers)))
crowd_val=(--val-split $((val_images / crowd_workers)))
scaled_rates=$(awk -v m="$workers" '{ for (i = 1; i <= NF; i++) printf "%s%g", (i > 1 ? " " : ""), $i * m }' <<<"$grid_rates")
lr_tsv="$out/lr.tsv"
crowd_lr_tsv="$out/lr-crowding.tsv"

# ---- the binary, and the flags the plan needs ---------------------------------------------------
need_binary() {
    if [[ -n "${GRAWA_BIN:-}" ]]; then
        bin=$GRAWA_BIN
    else
        cargo build --release
        bin="$repo/target/release/grawa-train"
    fi
    [[ -x "$bin" ]] || { echo "reproduce: no binary at $bin" >&2; exit 2; }
    # --link, --worker-speed, --val-split and --eval-every's durations came in together (issue 24).
    local help flag
    help=$("$bin" --help)
    for flag in --link --worker-speed --val-split; do
        grep -q -- "$flag" <<<"$help" ||
            { echo "reproduce: $bin has no $flag (issue 24's flags): rebuild it" >&2; exit 2; }
    done
}
bin=${GRAWA_BIN:-$repo/target/release/grawa-train}
[[ $dry == 1 ]] || need_binary

# ---- timing: one line per stage and invocation in OUT/timings.tsv -------------------------------
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

# run_part NAME COMMAND...: COMMAND, timed as stage NAME.
run_part() {
    begin "$1"
    shift
    "$@"
    finish done
}

# sweep DIR METHODS SEEDS [GRID_FLAG GRID_VALUES] -- FLAGS...: scripts/sweep.sh (LR_TSV as set).
sweep() {
    local dir=$1 methods=$2 seeds=$3 flag="" values=""
    shift 3
    if [[ "$1" != "--" ]]; then
        flag=$1 values=$2
        shift 2
    fi
    GRAWA_BIN="$bin" SWEEP_REPORT=0 SWEEP_DRY_RUN=$dry GRID_FLAG="$flag" GRID_VALUES="$values" \
        LR_TSV="${LR_TSV:-}" scripts/sweep.sh "$dir" "$methods" "$seeds" "$@"
}

# ---- the stages --------------------------------------------------------------------------------
grid() {
    sweep "$out/grid/$eth" "$grid_algos" "$grid_seeds" --lr "$grid_rates" -- \
        "${run[@]}" --workers "$workers" "${val[@]}" --link "$eth_link"
    sweep "$out/grid/$eth" "$grid_scaled" "$grid_seeds" --lr "$scaled_rates" -- \
        "${run[@]}" --workers "$workers" "${val[@]}" --link "$eth_link"
}

# choose_rates: OUT/lr.tsv from the grid (kept once written), and crowding's table from it.
choose_rates() {
    if [[ -f "$lr_tsv" ]]; then
        echo "lr: kept $lr_tsv"
    else
        "$bin" reproduction-report "$out" --choose-lr "$eth" >"$lr_tsv.tmp"
        local algo
        for algo in $grid_algos $grid_scaled; do
            awk -F'\t' -v a="$algo" '$1 == a { found = 1 } END { exit !found }' "$lr_tsv.tmp" || {
                echo "reproduce: the grid chose no learning rate for $algo (no run of it in" \
                    "$out/grid/$eth finished with a validation score); run again to retry its" \
                    "runs, or write its line into $lr_tsv" >&2
                rm -f "$lr_tsv.tmp"
                exit 1
            }
        done
        mv "$lr_tsv.tmp" "$lr_tsv"
    fi
    sed 's/^/lr: /' "$lr_tsv"
    # DDP's batch grows with the workers: its rate by the same linear rule as the grid's.
    awk -F'\t' -v OFS='\t' -v k="$crowd_workers" -v m="$workers" \
        '$1 == "ddp" || $1 == "ddp-sam" { $2 = $2 * k / m } { print }' "$lr_tsv" >"$crowd_lr_tsv"
}

accuracy_eth() {
    LR_TSV=$lr_tsv sweep "$out/accuracy/$eth" "$eth_methods" "$seeds" -- \
        "${run[@]}" --workers "$workers" "${val[@]}" --link "$eth_link"
}

accuracy_pcie() {
    LR_TSV=$lr_tsv sweep "$out/accuracy/$pcie" "$pcie_methods" "$seeds" -- \
        "${run[@]}" --workers "$workers" "${val[@]}" --link "$pcie_link"
}

crowding() {
    LR_TSV=$crowd_lr_tsv sweep "$out/crowding" "$crowd_methods" "$seeds" -- \
        "${run[@]}" --workers "$crowd_workers" "${crowd_val[@]}" --link "$eth_link" \
        --worker-speed "$crowd_speeds"
}

communication() {
    LR_TSV=$lr_tsv sweep "$out/communication" "$tau_methods" "$seeds" --tau "$other_tau" -- \
        "${run[@]}" --workers "$workers" "${val[@]}" --link "$eth_link"
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
    scripts/fetch-data.sh fashion-mnist
}

# ---- --dry-run: the runs left and their estimated time ------------------------------------------
# plan_line STAGE NEW RESUME FINISHED SECONDS_EACH: one line, and the running totals (what is
# left, and the whole plan).
left_s=0
whole_s=0
plan_line() {
    local s=$((($2 + $3) * $5))
    left_s=$((left_s + s))
    whole_s=$((whole_s + ($2 + $3 + $4) * $5))
    printf '%-16s %3d new, %3d to resume, %3d done: about %3d min left\n' "$1" "$2" "$3" "$4" \
        $(((s + 30) / 60))
}

# hours_minutes SECONDS: "1 h 46 min".
hours_minutes() {
    echo "$(($1 / 3600)) h $(((($1 % 3600) + 30) / 60)) min"
}

# plan_stage STAGE FUNCTION: the sweep's own dry run, counted.
plan_stage() {
    local lines
    lines=$("$2" | grep '^plan: ' || true)
    plan_line "$1" "$(grep -c ' new$' <<<"$lines")" "$(grep -c ' resume$' <<<"$lines")" \
        "$(grep -c ' finished$' <<<"$lines")" $((budget_s + RUN_OVERHEAD_S))
}

dry_run() {
    echo "reproduce --dry-run: the $([[ $quick == 1 ]] && echo quick || { [[ $check == 1 ]] && echo check || echo full; }) plan in $out"
    plan_stage grid grid
    plan_stage "accuracy, eth" accuracy_eth
    plan_stage "accuracy, pcie" accuracy_pcie
    plan_stage crowding crowding
    plan_stage communication communication
    local name measured=0 todo=0
    for name in $(accuracy_eth | sed -n 's/^plan: \([^ ]*\) .*/\1/p'); do
        if [[ -f "$out/accuracy/$eth/$name/flatness.json" ]]; then
            measured=$((measured + 1))
        else
            todo=$((todo + 1))
        fi
    done
    plan_line flatness "$todo" 0 "$measured" "$FLATNESS_S"
    left_s=$((left_s + FIXED_S))
    whole_s=$((whole_s + FIXED_S))
    echo "build, data and report: about $((FIXED_S / 60)) min"
    echo "estimated wall time left: about $(hours_minutes $left_s), of $(hours_minutes $whole_s)" \
        "for the whole plan (on a quiet 2-core machine; the full plan must fit 2 h 15 min)"
    [[ -f "$lr_tsv" ]] && echo "learning rates kept in $lr_tsv"
    return 0
}

if [[ $dry == 1 ]]; then
    dry_run
    exit 0
fi
trap on_exit EXIT
trap 'exit 130' INT TERM

# ---- the record of this invocation ------------------------------------------------------------
{
    printf 'command\t%s\n' "$invocation"
    mode=full
    [[ $quick == 0 ]] || mode="quick (smoke test on synthetic data)"
    [[ $check == 0 ]] || mode="check (the full plan's flags and data, one seed, 2 steps a run)"
    printf 'mode\t%s\n' "$mode"
    printf 'base\t%s\n' "$eth"
    printf 'note: links\t%s\n' "$eth: --link $eth_link, cluster Ethernet: 10 GbE scaled to this \
CPU's step time (docs/reproduction-plan.md); $pcie: --link $pcie_link, a workstation's PCIe 4.0 \
x16; crowding and communication on $eth's link"
    printf 'note: learning rates\t%s\n' "each algorithm's rate chosen on grid/$eth (rates \
$grid_rates, x$workers for ddp and ddp-sam by the linear scaling rule; seed $grid_seeds; sync) by \
the best final validation accuracy, kept in lr.tsv; the async variants take their algorithm's \
rate, every stage the $eth grid's choice; with $crowd_workers workers DDP's rate is x$((crowd_workers / workers)) again"
    [[ $quick == 1 || $check == 1 ]] ||
        printf 'note: traded to fit 2 h 15 min on 2 cores\t%s\n' "MNIST-MLP dropped (saturated) and \
with it the MLP ablations; ${budget_s} s budgets, not the authors' 15 minutes (about 1.4 epochs: the \
claims are judged early in training); one grid seed, the grid's choice reused by the async \
variants and every other stage; SAM and sync GRAWA on the Ethernet link only; flatness on the \
Ethernet setting only, at few Lanczos iterations and probes (its order comparable, not its Ritz \
sum); crowding one place (8 workers, two at half speed); tau 32 and 128 only; the rivals sync \
(docs/reproduction-plan.md)"
    printf 'note: held out\t%s\n' "$val_images training images for validation (--val-split \
per shard), the same images at every worker count"
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

# ---- the stages, in order ----------------------------------------------------------------------
[[ $quick == 1 ]] || run_part "data" fetch_data
run_part "grid" grid
run_part "learning rates" choose_rates
run_part "$eth: training" accuracy_eth
run_part "$eth: flatness" flatness "$out/accuracy/$eth" "${flat[@]}"
run_part "$pcie: training" accuracy_pcie
run_part "crowding" crowding
run_part "communication" communication

echo "== reproduce: report"
mkdir -p "$(dirname "$doc")"
doc="$(cd "$(dirname "$doc")" && pwd)/$(basename "$doc")"
# Paths inside the repository are given relative to it (the report quotes the runs folder).
"$bin" reproduction-report "${out#"$repo"/}" --out "${doc#"$repo"/}" >/dev/null
echo "reproduce: report in $doc; runs in $out"
