"""PyTorch side of tests/core/safetensors_test.cpp (safetensors interop).

  safetensors_interop.py write PATH   writes expected() to PATH the way the
                                      reference writer lays it out
  safetensors_interop.py check PATH   reads PATH with struct + json +
                                      torch.frombuffer and exits 1 unless it
                                      holds exactly expected()

Uses only torch and the standard library (the safetensors package is not a
dependency). expected() must match the C++ test's interop_tensors().
"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from safetensors_io import FormatError, load, save  # noqa: E402

METADATA = {"format": "pt", "source": "interop"}


def expected():
    """Deterministic tensors, one per dtype, plus a scalar and an empty one."""
    return {
        "f64": torch.arange(6, dtype=torch.float64).reshape(2, 3) * 0.25 - 0.5,
        "f32": torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) / 8 - 1,
        "f16": (torch.arange(12, dtype=torch.float32) / 4 - 1).to(torch.float16).reshape(3, 4),
        "bf16": (torch.arange(10, dtype=torch.float32) * 0.5 - 2).to(torch.bfloat16).reshape(2, 5),
        "i64": torch.arange(-3, 3, dtype=torch.int64) * 1000000007,
        "i32": torch.arange(-4, 4, dtype=torch.int32).reshape(2, 4) * 65536,
        "i16": torch.arange(-5, 5, dtype=torch.int16) * 300,
        "i8": torch.arange(-6, 6, dtype=torch.int8) * 10,
        "u8": torch.arange(256, dtype=torch.uint8).reshape(16, 16),
        "mask": torch.arange(7) % 2 == 0,
        "scalar": torch.tensor(3.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
    }


def write(path):
    save(expected(), path, METADATA)


def check(path):
    try:
        tensors, metadata = load(path)
    except FormatError as e:
        sys.exit(str(e))
    if metadata != METADATA:
        sys.exit(f"metadata {metadata} != {METADATA}")
    want = expected()
    if sorted(tensors) != sorted(want):
        sys.exit(f"names {sorted(tensors)} != {sorted(want)}")
    for name, t in want.items():
        got = tensors[name]
        if got.dtype != t.dtype or got.shape != t.shape or not torch.equal(got, t):
            sys.exit(f"{name}: got {got.dtype} {tuple(got.shape)} {got}, want {t}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "check"):
        sys.exit("usage: safetensors_interop.py write|check PATH")
    {"write": write, "check": check}[sys.argv[1]](sys.argv[2])
