"""PyTorch side of tests/core/safetensors_test.cpp (safetensors interop).

  safetensors_interop.py write PATH   writes expected() to PATH the way the
                                      reference writer lays it out
  safetensors_interop.py check PATH   reads PATH with struct + json +
                                      torch.frombuffer and exits 1 unless it
                                      holds exactly expected()

Uses only torch and the standard library (the safetensors package is not a
dependency). expected() must match the C++ test's interop_tensors().
"""
import json
import struct
import sys

import torch

# safetensors dtype name -> torch dtype, in the reference `Dtype` enum order:
# its writer stores tensors by this order, descending, then by name.
DTYPES = [
    ("BOOL", torch.bool), ("U8", torch.uint8), ("I8", torch.int8),
    ("I16", torch.int16), ("F16", torch.float16), ("BF16", torch.bfloat16),
    ("I32", torch.int32), ("F32", torch.float32), ("F64", torch.float64),
    ("I64", torch.int64),
]
RANK = {torch_dtype: i for i, (_, torch_dtype) in enumerate(DTYPES)}
NAME = {torch_dtype: name for name, torch_dtype in DTYPES}
TORCH = {name: torch_dtype for name, torch_dtype in DTYPES}
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


def tensor_bytes(t):
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def write(path):
    tensors = sorted(expected().items(), key=lambda kv: (-RANK[kv[1].dtype], kv[0]))
    header = {"__metadata__": METADATA}
    data = b""
    for name, t in tensors:
        raw = tensor_bytes(t)
        header[name] = {"dtype": NAME[t.dtype], "shape": list(t.shape),
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode())
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", {})
    tensors, cursor = {}, 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        begin, end = info["data_offsets"]
        if begin != cursor:
            sys.exit(f"{name}: data starts at {begin}, expected {cursor}")
        cursor = end
        dtype, shape = TORCH[info["dtype"]], info["shape"]
        if begin == end:
            tensors[name] = torch.empty(shape, dtype=dtype)
        else:
            flat = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype)
            tensors[name] = flat.reshape(shape)
    if cursor != len(data):
        sys.exit(f"data section is {len(data)} bytes, tensors cover {cursor}")
    return tensors, metadata


def check(path):
    tensors, metadata = read(path)
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
