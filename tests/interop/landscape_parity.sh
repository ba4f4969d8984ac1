#!/bin/sh
# landscape_parity.sh: `landscape` against the PyTorch reference (shared/peers/basin_ref.py
# landscape) on the same model, the same features and the same saved directions, both ways:
#   1. directions drawn and saved by basin (save-dirs=), read by basin_ref;
#   2. directions made by basin_ref make-dirs, read by basin (dirs=).
# Data: a fresh 40-clip synthesised set (1 s clips), its train split exported by basin
# (`data export`: the model's front end, as the landscape computes it); model: the default
# model. A 5 x 5 grid on +-0.5 (and a 1-D slice): every loss within 1e-4 relative, the
# accuracies equal, the sharpness lines within 1e-4. Needs Debian's python3-torch; run by
# `make interop` (run.sh). Exit status: 0 agree, 1 differ, 2 setup failed.
set -eu
BASIN=${BASIN:-./basin}
REF=${REF:-../shared/peers/basin_ref.py}
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME="$tmp/cache"
model=assets/default-model.safetensors

printf 'synth out=%s/ds clips=40 seconds=1\ndata %s/ds\nload %s\ndata export %s/train.safetensors split=train\n' \
    "$tmp" "$tmp" "$model" "$tmp" | "$BASIN" >/dev/null || exit 2
"$PY" "$REF" make-dirs "$model" 7 "$tmp/ref-dirs.safetensors" || exit 2
printf 'data %s/ds\nload %s\nlandscape grid=5 range=0.5 eps=0.5 seed=3 save-dirs=%s/basin-dirs.safetensors --csv %s/b1.csv\nlandscape grid=5 range=0.5 eps=0.5 dirs=%s/ref-dirs.safetensors --csv %s/b2.csv\nlandscape grid=7 range=0.3 dims=1 eps=0.3 dirs=%s/ref-dirs.safetensors --csv %s/b3.csv\n' \
    "$tmp" "$model" "$tmp" "$tmp" "$tmp" "$tmp" "$tmp" "$tmp" | "$BASIN" >"$tmp/basin.out" 2>&1 || { cat "$tmp/basin.out"; exit 2; }
"$PY" "$REF" landscape "$model" "$tmp/train.safetensors" "$tmp/basin-dirs.safetensors" --grid 5 --range 0.5 > "$tmp/r1.csv" || exit 2
"$PY" "$REF" landscape "$model" "$tmp/train.safetensors" "$tmp/ref-dirs.safetensors" --grid 5 --range 0.5 > "$tmp/r2.csv" || exit 2
# the slice: basin_ref's row beta = 0 of a 7 x 7 grid
"$PY" "$REF" landscape "$model" "$tmp/train.safetensors" "$tmp/ref-dirs.safetensors" --grid 7 --range 0.3 > "$tmp/r3.csv" || exit 2

"$PY" - "$tmp" <<'PYEOF'
import sys
tmp = sys.argv[1]
def rows(p, slice_row=None):
    out, sharp = {}, None
    for line in open(p):
        if line.startswith("# sharpness"):
            sharp = float(line.split()[2])
        if line[0].isdigit():
            ix, iy, a, b, loss, acc = line.strip().split(",")
            if slice_row is not None:
                if int(iy) != slice_row:
                    continue
                iy = "0"
            out[(int(ix), int(iy))] = (float(loss), float(acc))
    return out, sharp
ok = True
for case, (b, r, slice_row) in {"basin's directions": ("b1", "r1", None), "basin_ref's directions": ("b2", "r2", None),
                                 "1-D slice": ("b3", "r3", 3)}.items():
    (bb, bs), (rr, rs) = rows(f"{tmp}/{b}.csv"), rows(f"{tmp}/{r}.csv", slice_row)
    worst = max(abs(bb[k][0] - rr[k][0]) / abs(rr[k][0]) for k in rr)
    same_acc = all(abs(bb[k][1] - rr[k][1]) < 1e-6 for k in rr)
    good = set(bb) == set(rr) and worst < 1e-4 and same_acc
    if slice_row is None:
        good = good and abs(bs - rs) <= 1e-4 * abs(rs)
    ok &= good
    print(f"landscape ({case}): {len(rr)} points, max relative difference {worst:.2e}"
          + ("" if slice_row is not None else f", sharpness {bs:.6g} vs {rs:.6g}") + ("" if good else "  FAIL"))
sys.exit(0 if ok else 1)
PYEOF
