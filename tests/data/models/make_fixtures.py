#!/usr/bin/python3
"""Make the model fixtures of tests/test_model_io.c with the PyTorch reference.

Run from the repository root (shared/ beside it):
    /usr/bin/python3 tests/data/models/make_fixtures.py tests/data/models

For each architecture it writes <arch>.safetensors (a small model with random weights and
random BN statistics, saved by basin_ref.save_model) and <arch>-io.safetensors holding an
input 'x' (N, C, F, T) and the eval-mode logits 'logits' the reference computes for it.
"""
import os
import sys

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "..", "..", "shared", "peers"))
import basin_ref as ref  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else here
g = torch.Generator().manual_seed(2026)
models = {
    "cpresnet": (ref.CpResNet(width=8, rho=7, damping=0.1, groups=2, roll=1, blocks=(2, 2, 1),
                              in_ch=2, classes=5), (3, 2, 40, 36)),
    "sepnet": (ref.SepNet(channels=(8, 16, 16, 16), mels=32, classes=4), (3, 1, 32, 40)),
    "cnn10": (ref.Cnn10(width=0.125, mels=32, classes=6), (2, 1, 32, 48)),
}
for name, (m, shape) in models.items():
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.3, generator=g)
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.2, generator=g)
                mod.running_var.uniform_(0.5, 1.5, generator=g)
    m.eval()
    ref.save_model(m, os.path.join(out, f"{name}.safetensors"),
                   {"basin.labels": __import__("json").dumps([f"c{i}" for i in range(m.config["classes"])])})
    x = torch.randn(*shape, generator=g)
    with torch.no_grad():
        logits = m(x)
    ref.st_save(os.path.join(out, f"{name}-io.safetensors"), {"x": x, "logits": logits},
                {"basin.format": "1"})
    print(name, sum(p.numel() for p in m.parameters()), "parameters", tuple(logits.shape))
