#!/bin/sh
# hessian.sh: the Hessian benchmark of issue 9: the top eigenvalue of the default model's
# Hessian (assets/default-model.safetensors) over the WHOLE train split of the default data
# set, basin's `hessian top=1 trace=off` (exact products: the R-operator) against PyHessian's
# power iteration on PyTorch's double backward (tests/bench/hessian_ref.py, float32) on the
# same model and the same clips (basin's `data export`), in the same run, each with the same
# threads. Both stop when the Rayleigh quotient's relative change is below 1e-3 (PyHessian's
# rule) from their own random start, so the eigenvalues agree to about that and the number
# of products differs; the figure compared is the time of one Hessian-vector product.
# Prints RESULT lines and a markdown row.
#   tests/bench/hessian.sh [BASIN] [THREADS]
set -u
BASIN=${1:-./basin}
THREADS=${2:-2}
REF=${REF:-../shared/peers/basin_ref.py}
PY=/usr/bin/python3
model=${MODEL:-assets/default-model.safetensors}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

start=$(date +%s.%N)
printf 'set threads=%s\nload %s\ndata default\nhessian top=1 trace=off\n' "$THREADS" "$model" |
    "$BASIN" > "$tmp/basin.out" 2>&1 || { cat "$tmp/basin.out"; exit 1; }
end=$(date +%s.%N)
grep -E "^hessian: |^  loss |Hessian-vector products|^ +1 " "$tmp/basin.out"
eig=$(sed -n 's/^ *1 \{1,\}\([0-9.eE+-]*\) *(\([0-9]*\) iterations.*/\1/p' "$tmp/basin.out" | head -n1)
iters=$(sed -n 's/^ *1 \{1,\}[0-9.eE+-]* *(\([0-9]*\) iterations.*/\1/p' "$tmp/basin.out" | head -n1)
hvp=$(sed -n 's/.*Hessian-vector products (R-op), \([0-9.eE+-]*\) s each.*/\1/p' "$tmp/basin.out")
clips=$(sed -n 's/^hessian: .*: \([0-9]*\) clips.*/\1/p' "$tmp/basin.out")
wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
[ -n "$eig" ] && [ -n "$hvp" ] || { echo "hessian bench: no eigenvalue in basin's output:"; cat "$tmp/basin.out"; exit 1; }

if ! "$PY" -c 'import torch' 2>/dev/null; then
    echo "RESULT hessian clips $clips threads $THREADS basin_eig $eig basin_iters $iters basin_hvp_s $hvp basin_wall_s $wall peer n/a (no python3-torch)"
    exit 0
fi
printf 'set threads=%s\nload %s\ndata default\ndata export %s/train.safetensors split=train\n' "$THREADS" "$model" "$tmp" |
    "$BASIN" >/dev/null || { echo "hessian bench: data export failed"; exit 1; }
export GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736:glibc.malloc.top_pad=268435456
start=$(date +%s.%N)
ref=$(OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS REF_DIR=$(dirname "$REF") \
    "$PY" tests/bench/hessian_ref.py "$model" "$tmp/train.safetensors" --top 1 --threads "$THREADS") ||
    { echo "hessian bench: hessian_ref.py failed"; exit 1; }
end=$(date +%s.%N)
echo "$ref"
pwall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
peig=$(printf '%s\n' "$ref" | sed -n 's/.* eig1 \([0-9.eE+-]*\).*/\1/p')
pprod=$(printf '%s\n' "$ref" | sed -n 's/.* products \([0-9]*\).*/\1/p')
phvp=$(printf '%s\n' "$ref" | sed -n 's/.* hvp_s \([0-9.eE+-]*\).*/\1/p')
rel=$(awk -v a="$eig" -v b="$peig" 'BEGIN { d = a - b; if (d < 0) d = -d; printf "%.1e", d / (b < 0 ? -b : b) }')
ratio=$(awk -v a="$phvp" -v b="$hvp" 'BEGIN { printf "%.2f", a / b }')
echo "RESULT hessian clips $clips threads $THREADS basin_eig $eig basin_iters $iters basin_hvp_s $hvp basin_wall_s $wall peer_eig $peig peer_products $pprod peer_hvp_s $phvp peer_wall_s $pwall hvp_speedup $ratio eig_rel_diff $rel"
echo "| top Hessian eigenvalue, default model, whole train split ($clips clips), $THREADS threads | basin $eig ($iters products, $hvp s each, $wall s in all) | PyTorch $peig ($pprod products, $phvp s each, $pwall s in all) | ${ratio}x a product | eigenvalues differ by $rel |"
