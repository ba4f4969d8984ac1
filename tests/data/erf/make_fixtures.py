#!/usr/bin/python3
"""Make the ERF fixtures of tests/test_erf.c with the PyTorch reference.

Run from the repository root (shared/ beside it):
    /usr/bin/python3 tests/data/erf/make_fixtures.py tests/data/erf

For each model of tests/data/models and its inputs 'x' (<arch>-io.safetensors), it writes
<arch>.safetensors holding erf.<tap> (C, F, T) = basin_ref.erf(model, x, tap): the mean over
the inputs of |d unit / d x|, unit the centre (H//2, W//2) of the tap summed over its
channels, eval mode. Taps: basin_ref's names (cpresnet stem, s1, s2, head; sepnet and cnn10
bn0, b1, b2, b4), which basin's `erf layer=` takes as module names.
"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "..", "..", "shared", "peers"))
import basin_ref as ref  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else here
models = os.path.join(here, "..", "models")
taps = {"cpresnet": ("stem", "s1", "s2", "head"), "sepnet": ("bn0", "b1", "b2", "b4"),
        "cnn10": ("bn0", "b1", "b2", "b4")}
for arch, names in taps.items():
    m = ref.load_model(os.path.join(models, f"{arch}.safetensors"))[0]
    x = ref.st_load(os.path.join(models, f"{arch}-io.safetensors"))[0]["x"]
    t = {f"erf.{tap}": ref.erf(m, x, tap) for tap in names}
    ref.st_save(os.path.join(out, f"{arch}.safetensors"), t, {"basin.format": "1", "basin.taps": ",".join(names)})
    print(arch, {k: tuple(v.shape) for k, v in t.items()})
