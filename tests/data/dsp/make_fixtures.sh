#!/bin/sh
# make_fixtures.sh: regenerate the front-end fixtures of tests/test_dsp.c (see README).
#
# For each preset: a short deterministic clip (silence, tones, noise) as 16-bit PCM WAV at the
# preset's rate, written by the tiny RIFF writer below; basin_ref.py's `features` on it; and
# its (F, T) float32 output copied out of the safetensors file to raw little-endian .f32.
# Also the panns16k mel filterbank from torchaudio (float64, (M, K)).
#
# Usage (from the repository root): sh tests/data/dsp/make_fixtures.sh
# BASIN_REF overrides the reference's path (default /work/shared/peers/basin_ref.py).
set -eu
REF=${BASIN_REF:-/work/shared/peers/basin_ref.py}
PY=/usr/bin/python3
DIR=$(dirname "$0")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for spec in cpjku:22050 sp4asc:44100 panns16k:16000 panns32k:32000; do
    preset=${spec%%:*}
    rate=${spec#*:}
    "$PY" - "$DIR/$preset.wav" "$rate" <<'PYEOF'
import struct, sys
import numpy as np
path, rate = sys.argv[1], int(sys.argv[2])
n = int(1.1 * rate) + 37                      # not a multiple of any hop
t = np.arange(n) / rate
rng = np.random.default_rng(rate)             # seeded per rate: deterministic
x = 0.05 * rng.standard_normal(n)
for f, a in ((440.0, 0.3), (1000.0, 0.2), (3150.0, 0.1), (0.3 * rate, 0.05)):
    x += a * np.sin(2 * np.pi * f * t)
x *= np.minimum(1.0, t / 0.2)                 # 0.2 s fade-in from silence
x[: int(0.05 * rate)] = 0.0                   # 50 ms of digital silence (amin, top_db)
pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2").tobytes()
fmt = struct.pack("<HHIIHH", 1, 1, rate, 2 * rate, 2, 16)
with open(path, "wb") as f:
    f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(pcm)) + b"WAVE")
    f.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt)
    f.write(b"data" + struct.pack("<I", len(pcm)) + pcm)
PYEOF
    "$PY" "$REF" features "$preset" "$DIR/$preset.wav" "$TMP/$preset.safetensors"
    "$PY" - "$TMP/$preset.safetensors" "$DIR/$preset.f32" <<'PYEOF'
import json, struct, sys
src, dst = sys.argv[1], sys.argv[2]
with open(src, "rb") as f:
    b = f.read()
n = struct.unpack("<Q", b[:8])[0]
head = json.loads(b[8:8 + n])
t = head["features"]
assert t["dtype"] == "F32"
lo, hi = t["data_offsets"]
with open(dst, "wb") as f:
    f.write(b[8 + n + lo:8 + n + hi])
print(f"{dst}: features {tuple(t['shape'])} float32")
PYEOF
done

"$PY" - "$REF" "$DIR/panns16k_melfb.f64" <<'PYEOF'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("basin_ref", sys.argv[1])
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
fb = ref.mel_fbank(ref.PRESETS["panns16k"])          # (K, M) float64, torchaudio
fb.T.contiguous().numpy().astype("<f8").tofile(sys.argv[2])
print(f"{sys.argv[2]}: mel filterbank {tuple(fb.T.shape)} float64")
PYEOF
