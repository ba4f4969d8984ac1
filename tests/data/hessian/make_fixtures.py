#!/usr/bin/python3
"""Make the Hessian fixtures of tests/test_hessian.c with PyTorch (float64, autograd).

Run from the repository root (shared/ beside it):
    /usr/bin/python3 tests/data/hessian/make_fixtures.py tests/data/hessian

For the cpresnet and sepnet models of tests/data/models (their inputs 'x' in
<arch>-io.safetensors) and seeded labels, with the loss basin's `hessian` takes (the mean
cross-entropy over the clips, eval mode), it writes <arch>.safetensors holding:
  y            (N) int64 labels
  loss, grad_norm          (1) at the weights
  v.<param>, hv.<param>    a seeded unit vector over every parameter and H v (double
                           backward: torch.autograd.grad of g . v)
  eig          (3) the dense Hessian's eigenvalues of largest magnitude, largest first
  trace        (1) its trace
  bt.<param>, be.<param>   (1) each parameter tensor's diagonal block: its trace and its
                           eigenvalue of largest magnitude
The dense Hessian is built row by row from the gradient's graph (torch.autograd.grad of
each gradient entry), in float64, and decomposed with torch.linalg.eigvalsh.
"""
import os
import sys

import torch
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "..", "..", "shared", "peers"))
import basin_ref as ref  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else here
models = os.path.join(here, "..", "models")
torch.set_default_dtype(torch.float64)
for arch in ("cpresnet", "sepnet"):
    m = ref.load_model(os.path.join(models, f"{arch}.safetensors"))[0].double().eval()
    x = ref.st_load(os.path.join(models, f"{arch}-io.safetensors"))[0]["x"].double()
    g = torch.Generator().manual_seed(9)
    classes = m.config["classes"]
    y = torch.randint(0, classes, (len(x),), generator=g)
    names = [k for k, _ in m.named_parameters()]
    params = [p for _, p in m.named_parameters()]
    loss = F.cross_entropy(m(x), y)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    flat = torch.cat([q.reshape(-1) for q in grads])
    n = flat.numel()
    H = torch.zeros(n, n)
    for i in range(n):
        row = torch.autograd.grad(flat[i], params, retain_graph=True, allow_unused=True)
        H[i] = torch.cat([(r if r is not None else torch.zeros_like(p)).reshape(-1) for r, p in zip(row, params)])
    H = 0.5 * (H + H.T)
    ev = torch.linalg.eigvalsh(H)
    top = ev[ev.abs().argsort(descending=True)[:3]]
    v = torch.randn(n, generator=g)
    v /= v.norm()
    v = v.float().double()  # what basin multiplies: the vector in float32
    hv = H @ v
    t = {"y": y, "loss": loss.detach().reshape(1), "grad_norm": flat.detach().norm().reshape(1),
         "eig": top, "trace": H.trace().reshape(1)}
    off = 0
    for name, p in zip(names, params):
        k = p.numel()
        t[f"v.{name}"] = v[off:off + k].reshape(p.shape).float()
        t[f"hv.{name}"] = hv[off:off + k].reshape(p.shape).float()
        block = H[off:off + k, off:off + k]
        be = torch.linalg.eigvalsh(block)
        t[f"bt.{name}"] = block.trace().reshape(1)
        t[f"be.{name}"] = be[be.abs().argmax()].reshape(1)
        off += k
    ref.st_save(os.path.join(out, f"{arch}.safetensors"), t, {"basin.format": "1"})
    print(arch, n, "parameters: loss", round(loss.item(), 6), "eigenvalues", [round(e, 6) for e in top.tolist()],
          "trace", round(H.trace().item(), 6))
