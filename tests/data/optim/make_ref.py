#!/usr/bin/python3
"""make_ref.py: PyTorch reference numbers for tests/test_loss.c and tests/test_optim.c.

Run once with torch 1.13 (CPU):  /usr/bin/python3 tests/data/optim/make_ref.py
and paste the printed C arrays into the tests; the tests themselves never need Python.

Inputs are float32 values (C float literals round the same way). Losses and their
gradients are computed in float64 from those float32 logits (basin computes in double).
Optimisers run in float32 with the single-tensor code path (foreach=False), exactly as
torch.optim does on CPU; hyper-parameters are passed as the decimals a user types.
"""
import torch
import torch.nn.functional as F

torch.set_printoptions(precision=10)


def c_array(name, t, ctype="float"):
    vals = [float(x) for x in t.reshape(-1).tolist()]
    body = ", ".join("%.9g" % v if ctype == "float" else "%.17g" % v for v in vals)
    print("static const %s %s[%d] = {%s};" % (ctype, name, len(vals), body))


# --------------------------------------------------------------------------- losses
LOGITS = [[1.5, -0.25, 2.0, 0.125],
          [-1.0, 0.5, 0.75, -2.0],
          [3.0, 2.875, -0.5, 1.0]]
LABELS = [2, 0, 3]
SOFT = [[0.0, 0.3, 0.7, 0.0],    # mixup of classes 1 and 2
        [0.6, 0.0, 0.0, 0.4],
        [0.25, 0.25, 0.25, 0.25]]


def focal(x, t, gamma):
    logp = F.log_softmax(x, dim=1)
    p = logp.exp()
    return -(t * (1 - p) ** gamma * logp).sum(1).mean()


def loss_refs():
    x32 = torch.tensor(LOGITS, dtype=torch.float32)
    y = torch.tensor(LABELS)
    t32 = torch.tensor(SOFT, dtype=torch.float32)
    t = t32.double()
    onehot = F.one_hot(y, 4).double()
    cases = [
        ("ce_hard", lambda x: F.cross_entropy(x, y)),
        ("ce_soft", lambda x: F.cross_entropy(x, t)),
        ("focal1_hard", lambda x: focal(x, onehot, 1.0)),
        ("focal2_hard", lambda x: focal(x, onehot, 2.0)),
        ("focal1_soft", lambda x: focal(x, t, 1.0)),
        ("focal05_soft", lambda x: focal(x, t, 0.5)),
    ]
    print("/* losses: logits (3, 4), labels and soft targets as in make_ref.py */")
    for name, fn in cases:
        x = x32.double().requires_grad_(True)
        loss = fn(x)
        loss.backward()
        print("static const double ref_%s_loss = %.17g;" % (name, loss.item()))
        c_array("ref_%s_grad" % name, x.grad)
    c_array("ref_softmax", F.softmax(x32.double(), dim=1))
    # Extreme logits: +-1e4 (float32 exact).
    xe32 = torch.tensor([[1e4, -1e4, 0.0, 1e4 - 3.0],
                         [-1e4, -1e4, -1e4 + 1.0, -1e4]], dtype=torch.float32)
    ye = torch.tensor([1, 2])
    x = xe32.double().requires_grad_(True)
    loss = F.cross_entropy(x, ye)
    loss.backward()
    print("static const double ref_extreme_ce_loss = %.17g;" % loss.item())
    c_array("ref_extreme_ce_grad", x.grad)
    x = xe32.double().requires_grad_(True)
    loss = focal(x, F.one_hot(ye, 4).double(), 1.0)
    loss.backward()
    print("static const double ref_extreme_focal1_loss = %.17g;" % loss.item())
    c_array("ref_extreme_focal1_grad", x.grad)


# --------------------------------------------------------------------------- optimisers
# 20 elements: PyTorch's CPU kernels run the first 16 through their AVX2 vector loop and
# the last 4 through the scalar one, so both paths are covered. Zero gradients exercise
# Adam's eps (v = 0) and SGD's weight decay alone.
def _start_and_grads():
    g = torch.Generator().manual_seed(1313)
    w0 = (torch.randn(20, generator=g) * 1.5).round(decimals=4)
    gs = (torch.randn(5, 20, generator=g) * 0.5).round(decimals=4)
    w0[3] = 0.0
    gs[0, 2] = gs[3, 4] = gs[4, 5] = gs[1, 17] = 0.0
    return w0.tolist(), gs.tolist()


W0, GRADS = _start_and_grads()

OPTIMS = [
    ("sgd_plain", torch.optim.SGD, dict(lr=0.1)),
    ("sgd_momentum", torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    ("sgd_dampening", torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.5)),
    ("sgd_nesterov", torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("sgd_wd", torch.optim.SGD, dict(lr=0.1, weight_decay=0.05)),
    ("sgd_all", torch.optim.SGD, dict(lr=0.05, momentum=0.8, weight_decay=0.1, nesterov=True)),
    ("adam", torch.optim.Adam, dict(lr=0.01)),
    ("adam_wd", torch.optim.Adam, dict(lr=0.01, weight_decay=0.1)),
    ("adam_betas", torch.optim.Adam, dict(lr=0.05, betas=(0.8, 0.99), eps=1e-3)),
    ("adamw", torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
    ("adamw_default", torch.optim.AdamW, dict(lr=1e-3)),
]


def optim_refs():
    print("/* optimisers: start weights, 5 gradients, then weights after 5 steps */")
    c_array("w0", torch.tensor(W0, dtype=torch.float32))
    c_array("grads", torch.tensor(GRADS, dtype=torch.float32))
    for name, cls, kw in OPTIMS:
        w = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float32))
        opt = cls([w], foreach=False, **kw)
        for g in GRADS:
            w.grad = torch.tensor(g, dtype=torch.float32)
            opt.step()
        c_array("ref_%s" % name, w.detach())


if __name__ == "__main__":
    print("/* torch %s */" % torch.__version__)
    loss_refs()
    optim_refs()
