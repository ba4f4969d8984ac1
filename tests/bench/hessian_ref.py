#!/usr/bin/python3
"""The PyTorch side of basin's Hessian benchmark: PyHessian's power iteration on exact
Hessian-vector products (torch.autograd.grad of g . v, double backward), for a basin model
on the clips of a feature export, timed in this process.

    /usr/bin/python3 tests/bench/hessian_ref.py MODEL DATA [--top K] [--iters N] [--tol T]
        [--batch B] [--threads N] [--seed S] [--n N] [--double]

MODEL: a .safetensors model (basin's or basin_ref.py's); DATA: a `data export` file
('x' (N, C, F, T), 'y' (N)). --n N takes the clips basin's `hessian n=N` takes (clip
floor(i * total / N)). The loss is the mean cross-entropy over the clips in eval mode, as
basin's; the algorithm is PyHessian's hessian.eigenvalues (a random normal start,
Gram-Schmidt against the eigenvectors found, Rayleigh quotient, v <- Hv / |Hv|, stop when
|new - old| / (|old| + 1e-6) < tol, at most iters products). Prints one line:
RESULT hessian_ref loss L grad_norm G eig1 E1 ... products P hvp_s S threads T
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.environ.get("REF_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                          "..", "..", "..", "shared", "peers")))
import basin_ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("--top", type=int, default=1)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=0)
    ap.add_argument("--double", action="store_true", help="float64 model and data (a reference)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = basin_ref.load_model(a.model)[0]
    d = basin_ref.st_load(a.data)[0]
    x, y = d["x"].float(), d["y"].long()
    if a.n and a.n < len(x):
        idx = [i * len(x) // a.n for i in range(a.n)]
        x, y = x[idx], y[idx]
    if a.double:
        model, x = model.double(), x.double()
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    n = len(x)

    def batches():
        for i in range(0, n, a.batch):
            yield x[i:i + a.batch], y[i:i + a.batch]

    def loss_grad():
        total, g = 0.0, [torch.zeros_like(p) for p in params]
        for xb, yb in batches():
            loss = F.cross_entropy(model(xb), yb, reduction="sum") / n
            total += loss.item()
            for acc, gb in zip(g, torch.autograd.grad(loss, params)):
                acc += gb
        return total, g

    def hvp(v):
        out = [torch.zeros_like(p) for p in params]
        for xb, yb in batches():
            loss = F.cross_entropy(model(xb), yb, reduction="sum") / n
            g = torch.autograd.grad(loss, params, create_graph=True)
            for acc, h in zip(out, torch.autograd.grad(g, params, grad_outputs=v)):
                acc += h
        return out

    def dot(u, v):
        return sum((p * q).sum() for p, q in zip(u, v))

    def normalise(v):
        s = dot(v, v).sqrt()
        return [p / (s + 1e-6) for p in v]

    loss, g = loss_grad()
    gen = torch.Generator().manual_seed(a.seed)
    eigs, vecs, products, seconds = [], [], 0, 0.0
    for _ in range(a.top):
        # ref: PyHessian hessian.eigenvalues
        v = normalise([torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params])
        eig = None
        for _ in range(a.iters):
            for q in vecs:  # Gram-Schmidt against the eigenvectors found
                c = dot(v, q)
                v = [p - c * r for p, r in zip(v, q)]
            v = normalise(v)
            t0 = time.perf_counter()
            hv = hvp(v)
            seconds += time.perf_counter() - t0
            products += 1
            new = dot(hv, v).item()
            v = normalise(hv)
            if eig is not None and abs(eig - new) / (abs(eig) + 1e-6) < a.tol:
                eig = new
                break
            eig = new
        eigs.append(eig)
        vecs.append(v)
    line = f"RESULT hessian_ref loss {loss:.9g} grad_norm {dot(g, g).sqrt().item():.9g}"
    line += "".join(f" eig{k + 1} {e:.9g}" for k, e in enumerate(eigs))
    line += f" products {products} hvp_s {seconds / max(products, 1):.4f} threads {a.threads} clips {n}"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
