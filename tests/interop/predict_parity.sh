#!/bin/sh
# predict_parity.sh: `predict` against the PyTorch reference (shared/peers/basin_ref.py) on
# the same saved model and the same clips. basin_ref has no predict command, so it is
# composed here from what its `features` and `forward` commands run (read_wav, features,
# load_model, the module's forward), in one Python process: per window, features of the
# window's samples at the preset's rate, the model's basin.norm, forward, softmax; then the
# mean over windows (predict.h's rule: windows of the training length, 10 s here without
# basin.input, the last one ending at the clip's end; a shorter clip tiled).
# Cases: a 12-s mono clip (two windows, starts 0 and 2 s), a 4-s clip (tiled to 10 s) and a
# 10-s stereo clip (mixed to mono), all 16-bit WAVs at 16 kHz for the panns16k front end;
# a sepnet with random BN statistics, a peaked classifier and random normalisation
# statistics. Passes when every probability agrees within 1e-4.
# Needs Debian's python3-torch; run by `make interop` (run.sh) and by test_predict.c.
# Exit status: 0 agree, 1 differ, 2 setup failed.
set -eu
BASIN=${BASIN:-./basin}
REF=${REF:-../shared/peers/basin_ref.py}
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
REF_DIR=$(cd "$(dirname "$REF")" && pwd)
export REF_DIR

"$PY" - "$tmp" <<'PYEOF' || exit 2
import json, os, sys, wave
import numpy as np, torch
sys.path.insert(0, os.environ["REF_DIR"])
import basin_ref as r
tmp = sys.argv[1]
torch.manual_seed(11)   # the modules draw their initial weights from the global stream
g = torch.Generator().manual_seed(11)
m = r.SepNet(channels=(8, 16, 16, 16), mels=64, classes=10)
with torch.no_grad():
    for bn in (mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)):
        bn.running_mean.normal_(0, 0.2, generator=g)
        bn.running_var.uniform_(0.5, 1.5, generator=g)
        bn.weight.uniform_(0.5, 1.5, generator=g)
        bn.bias.zero_()
    m.fc1.bias.zero_(), m.fc2.bias.zero_()
    m.fc1.weight.mul_(5.0), m.fc2.weight.mul_(5.0)   # outputs that depend on the input
    for name, w in m.named_parameters():
        if ".pw." in name or ".dw_" in name:
            w.mul_(1.5)
p = r.PRESETS["panns16k"]
rs = np.random.RandomState(5)
norm = {"mean": [float(v) for v in rs.uniform(-60, -20, 64)], "std": [float(v) for v in rs.uniform(8, 20, 64)]}
labels = ["c%d" % k for k in range(10)]
r.save_model(m.eval(), os.path.join(tmp, "model.safetensors"),
             {"basin.frontend": json.dumps(dict(preset="panns16k", **p)), "basin.norm": json.dumps(norm),
              "basin.labels": json.dumps(labels)})

def clip(seconds, channels, f0, noise):
    """Gliding tones at f0 (times 1.5 per channel), noise bursts in the second half and a
    noise floor, 16-bit PCM at 16 kHz: clips with different spectra."""
    rs = np.random.RandomState(int(f0))
    t = np.arange(int(seconds * 16000)) / 16000.0
    out = []
    for c in range(channels):
        f = f0 * 1.5 ** c * (1 + 0.3 * np.sin(2 * np.pi * 0.1 * t))
        x = 0.3 * np.sin(2 * np.pi * np.cumsum(f) / 16000.0) * (1 + 0.5 * np.sin(2 * np.pi * 0.3 * t))
        x += noise * rs.randn(len(t)) + 0.3 * (t > seconds / 2) * rs.randn(len(t)) * np.exp(-3 * (t % 1))
        out.append(np.clip(np.round(x * 32767), -32768, 32767).astype("<i2"))
    return np.stack(out, 1)

for name, secs, ch, f0, noise in (("long", 12, 1, 200, 0.01), ("short", 4, 1, 2500, 0.2),
                                  ("stereo", 10, 2, 700, 0.05)):
    with wave.open(os.path.join(tmp, name + ".wav"), "wb") as w:
        w.setnchannels(ch), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(clip(secs, ch, f0, noise).tobytes())
PYEOF

printf 'load %s/model.safetensors\npredict %s/long.wav --csv %s/long.csv\npredict %s/short.wav --csv %s/short.csv\npredict %s/stereo.wav --csv %s/stereo.csv\n' \
    "$tmp" "$tmp" "$tmp" "$tmp" "$tmp" "$tmp" "$tmp" | "$BASIN" > "$tmp/basin.out" || { cat "$tmp/basin.out"; exit 2; }

"$PY" - "$tmp" <<'PYEOF'
import json, os, sys
import numpy as np, torch
sys.path.insert(0, os.environ["REF_DIR"])
import basin_ref as r
tmp = sys.argv[1]
model, meta = r.load_model(os.path.join(tmp, "model.safetensors"))
norm = json.loads(meta["basin.norm"])
mean = torch.tensor(norm["mean"]).view(-1, 1)
std = torch.tensor(norm["std"]).view(-1, 1)
L = 10 * 16000
fail = 0
def ref_probs(y, starts):
    x = torch.stack([(r.features("panns16k", y[s:s + L]) - mean) / std for s in starts])[:, None]
    with torch.no_grad():
        return torch.softmax(model(x).double(), 1).mean(0)

for name, starts in (("long", [0, 2 * 16000]), ("short", [0]), ("stereo", [0])):
    y, rate = r.read_wav(os.path.join(tmp, name + ".wav"))   # channels averaged, as basin's mono mix
    assert rate == 16000
    # what a wrong rule would give, so the comparison is known to be sharp enough to tell:
    # the long clip's first window alone, the short clip padded with zeros
    other = ref_probs(y, [0]) if name == "long" else ref_probs(np.pad(y, (0, L - len(y))), [0]) if len(y) < L else None
    if len(y) < L:
        y = np.resize(y, L)                                   # tiled: x[i mod n]
    probs = ref_probs(y, starts)
    rows = open(os.path.join(tmp, name + ".csv")).read().split()[1:]
    got = torch.tensor([float(l.rsplit(",", 1)[1]) for l in rows], dtype=torch.float64)
    names = [l.rsplit(",", 1)[0] for l in rows]
    err = (got - probs).abs().max().item()
    ok = err < 1e-4 and names == ["c%d" % k for k in range(10)] and len(got) == 10
    note = ""
    if other is not None:
        d = (other - probs).abs().max().item()
        ok &= d > 1e-3
        note = f" ({'its first window alone' if name == 'long' else 'zero padding'} would differ by {d:.1e})"
    print(f"predict parity {name:7s} {len(starts)} window{'s' if len(starts) > 1 else ' '}: top {probs.max().item():.3f}, "
          f"max |basin - PyTorch| = {err:.1e}{note}{'' if ok else '  FAIL'}")
    fail |= not ok
sys.exit(1 if fail else 0)
PYEOF
