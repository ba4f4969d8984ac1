#!/bin/sh
# analysis.sh: erf and hessian against PyTorch (shared/peers/basin_ref.py), on fresh inputs.
#   1. ERF: for the three model fixtures and every tap basin_ref.py names, on new random
#      inputs larger than the RF, basin's `erf layer=TAP input=FILE --csv` against
#      basin_ref.py erf: every cell within 1e-5 of the peak, and no gradient outside the
#      cells basin writes (the theoretical RF within the input).
#   2. Hessian: the default model on 64 clips of the default data set's train split, basin's
#      `hessian top=2 tol=1e-6` against PyHessian's power iteration on exact products
#      (tests/bench/hessian_ref.py, float64) on the same clips: loss, gradient norm and the
#      two eigenvalues within 1e-3 relative.
# Needs Debian's python3-torch; run by `make interop` (run.sh). Exit status 0 agree, 1 not.
set -eu
BASIN=${BASIN:-./basin}
REF=${REF:-../shared/peers/basin_ref.py}
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
REF_DIR=$(cd "$(dirname "$REF")" && pwd)
export REF_DIR
fail=0

"$PY" - "$tmp" <<'PYEOF'
import os, sys, torch
sys.path.insert(0, os.environ["REF_DIR"])
import basin_ref as r
g = torch.Generator().manual_seed(31)
r.st_save(os.path.join(sys.argv[1], "x2.safetensors"), {"x": torch.randn(4, 2, 48, 120, generator=g)}, {"basin.format": "1"})
r.st_save(os.path.join(sys.argv[1], "x1.safetensors"), {"x": torch.randn(4, 1, 32, 120, generator=g)}, {"basin.format": "1"})
PYEOF

for spec in "cpresnet x2 stem s1 s2 s3 head" "sepnet x1 bn0 b1 b2 b3 b4" "cnn10 x1 bn0 b1 b2 b3 b4"; do
    # shellcheck disable=SC2086
    set -- $spec
    a=$1 x=$2
    shift 2
    for tap in "$@"; do
        "$PY" "$REF" erf "tests/data/models/$a.safetensors" "$tmp/$x.safetensors" "$tmp/ref.safetensors" --tap "$tap"
        printf 'load tests/data/models/%s.safetensors\nerf layer=%s input=%s/%s.safetensors --csv %s/basin.csv\n' \
            "$a" "$tap" "$tmp" "$x" "$tmp" | "$BASIN" > "$tmp/out.txt" 2>&1 || { cat "$tmp/out.txt"; fail=1; continue; }
        "$PY" - "$tmp/ref.safetensors" "$tmp/basin.csv" "$a $tap" <<'PYEOF' || fail=1
import csv, os, sys, torch
sys.path.insert(0, os.environ["REF_DIR"])
import basin_ref as r
ref = r.st_load(sys.argv[1])[0]["erf"].double()
rows = list(csv.DictReader(open(sys.argv[2])))
got = torch.zeros_like(ref)
C = ref.shape[0]
for row in rows:
    f, t = int(row["f"]), int(row["t"])
    for c in range(C):
        got[c, f, t] = float(row[f"erf_c{c}"] if C > 1 else row["erf"])
err = ((got - ref).abs().max() / ref.abs().max()).item()
outside = int(((got == 0) & (ref != 0)).sum())
ok = err < 1e-5 and outside == 0
print(f"erf {sys.argv[3]:16s} {len(rows):5d} cells: max difference {err:.1e} of the peak, "
      f"{outside} non-zero cells outside the RF{'' if ok else '  FAIL'}")
sys.exit(0 if ok else 1)
PYEOF
    done
done

# 2. the Hessian of the default model on 64 clips of the default data set
printf 'load assets/default-model.safetensors\ndata default\ndata export %s/train.safetensors split=train norm=model\n' "$tmp" \
    | "$BASIN" > "$tmp/export.txt" 2>&1 ||
    printf 'load assets/default-model.safetensors\ndata default\ndata export %s/train.safetensors split=train norm=none\n' "$tmp" \
    | "$BASIN" > "$tmp/export.txt" 2>&1 || { cat "$tmp/export.txt"; exit 1; }
printf 'load assets/default-model.safetensors\ndata default\nhessian top=2 tol=1e-6 iters=300 trace=off n=64\n' \
    | "$BASIN" > "$tmp/basin.txt" 2>&1 || { cat "$tmp/basin.txt"; exit 1; }
"$PY" tests/bench/hessian_ref.py assets/default-model.safetensors "$tmp/train.safetensors" --top 2 --tol 1e-6 \
    --iters 300 --n 64 --double > "$tmp/ref.txt"
"$PY" - "$tmp/basin.txt" "$tmp/ref.txt" <<'PYEOF' || fail=1
import re, sys
b, r = open(sys.argv[1]).read(), open(sys.argv[2]).read()
loss = float(re.search(r"loss ([0-9.eE+-]+) \(mean", b).group(1))
grad = float(re.search(r"\|gradient\| ([0-9.eE+-]+)", b).group(1))
eigs = [float(v) for v in re.findall(r"^ +[12] +([0-9.eE+-]+) +\(", b, re.M)]
ref = dict(zip(*[iter(r.split()[2:])] * 2))
pairs = [("loss", loss, float(ref["loss"])), ("|gradient|", grad, float(ref["grad_norm"])),
         ("eigenvalue 1", eigs[0], float(ref["eig1"])), ("eigenvalue 2", eigs[1], float(ref["eig2"]))]
ok = True
for name, x, y in pairs:
    rel = abs(x - y) / abs(y)
    ok &= rel < 1e-3
    print(f"hessian {name:13s} basin {x:.6g}  PyTorch (float64) {y:.6g}  relative difference {rel:.1e}"
          f"{'' if rel < 1e-3 else '  FAIL'}")
sys.exit(0 if ok else 1)
PYEOF
exit $fail
