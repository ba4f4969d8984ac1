"""Write ref.safetensors with basin_ref.st_save (the PyTorch-side reference writer).

Every dtype, a scalar, an empty tensor, metadata with escapes and non-ASCII text, Python's
json.dumps of a config, and conversion checks: conv.src (F32) with conv.f16 = src.half() and
conv.bf16 = src.bfloat16() as PyTorch rounds them (ties, overflow, subnormals, signed zero).
"""
import json
import sys

sys.path.insert(0, "/work/shared/peers")
import basin_ref  # noqa: E402
import torch  # noqa: E402

g = torch.Generator().manual_seed(7)
edge = [1 + 2**-11, 1 + 3 * 2**-11, 65504.0, 65519.0, 65520.0, -1e10, 2.0**-24, 2.0**-25,
        3 * 2.0**-26, 2.0**-14 - 2.0**-25, 1e-8, -0.0, float("inf"), float("-inf"), 1 + 2**-8,
        1 + 3 * 2**-8, 3.3895e38, -(2.0**-140), 1e-45, 0.1]
src = torch.cat([torch.randn(44, generator=g) * 4, torch.tensor(edge)])
tensors = {
    "f64": torch.randn(2, 3, generator=g, dtype=torch.float64),
    "f32": torch.randn(3, 4, generator=g),
    "f16": torch.randn(5, generator=g).half(),
    "bf16": torch.randn(2, 2, generator=g).bfloat16(),
    "i64": torch.tensor([-(2**62), -1, 0, 7]),
    "i32": torch.tensor([2**31 - 1, -(2**31)], dtype=torch.int32),
    "i16": torch.tensor([-32768, 32767, 5], dtype=torch.int16),
    "i8": torch.arange(-4, 4, dtype=torch.int8),
    "u8": torch.arange(250, 256).to(torch.uint8),
    "bool": torch.tensor([True, False, True]),
    "scalar": torch.tensor(3.5),
    "empty": torch.zeros(0, 3),
    "s1.b1.bn1.weight": torch.rand(2, 1, 3, 3, generator=g),
    "caf\u00e9.\U0001f687": torch.tensor([1.0, 2.0]),
    "conv.src": src,
    "conv.f16": src.half(),
    "conv.bf16": src.bfloat16(),
}
metadata = {
    "basin.format": "1",
    "basin.arch": "cpresnet",
    "basin.config": json.dumps({"width": 32, "rho": 5, "damping": 0.1, "groups": 1, "roll": 0,
                                "blocks": [4, 4, 4], "in_ch": 1, "classes": 10}),
    "basin.labels": json.dumps(["airport", "bus", "caf\u00e9 \u2615", "m\u00e9tro \U0001f687"]),
    "basin.norm": json.dumps({"mean": [0.1, -2.5, 1e-05], "std": [1.0, 0.30000000000000004, 1e20]}),
    "basin.note": "\u00e9 \"quoted\" \\ tab\t newline\n ctrl\x01 del\x7f \U0001f687 /",
}
basin_ref.st_save(sys.argv[1], tensors, metadata)
