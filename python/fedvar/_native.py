"""libfedvar through ctypes: finding the library, the signatures of
include/fedvar/fedvar.h, and calls whose fedvar_code becomes a Python
exception. Internal to the package; fedvar/__init__.py is the interface.

The library is, in this order: the file named by the environment variable
FEDVAR_LIBRARY; libfedvar.so* next to this file (the build tree's symlink);
_library_path.LIBRARY (written when the package is installed); the system's
libfedvar (ctypes.util.find_library). It is loaded on first use, so that
fedvar.remote works on a machine without it. ctypes releases the GIL during
each call.
"""
import ctypes
import ctypes.util
import glob
import os
import re

import numpy as np

# fedvar_code (fedvar.h).
OK, INVALID_ARGUMENT, UNAVAILABLE, INTERNAL = 0, 1, 2, 3

# numpy dtype -> fedvar_dtype (fedvar.h; the values are never renumbered).
DTYPES = {
    np.dtype(np.float32): 0,
    np.dtype(np.float64): 1,
    np.dtype(np.float16): 2,
    np.dtype(np.int64): 3,
    np.dtype(np.int32): 4,
}


class Tensor(ctypes.Structure):
    """fedvar_tensor_t: one dense C-order array of a state dict."""
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("dtype", ctypes.c_int),
        ("ndim", ctypes.c_int32),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("data", ctypes.c_void_p),
    ]


_ERR = ctypes.POINTER(ctypes.c_void_p)  # char** errptr (and other char** outputs)
_HANDLE = ctypes.c_void_p               # fedvar_defense_t*
_CODE = ctypes.c_int                    # fedvar_code
_I64 = ctypes.c_int64

_SIGNATURES = {
    "fedvar_version": (ctypes.c_char_p, []),
    "fedvar_defenses_json": (_CODE, [_ERR, _ERR]),
    "fedvar_free": (None, [ctypes.c_void_p]),
    "fedvar_defense_create": (_CODE, [ctypes.c_char_p, ctypes.POINTER(_HANDLE), _ERR]),
    "fedvar_defense_destroy": (None, [_HANDLE]),
    "fedvar_defense_set_clean_u8": (
        _CODE, [_HANDLE, ctypes.c_void_p, ctypes.c_void_p, _I64, _I64, _I64, _I64, _ERR]),
    "fedvar_defense_set_clean_f32": (
        _CODE, [_HANDLE, ctypes.c_void_p, ctypes.c_void_p, _I64, _I64, _I64, _I64, _ERR]),
    "fedvar_defense_set_normalization": (
        _CODE, [_HANDLE, ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_double),
                ctypes.c_int32, _ERR]),
    "fedvar_defense_set_device": (_CODE, [_HANDLE, ctypes.c_char_p, _ERR]),
    "fedvar_defense_set_seed": (None, [_HANDLE, ctypes.c_uint64]),
    "fedvar_set_threads": (_CODE, [ctypes.c_int32, _ERR]),
    "fedvar_purify_into": (
        _CODE, [_HANDLE, ctypes.POINTER(Tensor), ctypes.POINTER(Tensor), ctypes.c_size_t,
                _ERR, _ERR]),
}


def _version_key(path):
    # libfedvar.so.0.5.0 -> (0, 5, 0): the newest of several build outputs first.
    return tuple(int(part) for part in re.findall(r"\d+", os.path.basename(path)))


def _candidates():
    here = os.path.dirname(os.path.abspath(__file__))
    found = sorted(glob.glob(os.path.join(here, "libfedvar.so*")), key=_version_key,
                   reverse=True)
    try:
        from . import _library_path  # pylint: disable=import-outside-toplevel
        found.append(_library_path.LIBRARY)
    except ImportError:
        pass
    system = ctypes.util.find_library("fedvar")
    if system:
        found.append(system)
    return found


def _bind(lib):
    for name, (restype, argtypes) in _SIGNATURES.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


def _load():
    explicit = os.environ.get("FEDVAR_LIBRARY")
    candidates = [explicit] if explicit else _candidates()
    tried = []
    for path in candidates:
        try:
            return _bind(ctypes.CDLL(path)), path
        except (OSError, AttributeError) as error:
            tried.append(f"{path}: {error}")
    if explicit:
        raise ImportError(f"fedvar: cannot load FEDVAR_LIBRARY={explicit}: {tried[0]}")
    raise ImportError(
        "fedvar: libfedvar not found (tried: " + ("; ".join(tried) or "nothing found") +
        "). Build it (target fedvar_python), install it, or set FEDVAR_LIBRARY to "
        "the path of libfedvar.so")


_loaded = None  # (the library, its path), on first use


def lib():
    """The loaded library; the first call loads it (ImportError if it cannot)."""
    global _loaded  # pylint: disable=global-statement
    if _loaded is None:
        _loaded = _load()
    return _loaded[0]


def library_path():
    lib()
    return _loaded[1]


def take_string(pointer):
    """The library's string at `pointer` (a c_void_p), freed; None for NULL."""
    if not pointer.value:
        return None
    try:
        return ctypes.string_at(pointer.value).decode("utf-8", "replace")
    finally:
        lib().fedvar_free(pointer)
        pointer.value = None


def call(function, *args):
    """Calls lib().function(*args, &err); a failure raises ValueError (the
    caller's input) or RuntimeError (device unavailable, library failure)
    with the library's message."""
    err = ctypes.c_void_p()
    code = getattr(lib(), function)(*args, ctypes.byref(err))
    message = take_string(err)
    if code == OK:
        return
    message = message or f"{function} failed with code {code} and no message"
    if code == INVALID_ARGUMENT:
        raise ValueError(message)
    raise RuntimeError(message)


def version():
    return lib().fedvar_version().decode("ascii")


def defenses_json():
    out = ctypes.c_void_p()
    call("fedvar_defenses_json", ctypes.byref(out))
    return take_string(out)


def tensor_table(names, arrays):
    """A fedvar_tensor_t[] over C-contiguous, native-order `arrays` (not
    copied: keep them alive while the table is used) and what it points to."""
    table = (Tensor * len(arrays))()
    keep = []
    for entry, name, array in zip(table, names, arrays):
        encoded = name.encode("utf-8")
        shape = (ctypes.c_int64 * max(array.ndim, 1))(*array.shape)
        keep += [encoded, shape]
        entry.name = encoded
        entry.dtype = DTYPES[array.dtype]
        entry.ndim = array.ndim
        entry.shape = shape
        entry.data = array.ctypes.data
    return table, keep


def purify_into(handle, names, arrays, outs):
    """fedvar_purify_into from `arrays` into `outs` (same order, dtypes and
    shapes, C-contiguous); returns the report's JSON text."""
    model, keep_model = tensor_table(names, arrays)  # noqa: F841 (alive during the call)
    out, keep_out = tensor_table(names, outs)  # noqa: F841
    report = ctypes.c_void_p()
    call("fedvar_purify_into", handle, model, out, len(arrays), ctypes.byref(report))
    return take_string(report)  # set only on success
