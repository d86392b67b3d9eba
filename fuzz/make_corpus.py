#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus, fuzz/corpus/<target>/<case>: small
valid inputs of each format and the hostile cases the readers must refuse
(deep JSON nesting, huge shapes, a gzip bomb, truncated and oversized
MessagePack, bad ZMTP greetings and lengths, odd spec strings). Deterministic:
running it again gives the same files. Standard library only.

    fuzz/make_corpus.py [--out fuzz/corpus]
"""
import argparse
import gzip
import json
import os
import struct

PROTOCOL_VERSION = 3  # protocol/version.h
RUN_ID = bytes(range(16))  # kRunIdBytes
NONCE = bytes(range(16, 32))  # kNonceBytes


# --- MessagePack, the subset the protocol uses ------------------------------

def mp(value):
    """MessagePack bytes of None, bool, int, float, str, bytes, list, dict."""
    if value is None:
        return b"\xc0"
    if value is True:
        return b"\xc3"
    if value is False:
        return b"\xc2"
    if isinstance(value, int):
        if 0 <= value < 128:
            return bytes([value])
        if -32 <= value < 0:
            return struct.pack("b", value)
        if value >= 0:
            return b"\xcf" + struct.pack(">Q", value)
        return b"\xd3" + struct.pack(">q", value)
    if isinstance(value, float):
        return b"\xcb" + struct.pack(">d", value)
    if isinstance(value, str):
        raw = value.encode()
        if len(raw) < 32:
            return bytes([0xA0 | len(raw)]) + raw
        return b"\xdb" + struct.pack(">I", len(raw)) + raw
    if isinstance(value, (bytes, bytearray)):
        return b"\xc6" + struct.pack(">I", len(value)) + bytes(value)
    if isinstance(value, list):
        head = bytes([0x90 | len(value)]) if len(value) < 16 else \
            b"\xdd" + struct.pack(">I", len(value))
        return head + b"".join(mp(v) for v in value)
    if isinstance(value, dict):
        head = bytes([0x80 | len(value)]) if len(value) < 16 else \
            b"\xdf" + struct.pack(">I", len(value))
        return head + b"".join(mp(k) + mp(v) for k, v in value.items())
    raise TypeError(type(value))


def tensor(name, dtype, shape, data):
    return {"name": name, "dtype": dtype, "shape": shape, "data": data}


def f32(*values):
    return struct.pack("<%df" % len(values), *values)


def message(kind, **fields):
    return dict(version=PROTOCOL_VERSION, kind=kind, **fields)


def join_message(**fields):
    """A valid join with `fields` changed."""
    return message(1, **dict(dict(client_id="c", num_samples=1, run_id=RUN_ID, nonce=NONCE),
                             **fields))


def update_message(tensors, **fields):
    """A valid update carrying `tensors`, with `fields` changed."""
    return message(3, **dict(dict(round=1, client_id="c", num_samples=1, run_id=RUN_ID,
                                  tensors=tensors), **fields))


CONFIG = {"epochs": 1, "lr": 0.01, "batch_size": 64, "seed": 7, "momentum": 0.9,
          "weight_decay": 0.0005}
STATE = [tensor("bn1.num_batches_tracked", "I64", [], struct.pack("<q", 7)),
         tensor("conv1.weight", "F32", [2, 2], f32(0.5, -1.0, 2.0, 0.25)),
         tensor("empty", "F32", [0, 3], b""),
         tensor("fc.bias", "F64", [2], struct.pack("<2d", 1.5, -2.5))]


def message_seeds():
    join = mp(message(1, client_id="client-1", num_samples=600, run_id=RUN_ID, nonce=NONCE))
    update = mp(message(3, round=1, client_id="client-1", num_samples=600, run_id=RUN_ID,
                        tensors=STATE))
    # Multi-frame: "data" is the index of a later frame; frames are cut at 0xc1.
    framed_state = [tensor("conv1.weight", "F32", [2, 2], 1), tensor("fc.bias", "I32", [2], 2)]
    framed = mp(message(3, round=2, client_id="client-2", num_samples=10, run_id=RUN_ID,
                        tensors=framed_state))
    yield "hello", mp(message(6))
    yield "challenge", mp(message(7, run_id=RUN_ID, nonce=NONCE))
    yield "join", join
    yield "round_task", mp(message(2, round=0, run_id=RUN_ID, config=CONFIG, tensors=STATE))
    yield "update", update
    yield "reject", mp(message(4, reason="stale round"))
    yield "shutdown", mp(message(5, run_id=RUN_ID))
    yield "update_frames", b"\xc1".join([framed, f32(1, 2, 3, 4), struct.pack("<2i", 5, 6)])
    yield "run_id_short", mp(message(5, run_id=RUN_ID[:15]))
    yield "nonce_as_str", mp(message(7, run_id=RUN_ID, nonce="0123456789abcdef"))
    # Truncated and oversized.
    yield "truncated_update", update[: len(update) * 2 // 3]
    yield "trailing_bytes", join + b"\x00"
    yield "str32_declares_4g", b"\x84" + mp("version") + mp(PROTOCOL_VERSION) + mp("kind") + \
        mp(1) + mp("num_samples") + mp(1) + mp("client_id") + b"\xdb\xff\xff\xff\xff" + b"x" * 8
    placeholder = b"\xc6\x00\x00\x00\x0bPLACEHOLDER"
    yield "bin32_declares_2g", mp(update_message(
        [tensor("w", "U8", [2**31], b"PLACEHOLDER")])).replace(
            placeholder, b"\xc6\x80\x00\x00\x00" + b"\x00" * 16)
    yield "array32_of_4g", b"\x81" + mp("tensors") + b"\xdd\xff\xff\xff\xff" + b"\xc0" * 32
    yield "map_of_nils", b"\xdf\x00\x01\x00\x00" + b"\xc0" * 64
    yield "deep_arrays", b"\x91" * 64 + b"\xc0"
    yield "header_of_nils", b"\xdc\x10\x00" + b"\xc0" * 4096
    # Well-formed MessagePack with bad values.
    yield "wrong_version", mp(dict(join_message(), version=1))
    yield "unknown_kind", mp(message(99))
    yield "num_samples_max", mp(join_message(num_samples=2**63 - 1))
    yield "num_samples_negative", mp(join_message(num_samples=-1))
    yield "extra_field", mp(join_message(admin=True))
    yield "client_id_long", mp(join_message(client_id="c" * 300))
    yield "nan_tensor", mp(update_message([tensor("w", "F32", [1], f32(float("nan")))]))
    yield "nan_lr", mp(message(2, round=0, run_id=RUN_ID, config=dict(CONFIG, lr=float("nan")),
                               tensors=[]))
    yield "shape_overflow", mp(update_message([tensor("w", "F32", [2**62, 2**62], b"")]))
    yield "shape_zero_huge", mp(update_message([tensor("w", "U8", [0, 2**62, 2**62], b"")]))
    yield "shape_17_dims", mp(update_message([tensor("w", "U8", [1] * 17, b"\x01")]))
    yield "shape_mismatch", mp(update_message([tensor("w", "F32", [3], f32(1, 2))]))
    yield "repeated_tensor", mp(update_message([STATE[1], STATE[1]]))
    yield "frame_index_reused", b"\xc1".join([
        mp(update_message([tensor("a", "U8", [1], 1), tensor("b", "U8", [1], 1)])), b"\x01"])
    yield "frame_unused", b"\xc1".join([join, b"spare frame"])


# --- safetensors ------------------------------------------------------------

def safetensors(header, data=b"", length=None):
    raw = header if isinstance(header, bytes) else \
        json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def safetensors_seeds():
    yield "f32", safetensors({"w": entry("F32", [2, 2], 0, 16)}, f32(1, 2, 3, 4))
    data = struct.pack("<q", 7) + f32(0.5, -1) + b"\x01\x00" + struct.pack("<2e", 1.0, 2.0)
    yield "mixed", safetensors({
        "__metadata__": {"format": "pt", "round": "3"},
        "bn.num_batches_tracked": entry("I64", [], 0, 8),
        "conv.weight": entry("F32", [2], 8, 16),
        "mask": entry("BOOL", [2], 16, 18),
        "half": entry("F16", [2], 18, 22),
        "empty": entry("BF16", [0, 4], 22, 22)}, data)
    nested = b'{"w":{"dtype":' + b"[" * 100000 + b"]" * 100000 + \
        b',"shape":[1],"data_offsets":[0,4]}}'
    yield "nested_dtype_100000", safetensors(nested, f32(1))
    yield "huge_shape", safetensors({"w": entry("F32", [2**32, 2**32, 2**32], 0, 16)},
                                    f32(1, 2, 3, 4))
    yield "huge_shape_zero", safetensors({"w": entry("F32", [0, 2**62, 2**62], 0, 0)})
    yield "huge_offsets", safetensors({"w": entry("U8", [3], 2**64 - 4, 2**64 - 1)}, b"abcd")
    yield "length_max", safetensors({"w": entry("U8", [1], 0, 1)}, b"x", length=2**64 - 1)
    yield "length_past_end", safetensors({"w": entry("U8", [1], 0, 1)}, b"x", length=4096)
    yield "truncated_data", safetensors({"w": entry("F32", [4], 0, 16)}, f32(1, 2))
    yield "overlap", safetensors({"a": entry("U8", [4], 0, 4), "b": entry("U8", [4], 2, 6)},
                                 b"abcdef")
    yield "gap", safetensors({"a": entry("U8", [2], 0, 2), "b": entry("U8", [2], 4, 6)},
                             b"abcdef")
    yield "dtype_not_string", safetensors({"w": {"dtype": ["F32"], "shape": [1],
                                                 "data_offsets": [0, 4]}}, f32(1))
    yield "metadata_not_string", safetensors({"__metadata__": {"k": {"deep": [1, 2]}}})
    yield "negative_dim", safetensors({"w": entry("U8", [-1], 0, 1)}, b"x")
    yield "not_object", safetensors(b"[1,2,3]")
    yield "empty_header", safetensors(b"{}")
    yield "bad_utf8_name", safetensors(b'{"\xff\xfe":{"dtype":"U8","shape":[1],'
                                       b'"data_offsets":[0,1]}}', b"x")


# --- IDX --------------------------------------------------------------------

def idx(dims, data, type_byte=0x08):
    return bytes([0, 0, type_byte, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data


def gz(raw):
    return gzip.compress(raw, compresslevel=9, mtime=0)


def idx_seeds():
    labels = idx([10], bytes(range(10)))
    images = idx([2, 4, 4], bytes(range(32)))
    yield "labels", labels
    yield "images", images
    yield "images_gz", gz(images)
    yield "two_members_gz", gz(images[:20]) + gz(images[20:])
    # A small gzip bomb: 2 MiB of zeros behind a header declaring 784 bytes,
    # read no further than that; and behind one declaring 1 GiB + 1 MiB,
    # refused before anything is inflated.
    zeros = bytes(2 << 20)
    yield "bomb_small_header_gz", gz(idx([1, 28, 28], zeros))
    yield "bomb_over_limit_gz", gz(idx([1024, 1024, 1025], zeros))
    yield "dims_over_limit", idx([65536, 65536, 2], b"")
    yield "dims_overflow_gz", gz(idx([2**32 - 1] * 4, b"\x00" * 64))
    yield "zero_dim", idx([0, 28, 28], b"")
    yield "type_float", idx([2], f32(1, 2), type_byte=0x0D)
    yield "five_dims", bytes([0, 0, 8, 5]) + b"\x00\x00\x00\x01" * 5 + b"x"
    yield "truncated_header", labels[:6]
    yield "truncated_data", labels[:-3]
    yield "trailing_data", labels + b"extra"
    yield "truncated_gz", gz(images)[:-12]
    yield "gz_garbage", b"\x1f\x8b" + bytes(range(64))


# --- CIFAR (first byte: 0 CIFAR-10, 1 CIFAR-100) -----------------------------

def cifar_seeds():
    pixels = bytes(i % 251 for i in range(3072))
    yield "cifar10_record", b"\x00" + b"\x03" + pixels
    yield "cifar100_record", b"\x01" + b"\x07\x42" + pixels
    yield "cifar10_label_10", b"\x00" + b"\x0a" + pixels
    yield "cifar100_coarse_20", b"\x01" + b"\x14\x05" + pixels
    yield "cifar10_truncated", b"\x00" + b"\x01" + pixels[:-1]
    yield "empty", b"\x00"


# --- ZMTP (first byte: the size of the pieces the bytes arrive in) ----------

def greeting(signature=b"\xff" + b"\x00" * 8 + b"\x7f", major=3, mechanism=b"NULL"):
    g = signature + bytes([major, 0]) + mechanism.ljust(20, b"\x00") + b"\x00"
    return g.ljust(64, b"\x00")


def command(name, body=b"", long=False):
    payload = bytes([len(name)]) + name + body
    if long or len(payload) > 255:
        return b"\x06" + struct.pack(">Q", len(payload)) + payload
    return b"\x04" + bytes([len(payload)]) + payload


def frame(body, more=False, long=False):
    flags = (0x01 if more else 0) | (0x02 if long or len(body) > 255 else 0)
    size = struct.pack(">Q", len(body)) if flags & 0x02 else bytes([len(body)])
    return bytes([flags]) + size + body


READY = command(b"READY", b"\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER")


def zmtp_seeds():
    hello = greeting() + READY
    yield "message", b"\x3f" + hello + frame(b"header", more=True) + frame(b"tag")
    yield "one_byte_pieces", b"\x00" + hello + frame(b"x" * 300, long=True)
    yield "ping_after_ready", b"\x07" + hello + command(b"PING", b"\x00\x10") + frame(b"m")
    yield "too_many_frames", b"\x3f" + hello + b"".join(frame(b"f", more=True) for _ in range(5)) \
        + frame(b"last")
    yield "too_many_bytes", b"\x3f" + hello + frame(b"y" * 5000)
    yield "bad_signature", b"\x3f" + greeting(signature=b"\x00" * 10) + READY
    yield "version_2", b"\x3f" + greeting(major=2) + READY
    yield "mechanism_plain", b"\x3f" + greeting(mechanism=b"PLAIN") + READY
    yield "short_greeting", b"\x3f" + greeting()[:40]
    yield "data_before_ready", b"\x3f" + greeting() + frame(b"early")
    yield "command_size_max", b"\x3f" + greeting() + b"\x06" + b"\xff" * 8 + b"READY"
    yield "frame_size_max", b"\x3f" + hello + b"\x02" + b"\xff" * 8 + b"data"
    yield "command_too_long", b"\x3f" + greeting() + command(b"READY", b"p" * 5000)
    yield "bad_flags", b"\x3f" + hello + b"\x80\x01x"
    yield "error_command", b"\x3f" + hello + command(b"ERROR", b"\x05oops!")


# --- spec strings -------------------------------------------------------------

SPECS = [
    # triggers
    b"patch:size=5,pattern=checkerboard,position=random", b"badnets",
    b"patch:size=3,position=fixed,row=2,col=4", b"blend:ratio=0.1,seed=7",
    b"dba:pieces=4,piece=2,bar=1x4,gap=2,origin=1x1", b"dba:piece=all",
    # aggregation rules and plugin options
    b"fedavg", b"median", b"trimmed-mean:beta=0.1", b"krum:f=1", b"multi-krum:f=1,m=0",
    b"bulyan:f=1", b"preset=full,alpha=2.5,layers=3,adaptive=1", b"alpha=1,,layers=2",
    # rounds, normalization, ranges
    b"all", b"1,3,5-8", b"10-", b"0.286,0.353", b"0.49,0.48,0.45,0.25,0.24,0.26",
    b"-1000:", b":500", b"100:200",
    # odd characters and values
    b"patch:size=5\x00,pattern=solid", b"dba:pieces=2147483647,gap=2147483647",
    b"patch:size=99999999999999999999", b"blend:ratio=nan", b"blend:ratio=1e-320",
    b"blend:ratio=0x1p-3,seed=18446744073709551615", "p\u00e4tch:size=5".encode(),
    b"a=b=c,,=,", b"1-2147483647,2147483647", b"-", b":", b"::", b"krum:f=-1", b"\xff\xfe",
    b" 1, 2", b"inf,inf", b"1e308,1e308", b"-9223372036854775808:9223372036854775807", b"=",
    b"dba:bar=0x0,origin=-1x-1", b"patch:row=1,row=2",
]


def spec_seeds():
    for i, spec in enumerate(SPECS):
        yield "spec_%02d" % i, spec


TARGETS = {"message": message_seeds, "safetensors": safetensors_seeds, "idx": idx_seeds,
           "cifar": cifar_seeds, "zmtp": zmtp_seeds, "specs": spec_seeds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "corpus"))
    out = parser.parse_args().out
    total = 0
    for target, seeds in TARGETS.items():
        folder = os.path.join(out, target)
        os.makedirs(folder, exist_ok=True)
        for name, data in seeds():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
            total += len(data)
    print("wrote %d bytes of seeds under %s" % (total, out))


if __name__ == "__main__":
    main()
