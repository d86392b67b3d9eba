"""safetensors in plain Python and numpy (Debian has no safetensors
package): numpy arrays <-> the bytes of a .safetensors file, as
huggingface/safetensors lays them out (an 8-byte little-endian header
length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__":
{str: str}}, then the raw little-endian tensor bytes). Private to fedvar."""
import json
import struct

import numpy as np

# safetensors dtype name -> numpy dtype (little-endian), in the reference
# writer's order: it stores tensors by this rank, descending, then by name.
_DTYPES = [
    ("BOOL", np.dtype("bool")), ("U8", np.dtype("u1")), ("I8", np.dtype("i1")),
    ("I16", np.dtype("<i2")), ("F16", np.dtype("<f2")), ("I32", np.dtype("<i4")),
    ("F32", np.dtype("<f4")), ("F64", np.dtype("<f8")), ("I64", np.dtype("<i8")),
]
_NUMPY = dict(_DTYPES)
_RANK = {dtype: rank for rank, (_, dtype) in enumerate(_DTYPES)}
_NAME = {dtype: name for name, dtype in _DTYPES}


def _canonical(array):
    """The array as a C-contiguous little-endian array of a supported dtype."""
    array = np.asarray(array)
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    if dtype not in _NAME:
        raise ValueError(f"dtype {array.dtype} is not one safetensors stores here "
                         f"({', '.join(_NUMPY)})")
    return array.astype(dtype, order="C", copy=False)  # keeps 0-d arrays 0-d


def dumps(tensors, metadata=None):
    """The bytes of a safetensors file holding `tensors` ({name: array}) and
    `metadata` ({str: str}, optional)."""
    arrays = {name: _canonical(array) for name, array in tensors.items()}
    ordered = sorted(arrays.items(), key=lambda kv: (-_RANK[kv[1].dtype], kv[0]))
    header = {"__metadata__": dict(metadata)} if metadata else {}
    chunks, offset = [], 0
    for name, array in ordered:
        raw = array.tobytes()
        header[name] = {"dtype": _NAME[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return b"".join([struct.pack("<Q", len(text)), text] + chunks)


def loads(blob):
    """({name: numpy array}, {str: str}) from a safetensors file's bytes.
    ValueError naming the defect for anything malformed."""
    blob = memoryview(blob)
    if len(blob) < 8:
        raise ValueError("safetensors: shorter than its 8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise ValueError(f"safetensors: header of {n} bytes in a {len(blob)}-byte file")
    try:
        header = json.loads(bytes(blob[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"safetensors: the header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise ValueError("safetensors: the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    data = blob[8 + n:]
    tensors, cursor = {}, 0
    for name, info in sorted(header.items(), key=_begin):
        tensors[name] = _read_tensor(name, info, data, cursor)
        cursor = info["data_offsets"][1]
    if cursor != len(data):
        raise ValueError(f"safetensors: {len(data) - cursor} data bytes no tensor covers")
    return tensors, metadata


def _begin(item):
    name, info = item
    try:
        return int(info["data_offsets"][0])
    except (KeyError, TypeError, ValueError, IndexError):
        raise ValueError(f"safetensors: tensor {name!r} has no data offsets") from None


def _read_tensor(name, info, data, cursor):
    try:
        dtype = _NUMPY[info["dtype"]]
        shape = [int(d) for d in info["shape"]]
        begin, end = (int(x) for x in info["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"safetensors: tensor {name!r} has a malformed entry") from None
    if begin != cursor or end < begin or end > len(data):
        raise ValueError(f"safetensors: tensor {name!r} has bad data offsets")
    count = int(np.prod(shape, dtype=np.int64))
    if min(shape, default=0) < 0 or count * dtype.itemsize != end - begin:
        raise ValueError(f"safetensors: tensor {name!r}: shape {shape} does not match "
                         f"its {end - begin} bytes")
    return np.frombuffer(data[begin:end], dtype=dtype, count=count).reshape(shape).copy()
