#!/bin/sh
# landscape.sh: the landscape benchmark of issue 9: an 11 x 11 landscape (milling24's grid,
# seed 42) of the default model (assets/default-model.safetensors) over the WHOLE train split
# of the default data set (500 clips of 5 s), basin against PyTorch on the same grid in the
# same run: the same model file, the same features (basin's `data export`) and the same
# saved directions (basin's save-dirs), timed in basin_ref.py's landscape() with torch pinned
# to the same threads and its memory kept in the process (bench_ref.sh's settings). Checks
# that the grids agree (1e-4 relative) and prints RESULT lines and a markdown row.
#   [RUNS=3] tests/bench/landscape.sh [BASIN] [THREADS]
# Goal (issue 9): <= 30 s on two cores and >= 3x PyTorch's speed.
set -u
BASIN=${1:-./basin}
THREADS=${2:-2}
REF=${REF:-../shared/peers/basin_ref.py}
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

model=${MODEL:-assets/default-model.safetensors}
# the model is loaded first, so the export takes its front end (and normalisation, if any)
printf 'set threads=%s\nload %s\ndata default\ndata export %s/train.safetensors split=train\n' "$THREADS" "$model" "$tmp" |
    "$BASIN" >/dev/null || { echo "landscape bench: data export failed"; exit 1; }
# Each side runs RUNS times, interleaved (basin, PyTorch, basin, ...), and the fastest run of
# each counts: on a shared machine a burst of another tenant's work then slows one run of
# each side, not a whole side. Every run's time is printed.
RUNS=${RUNS:-3}
have_torch=1
"$PY" -c 'import torch' 2>/dev/null || have_torch=0
GLIBC_TUNABLES_PEER=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736:glibc.malloc.top_pad=268435456
basin_all= peer_all= basin_grid= peer= basin_wall=
for run in $(seq 1 "$RUNS"); do
    start=$(date +%s.%N)
    printf 'set threads=%s\nload %s\ndata default\nlandscape grid=11 range=0.25 seed=42 save-dirs=%s/dirs.safetensors --csv %s/basin.csv\n' \
        "$THREADS" "$model" "$tmp" "$tmp" | "$BASIN" > "$tmp/basin.out" 2>&1 || { cat "$tmp/basin.out"; exit 1; }
    end=$(date +%s.%N)
    t=$(sed -n 's/.*points computed in \([0-9.]*\) s.*/\1/p' "$tmp/basin.out")
    clips=$(sed -n 's/.*data: \([0-9]*\) clips, the whole.*/\1/p' "$tmp/basin.out")
    [ -n "$t" ] && [ -n "$clips" ] || { echo "landscape bench: basin did not compute the whole grid:"; cat "$tmp/basin.out"; exit 1; }
    [ "$run" = 1 ] && grep -E "data: |points computed|^  1 " "$tmp/basin.out"
    basin_all="$basin_all $t"
    if [ -z "$basin_grid" ] || awk -v a="$t" -v b="$basin_grid" 'BEGIN { exit !(a < b) }'; then
        basin_grid=$t
        basin_wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
    fi
    [ "$have_torch" = 1 ] || continue
    GLIBC_TUNABLES=$GLIBC_TUNABLES_PEER OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS \
    "$PY" - "$(dirname "$REF")" "$model" "$tmp" "$THREADS" <<'PYEOF' > "$tmp/ref.out" || { cat "$tmp/ref.out"; exit 1; }
import sys, time
sys.path.insert(0, sys.argv[1])
import torch, basin_ref as r
model_path, tmp, threads = sys.argv[2], sys.argv[3], int(sys.argv[4])
torch.set_num_threads(threads)
model = r.load_model(model_path)[0]
data = r.st_load(f"{tmp}/train.safetensors")[0]
x, y = data["x"].float(), data["y"].long()
dx, dy = r.load_directions(f"{tmp}/dirs.safetensors", model)
r.eval_loss(model, x[:128], y[:128])            # warm-up: oneDNN's first pass
t0 = time.perf_counter()
coords, loss, acc = r.landscape(model, dx, dy, x, y, 11, 0.25, 128)
t = time.perf_counter() - t0
print(f"PEER seconds {t:.3f}")
with open(f"{tmp}/ref.csv", "w") as f:
    for j in range(11):
        for i in range(11):
            f.write(f"{i},{j},{loss[j, i].item():.9g}\n")
PYEOF
    t=$(sed -n 's/PEER seconds //p' "$tmp/ref.out")
    peer_all="$peer_all $t"
    if [ -z "$peer" ] || awk -v a="$t" -v b="$peer" 'BEGIN { exit !(a < b) }'; then peer=$t; fi
done
echo "runs: basin$basin_all s; PyTorch${peer_all:- n/a} s (the fastest of each counts)"
if [ "$have_torch" = 0 ]; then
    echo "RESULT landscape basin_s $basin_grid basin_wall_s $basin_wall peer n/a (no python3-torch)"
    exit 0
fi
worst=$(awk -F, 'NR == FNR { if (FNR > 1 && $1 !~ /^#/) b[$1 "," $2] = $5; next }
    { d = b[$1 "," $2] - $3; if (d < 0) d = -d; d /= ($3 < 0 ? -$3 : $3); if (d > w) w = d }
    END { printf "%.2e", w }' "$tmp/basin.csv" "$tmp/ref.csv")
ratio=$(awk -v a="$peer" -v b="$basin_grid" 'BEGIN { printf "%.2f", a / b }')
echo "RESULT landscape grid 11x11 clips $clips threads $THREADS basin_s $basin_grid basin_wall_s $basin_wall peer_s $peer speedup $ratio max_rel_diff $worst runs $RUNS"
echo "| landscape 11 x 11, default model, whole train split ($clips clips), $THREADS threads, fastest of $RUNS runs each | basin $basin_grid s ($basin_wall s with start-up) | PyTorch $peer s | ${ratio}x | grids agree to $worst |"
awk -v w="$worst" 'BEGIN { exit !(w + 0 < 1e-4) }' || { echo "landscape bench: the grids differ by $worst"; exit 1; }
