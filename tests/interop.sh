#!/bin/sh
# interop.sh: check basin against the PyTorch reference (shared/peers/basin_ref.py) in both
# directions. Needs Debian's python3-torch; not part of `make test`, run by `make interop`.
#   1. models written by basin_ref load in basin and give its logits (also a unit test);
#   2. models written by basin load in basin_ref and give the same logits.
set -eu
BASIN=${BASIN:-./basin}
REF=${REF:-../shared/peers/basin_ref.py}
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for a in cpresnet sepnet cnn10; do
    io=tests/data/models/$a-io.safetensors
    printf 'load tests/data/models/%s.safetensors\nsave %s/%s.safetensors\nforward %s %s/basin.safetensors\n' \
        "$a" "$tmp" "$a" "$io" "$tmp" | "$BASIN" >/dev/null
    "$PY" "$REF" forward "$tmp/$a.safetensors" "$io" "$tmp/ref.safetensors"
    "$PY" - "$tmp/basin.safetensors" "$tmp/ref.safetensors" "$a" <<'PYEOF' || fail=1
import sys, os
sys.path.insert(0, os.environ.get("REF_DIR", "../shared/peers"))
import basin_ref as r
a = r.st_load(sys.argv[1])[0]["logits"]; b = r.st_load(sys.argv[2])[0]["logits"]
err = ((a - b).abs().max() / b.abs().max()).item()
print(f"{sys.argv[3]:10s} basin-written model in PyTorch vs basin: max relative difference {err:.2e}")
sys.exit(0 if err < 1e-4 else 1)
PYEOF
done
exit $fail
