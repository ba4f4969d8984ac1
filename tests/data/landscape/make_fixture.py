#!/usr/bin/python3
"""Make the landscape fixtures of tests/test_landscape.c with the PyTorch reference.

Run from the repository root (shared/ beside it):
    /usr/bin/python3 tests/data/landscape/make_fixture.py tests/data/landscape

For two small models (a damped cpresnet and a sepnet, random weights and BN statistics) it
writes <arch>.safetensors (basin_ref.save_model), <arch>-data.safetensors ('x' (N, C, F, T)
features, 'y' (N,) int64 labels), <arch>-dirs.safetensors (basin_ref.py make-dirs, seed 7:
filter-normalised, 1-D tensors zero) and <arch>-ref.csv: basin_ref.py landscape on a 5 x 5
grid over +-0.5 (the CSV and its '# sharpness' line, eps 0.5, exactly as the command prints
them). basin's grid on the same model, data and directions must agree within 1e-4.
"""
import os
import subprocess
import sys

import torch

here = os.path.dirname(os.path.abspath(__file__))
peers = os.path.join(here, "..", "..", "..", "..", "shared", "peers")
sys.path.insert(0, peers)
import basin_ref as ref  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else here
g = torch.Generator().manual_seed(909)
models = {
    "cpresnet": (ref.CpResNet(width=4, rho=5, damping=0.1, blocks=(1, 1, 1), classes=5), (40, 1, 24, 32)),
    "sepnet": (ref.SepNet(channels=(4, 8, 8, 8), mels=32, classes=4), (40, 1, 32, 24)),
}
for name, (m, shape) in models.items():
    with torch.no_grad():
        for pname, p in m.named_parameters():
            p.normal_(0, 0.4 if p.dim() > 1 else 0.1, generator=g)
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5, generator=g)
                mod.running_mean.normal_(0, 0.2, generator=g)
                mod.running_var.uniform_(0.5, 1.5, generator=g)
    m.eval()
    model = os.path.join(out, f"{name}.safetensors")
    data = os.path.join(out, f"{name}-data.safetensors")
    dirs = os.path.join(out, f"{name}-dirs.safetensors")
    ref.save_model(m, model)
    x = torch.randn(*shape, generator=g)
    y = torch.randint(0, m.config["classes"], (shape[0],), generator=g)
    ref.st_save(data, {"x": x, "y": y}, {"basin.format": "1"})
    run = [sys.executable, os.path.join(peers, "basin_ref.py")]
    subprocess.run(run + ["make-dirs", model, "7", dirs], check=True)
    with open(os.path.join(out, f"{name}-ref.csv"), "w") as f:
        subprocess.run(run + ["landscape", model, data, dirs, "--grid", "5", "--range", "0.5"], check=True, stdout=f)
    print(name, sum(p.numel() for p in m.parameters()), "parameters", shape)
