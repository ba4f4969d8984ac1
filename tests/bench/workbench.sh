#!/bin/sh
# workbench.sh: what the split view costs a training run (issue 8: the view redraws at least
# 10 times a second without slowing training by more than 5 %). The same run, `new cpresnet
# width=16` trained for EPOCHS epochs on the default data set with a fixed seed and thread
# count, is timed headless (`basin --script`) and in the split view (in tmux at 120 x 40,
# the curves view live), alternately, ROUNDS times each; the training time is the sum of
# epochs.tsv's `seconds` column (evaluation excluded), median over the rounds. Needs tmux.
#   tests/bench/workbench.sh [BASIN] [THREADS] [EPOCHS] [ROUNDS]
# Prints the two medians, the slowdown and a RESULT line.
set -u
BASIN=$(cd "$(dirname "${1:-./basin}")" && pwd)/$(basename "${1:-./basin}")
THREADS=${2:-2}
EPOCHS=${3:-3}
ROUNDS=${4:-3}
if ! command -v tmux >/dev/null 2>&1; then
    echo "workbench bench: tmux missing (make deps installs it): skipped"
    exit 0
fi
tmp=$(mktemp -d)
sock=basin-bench-$$
trap 'tmux -L "$sock" kill-server 2>/dev/null; rm -rf "$tmp"' EXIT

# the training seconds of run folder $1 (epochs.tsv: the `seconds` column)
train_seconds() {
    awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seconds") c = i; next } c { s += $c } END { printf "%.3f", s }' "$1/epochs.tsv"
}

commands() { # out dir
    printf 'set threads=%s seed=1\nnew cpresnet width=16\ndata default\ntrain epochs=%s bs=32 eval=0 out=%s\n' \
        "$THREADS" "$EPOCHS" "$1"
}

# warm the data set's cache once so both modes read the same cached features
commands "$tmp/warm" | sed 's/epochs=[0-9]*/epochs=1/' > "$tmp/warm.basin"
"$BASIN" --script "$tmp/warm.basin" > /dev/null 2>&1 || { echo "workbench bench: the warm-up run failed"; exit 1; }

headless=""
split=""
r=1
while [ $r -le "$ROUNDS" ]; do
    commands "$tmp/h$r" > "$tmp/h$r.basin"
    "$BASIN" --script "$tmp/h$r.basin" > "$tmp/h$r.out" 2>&1 || { cat "$tmp/h$r.out"; exit 1; }
    headless="$headless $(train_seconds "$tmp/h$r")"

    commands "$tmp/s$r" > "$tmp/s$r.cmds"
    echo 'view curves' >> "$tmp/s$r.cmds"
    tmux -L "$sock" -f /dev/null new-session -d -s wb -x 120 -y 40 \
        "TERM=tmux-256color LANG=C.UTF-8 INPUTRC=/dev/null '$BASIN'; sleep 5"
    sleep 2
    while IFS= read -r line; do
        tmux -L "$sock" send-keys -t wb "$line" Enter
        sleep 0.5
    done < "$tmp/s$r.cmds"
    # wait for the run to finish (its model file), at most 30 minutes
    n=0
    while [ ! -f "$tmp/s$r/model.safetensors" ] && [ $n -lt 3600 ]; do sleep 0.5; n=$((n + 1)); done
    tmux -L "$sock" send-keys -t wb 'quit' Enter
    sleep 1
    tmux -L "$sock" kill-server 2>/dev/null
    [ -f "$tmp/s$r/epochs.tsv" ] || { echo "workbench bench: the split-view run left no epochs.tsv"; exit 1; }
    split="$split $(train_seconds "$tmp/s$r")"
    r=$((r + 1))
done
median() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mh=$(median "$headless")
ms=$(median "$split")
slow=$(awk -v h="$mh" -v s="$ms" 'BEGIN { printf "%.1f", 100 * (s - h) / h }')
echo "workbench: training $EPOCHS epochs of cpresnet width 16 on $THREADS threads: headless $mh s (runs:$headless), split view $ms s (runs:$split): $slow %"
echo "RESULT workbench threads $THREADS epochs $EPOCHS headless_s $mh split_s $ms slowdown_pct $slow"
