"""safetensors in plain Python + torch, written from the format's
specification (Debian has no safetensors package); the PyTorch side of the
interop tests. save() lays a file out as the reference writer does (tensors
by dtype order descending, then name; compact JSON header, space-padded to 8
bytes); load() checks that the data section is covered exactly."""
import json
import struct

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


class FormatError(Exception):
    pass


def tensor_bytes(t):
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def save(tensors, path, metadata=None):
    ordered = sorted(tensors.items(), key=lambda kv: (-RANK[kv[1].dtype], kv[0]))
    header = {"__metadata__": metadata} if metadata else {}
    data = b""
    for name, t in ordered:
        raw = tensor_bytes(t)
        header[name] = {"dtype": NAME[t.dtype], "shape": list(t.shape),
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def load(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode())
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", None) or {}
    tensors, cursor = {}, 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        begin, end = info["data_offsets"]
        if begin != cursor:
            raise FormatError(f"{name}: data starts at {begin}, expected {cursor}")
        cursor = end
        dtype, shape = TORCH[info["dtype"]], info["shape"]
        if begin == end:
            tensors[name] = torch.empty(shape, dtype=dtype)
        else:
            flat = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype)
            tensors[name] = flat.reshape(shape).clone()
    if cursor != len(data):
        raise FormatError(f"data section is {len(data)} bytes, tensors cover {cursor}")
    return tensors, metadata
