# Sourced by scripts/gpu-check.sh: a run of steps under one global deadline that always leaves a
# readable answer, for a remote command that has one hard time limit and brings back only its
# last 12,000 characters of output and at most 8 files of its output folder.
#
# - Every step gets its own limit, capped by the time left before the deadline (minus a reserve
#   for the summary); with too little left it is skipped and says so. A step that ignores SIGTERM
#   is killed 5 s later; one that survives even that (a process stuck in the GPU driver) is
#   abandoned, and the run goes on.
# - OUT/summary.md is rewritten after every step (a run killed from outside still leaves the
#   steps so far) and once more from the EXIT trap, which also packs every log into one
#   OUT/logs.tar.xz and prints the short table of steps last on stdout. OUT holds those two
#   files and nothing else.
#
# The caller sets OUT (the output folder) and WORK (logs and runs, outside OUT), calls
# steps_begin BUDGET_SECONDS, then step NAME LIMIT COMMAND... for each step.

RESERVE=25       # seconds kept for the summary, the pack and the table
KILL_AFTER=5     # seconds between SIGTERM and SIGKILL

steps_begin() {
    DEADLINE=$((SECONDS + $1))
    mkdir -p "$OUT" "$WORK/logs"
    : >"$WORK/steps.tsv"
    trap steps_finish EXIT
    trap 'exit 130' INT TERM HUP
}

# Seconds a step may take now.
time_left() {
    echo $((DEADLINE - RESERVE - SECONDS))
}

# step NAME LIMIT COMMAND...: runs COMMAND with its output in WORK/logs/NAME.txt and records
# NAME, exit status and seconds. Exit 124 = stopped at its limit, 125 = abandoned (would not
# die), "skipped" = no time left. GPU_CHECK_HANG=NAME (a test hook) makes that step hang
# instead, ignoring SIGTERM, to prove the deadline holds.
step() {
    local name=$1 limit=$2
    shift 2
    local left
    left=$(time_left)
    ((limit > left)) && limit=$left
    if ((limit < 5)); then
        record "$name" skipped 0 "no time left before the deadline"
        return 0
    fi
    if [[ "${GPU_CHECK_HANG:-}" == "$name" ]]; then
        set -- bash -c 'trap "" TERM; while :; do sleep 1; done'
    fi
    local log="$WORK/logs/$name.txt" t0=$SECONDS
    echo "gpu-check: $name (limit ${limit} s)" >&2
    # Its own session, so the whole process tree can be killed if timeout cannot end it.
    local session=()
    command -v setsid >/dev/null && session=(setsid)
    "${session[@]}" timeout -k "$KILL_AFTER" "$limit" "$@" >"$log" 2>&1 </dev/null &
    local pid=$! hard_end=$((SECONDS + limit + KILL_AFTER + 5)) rc
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < hard_end)); do
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL -- "-$pid" 2>/dev/null
        rc=125
        echo "gpu-check: $name would not stop; abandoned" >>"$log"
    else
        # (quietly: bash would report a killed job on stderr)
        { wait "$pid"; } 2>/dev/null
        rc=$?
    fi
    local why=""
    ((rc == 124 || rc == 137)) && why="stopped at its limit of ${limit} s"
    ((rc == 125)) && why="would not stop; abandoned"
    record "$name" "$rc" $((SECONDS - t0)) "$why"
    return 0
}

# record NAME STATUS SECONDS NOTE: one row of the table, then the summary rewritten.
record() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$WORK/steps.tsv"
    echo "gpu-check: $1: $2 ($3 s)${4:+, $4}" >&2
    write_summary
}

# True when every step so far exited 0 (none failed, none was skipped): the run's exit status.
steps_ok() {
    ! awk -F'\t' '$2 != "0"' "$WORK/steps.tsv" | grep -q .
}

# The short table: one line per step.
steps_table() {
    echo "| step | exit | s | note |"
    echo "|---|---|---|---|"
    awk -F'\t' '{printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4}' "$WORK/steps.tsv"
}

# OUT/summary.md, replaced whole (never half-written). The caller may define summary_extra to
# add sections after the table.
write_summary() {
    local tmp="$OUT/.summary.md.tmp"
    {
        echo "# ${SUMMARY_TITLE:-GPU check}, $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo
        [[ -f "$WORK/machine.txt" ]] && { echo '```'; cat "$WORK/machine.txt"; echo '```'; echo; }
        steps_table
        local name rc secs note
        while IFS=$'\t' read -r name rc secs note; do
            [[ "$rc" == 0 || "$rc" == skipped ]] && continue
            echo
            echo "Failed: $name (exit $rc), its last lines:"
            echo '```'
            tail -n 8 "$WORK/logs/$name.txt" 2>/dev/null | cut -c1-300
            echo '```'
        done <"$WORK/steps.tsv"
        if declare -F summary_extra >/dev/null; then
            summary_extra
        fi
    } >"$tmp" 2>/dev/null
    mv -f "$tmp" "$OUT/summary.md"
}

steps_finish() {
    local rc=$?
    trap - EXIT INT TERM HUP
    write_summary
    # Everything else in one file: the logs and the runs' small outputs (Python's tarfile where
    # tar has no xz).
    (cd "$WORK" && find logs runs -type f \( -name '*.txt' -o -name '*.json' -o -name '*.jsonl' -o -name '*.md' \) \
        -size -20M 2>/dev/null >files.lst
        tar -cJf "$OUT/logs.tar.xz" -T files.lst 2>/dev/null ||
            timeout 60 python3 -c 'import sys, tarfile
with tarfile.open(sys.argv[1], "w:xz") as t:
    for f in open("files.lst").read().split():
        t.add(f)' "$OUT/logs.tar.xz")
    echo
    echo "gpu-check: $OUT/summary.md, $OUT/logs.tar.xz ($(grep -c . "$WORK/steps.tsv") steps, $SECONDS s)"
    steps_table
    exit "$rc"
}
