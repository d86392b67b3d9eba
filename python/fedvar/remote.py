"""Purify a model with a remote ``fedvar defend`` service.

    import fedvar.remote
    state, report = fedvar.remote.purify("tcp://host:5557", open("k.key").read(),
                                         model.state_dict())
    model.load_state_dict(state)

Needs Debian's python3-zmq and python3-msgpack (imported when called, so
that ``import fedvar`` works without them) and numpy. The wire format is
docs/service.md's: a request [header][model][tag] on a DEALER socket, the
header a MessagePack map, the model safetensors bytes, the tag the
HMAC-SHA256 of each part's length and SHA-256 under the service's key. The
reply is verified (tag, then request id) before anything of it is used."""
import hashlib
import hmac
import json
import os
import struct
import time

from . import _safetensors

WIRE_VERSION = 1
REQUEST_ID_BYTES = 16
_TAG_BYTES = 32


def purify(endpoint, key, state_dict, defense=None, normalize=None, timeout=600.0):
    """Sends `state_dict` (a torchvision-named ResNet18: torch tensors or
    numpy arrays by name) to the defend service at `endpoint` and returns
    (purified state dict, report dict). The state dict comes back in the
    input's names and order, as torch tensors when the input held torch
    tensors, else numpy arrays.

    key: the service's key, bytes or str (a key file's contents; a trailing
    newline is dropped, as fedvar reads key files). defense: a spec such as
    "vardefense:preset=one-shot" (None: the service's default). normalize:
    "MEAN,STD" per channel or "estimate" (None: the model's, else the
    service's). timeout: seconds to wait for the reply.

    Raises ValueError when the service refuses the request (its reason in
    the message) or its reply does not verify under `key` (a wrong key),
    RuntimeError("busy: ...") when its queue is full (retry later),
    TimeoutError when no reply comes within `timeout`."""
    zmq, msgpack = _import_wire_libraries()
    key = _key_bytes(key)
    arrays, as_torch = _to_numpy(state_dict)
    model = _safetensors.dumps(arrays, {"format": "pt"})
    request_id = os.urandom(REQUEST_ID_BYTES)
    fields = {"version": WIRE_VERSION, "kind": "purify", "request_id": request_id,
              "defense": defense}
    if normalize is not None:
        fields["normalize"] = normalize
    header = msgpack.packb(fields, use_bin_type=True)
    frames = _exchange(zmq, endpoint, [header, model, _sign_parts([header, model], key)],
                       timeout, lambda reply: _read_reply(msgpack, reply, key, request_id))
    report_text, model_bytes = frames
    tensors, _ = _safetensors.loads(model_bytes)
    report = json.loads(report_text) if report_text else {}
    ordered = {name: tensors.pop(name) for name in list(state_dict) if name in tensors}
    ordered.update(tensors)
    if as_torch:
        import torch
        ordered = {name: torch.from_numpy(array) for name, array in ordered.items()}
    return ordered, report


def _import_wire_libraries():
    try:
        import msgpack
        import zmq
    except ImportError as e:
        raise ImportError("fedvar.remote needs pyzmq and msgpack "
                          "(Debian: apt-get install python3-zmq python3-msgpack)") from e
    return zmq, msgpack


def _key_bytes(key):
    if isinstance(key, str):
        key = key.encode("utf-8")
    key = bytes(key).rstrip(b"\r\n")
    if not key:
        raise ValueError("the HMAC key is empty")
    return key


def _to_numpy(state_dict):
    """({name: numpy array}, whether the input held torch tensors)."""
    arrays, as_torch = {}, False
    for name, value in state_dict.items():
        if type(value).__module__.startswith("torch"):
            as_torch = True
            value = value.detach().cpu()
            if str(value.dtype) == "torch.bfloat16":  # numpy has no bfloat16
                value = value.float()
            value = value.contiguous().numpy()
        arrays[name] = value
    return arrays, as_torch


def _sign_parts(parts, key):
    """protocol/auth.h sign_parts: HMAC-SHA256 over each part's 8-byte
    little-endian length and SHA-256 digest, in order."""
    summary = b"".join(struct.pack("<Q", len(p)) + hashlib.sha256(p).digest()
                       for p in parts)
    return hmac.new(key, summary, hashlib.sha256).digest()


def _exchange(zmq, endpoint, frames, timeout, read):
    """Sends `frames` on a fresh DEALER socket and returns read(reply) for
    the first reply that read() does not skip (returns None for)."""
    context = zmq.Context.instance()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    try:
        socket.connect(endpoint)
        socket.send_multipart(frames, copy=False)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply from {endpoint} within {timeout} s")
            if not socket.poll(int(left * 1000) + 1, zmq.POLLIN):
                continue
            result = read(socket.recv_multipart())
            if result is not None:
                return result
    finally:
        socket.close()


def _read_reply(msgpack, frames, key, request_id):
    """(report JSON text, model bytes) of a purified reply to `request_id`;
    None for a verified reply to another request; raises otherwise."""
    if len(frames) not in (2, 3):
        raise ValueError(f"the service's reply has {len(frames)} frames")
    header = _unpack_header(msgpack, frames[0])
    if len(frames[-1]) != _TAG_BYTES or not hmac.compare_digest(
            _sign_parts(frames[:-1], key), frames[-1]):
        said = header.get("error") if header and header.get("kind") == "error" else None
        raise ValueError("the service's reply does not verify under this key: a wrong key?"
                         + (f" (the unverified reply says: {said})" if said else ""))
    if header is None or header.get("version") != WIRE_VERSION:
        raise ValueError("the service's reply has a malformed header")
    if header.get("request_id") not in (None, request_id):
        return None  # a reply to another (older) request
    kind = header.get("kind")
    if kind == "busy":
        raise RuntimeError(f"busy: {header.get('error')}")
    if kind == "error":
        raise ValueError(f"the service refused the request: {header.get('error')}")
    if kind != "purified" or len(frames) != 3:
        raise ValueError(f"the service's reply is {kind!r} with {len(frames)} frames")
    return header.get("report") or "", frames[1]


def _unpack_header(msgpack, frame):
    """The header map, or None when it is not one."""
    try:
        header = msgpack.unpackb(frame, raw=False)
    except Exception:  # msgpack raises several types on malformed input
        return None
    return header if isinstance(header, dict) else None
