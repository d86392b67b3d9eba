"""fedvar: backdoor defenses (VarDefense and the baselines) for a PyTorch
ResNet18, over libfedvar's C interface.

    import fedvar, torch
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    clean, report = fedvar.purify(state, images, labels, defense="vardefense:preset=one-shot")
    model.load_state_dict({k: torch.from_numpy(v) for k, v in clean.items()}, strict=True)

A state dict maps torchvision's names (conv1.weight, ..., fc.bias) to numpy
arrays of float32, float64, float16, int64 or int32; any number of classes and
input channels, the stem and width read from the shapes. The clean set is
uint8 images (N, C, H, W) or (N, H, W), or float ones in [0, 1] (ToTensor()
output), and int labels (N,). Wrong input raises ValueError with fedvar's
message; an unavailable device or a library failure raises RuntimeError.
`fedvar.flower.DefendedStrategy` wraps a Flower strategy.
"""
import ctypes
import json
import numbers
import threading

import numpy as np

from . import _native

__all__ = ["Defense", "defenses", "purify", "set_threads", "__version__"]



def __getattr__(name):
    # __version__ comes from the library, loaded on first use (PEP 562).
    if name == "__version__":
        return _native.version()
    raise AttributeError(f"module 'fedvar' has no attribute {name!r}")


def defenses(details=False):
    """The defenses' names ("vardefense", "fine-tuning", ...); with
    details=True, their catalog: [{"name", "summary", "options": [...]}]."""
    catalog = json.loads(_native.defenses_json())
    return catalog if details else [entry["name"] for entry in catalog]


def set_threads(threads):
    """libtorch's intra-op threads for this process (>= 1)."""
    _native.call("fedvar_set_threads", _positive_int(threads, "threads"))


class Defense:
    """A defense with its clean set, ready to purify one model after another
    (the clean set is copied into the library once). Arguments as purify's.
    Use by one thread at a time (a lock enforces it); close() or a `with`
    block frees it."""

    def __init__(self, images, labels, defense="vardefense", normalize=None, device="auto",
                 seed=0):
        if not isinstance(defense, str):
            raise ValueError(f"defense must be a spec string, got {type(defense).__name__}")
        if not isinstance(device, str):
            raise ValueError(f"device must be a string, got {type(device).__name__}")
        seed = _seed(seed)
        images, labels, setter = _clean_set(images, labels)
        norm = None if normalize is None else _normalization(normalize)
        self._lock = threading.Lock()
        self._handle = ctypes.c_void_p()
        self.spec = defense
        _native.call("fedvar_defense_create", defense.encode("utf-8"),
                     ctypes.byref(self._handle))
        try:
            n, c, h, w = images.shape
            _native.call(setter, self._handle, images.ctypes.data, labels.ctypes.data,
                         n, c, h, w)
            if norm is not None:
                mean, std = (a.ctypes.data_as(ctypes.POINTER(ctypes.c_double)) for a in norm)
                _native.call("fedvar_defense_set_normalization", self._handle, mean, std,
                             len(norm[0]))
            _native.call("fedvar_defense_set_device", self._handle, device.encode("utf-8"))
            _native.lib().fedvar_defense_set_seed(self._handle, seed)
        except BaseException:
            self.close()
            raise

    def purify(self, state_dict):
        """(purified state dict, report dict); see fedvar.purify."""
        names, arrays = _model_arrays(state_dict)
        outs = [np.empty(a.shape, a.dtype) for a in arrays]
        with self._lock:
            if not self._handle:
                raise ValueError("the defense is closed")
            report = _native.purify_into(self._handle, names, arrays, outs)
        return dict(zip(names, outs)), json.loads(report)

    def close(self):
        """Frees the library's handle (after a purify running in another
        thread); purify then raises ValueError."""
        handle, lock = getattr(self, "_handle", None), getattr(self, "_lock", None)
        if not handle:
            return
        with lock:
            _native.lib().fedvar_defense_destroy(handle)
            handle.value = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def __repr__(self):
        return f"fedvar.Defense({self.spec!r})"


def purify(state_dict, images, labels, defense="vardefense", normalize=None, device="auto",
           seed=0):
    """Purifies a ResNet18 state dict with a defense and a small clean set.

    state_dict: {torchvision name: numpy array}, e.g. {k: v.numpy() for k, v
        in model.state_dict().items()}; not modified.
    images: uint8 (N, C, H, W) or (N, H, W), or float in [0, 1]; labels: int
        (N,), each one of the model's classes.
    defense: a spec "NAME[:key=value,...]" (fedvar.defenses(details=True)).
    normalize: the model's input normalization (mean, std), one value per
        channel (sequences or, for one channel, numbers), applied to
        images / 255; None: none, as for a model trained on ToTensor() output.
    device: "auto" (CUDA when present), "cpu", "cuda" or "cuda:N".
    seed: the holdout split's and shuffling's; equal seeds, equal results on
        the CPU.
    Returns (new state dict, report): the same keys in the same order, each
    array of its input's dtype and shape (load it back with
    load_state_dict({k: torch.from_numpy(v) ...}, strict=True)); the report is
    the defense's JSON ({"defense", "acc_before", "acc_after" (holdout ACC in
    percent), "seconds", ...}) as a dict. Bad input raises ValueError; an
    unavailable device or a library failure RuntimeError.
    """
    with Defense(images, labels, defense, normalize, device, seed) as d:
        return d.purify(state_dict)


def _model_arrays(state_dict):
    if not hasattr(state_dict, "items"):
        raise ValueError(f"state_dict must map names to arrays, got {type(state_dict).__name__}")
    names, arrays = [], []
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise ValueError(f"state_dict keys must be strings, got {name!r}")
        try:
            array = np.asarray(value)
        except (TypeError, ValueError, RuntimeError) as error:
            raise ValueError(f"tensor '{name}': not an array ({error})") from None
        if array.dtype.kind in "fi" and not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        if array.dtype not in _native.DTYPES:
            raise ValueError(f"tensor '{name}': dtype {array.dtype} is not one fedvar reads "
                             "(float32, float64, float16, int64, int32)")
        names.append(name)
        # Not np.ascontiguousarray: it makes a 0-d array (num_batches_tracked) 1-d.
        arrays.append(array if array.flags.c_contiguous else array.copy(order="C"))
    return names, arrays


def _clean_set(images, labels):
    """(images as (N, C, H, W) C-contiguous uint8 or float32, labels int64,
    the library's setter)."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[:, np.newaxis]
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W) or (N, H, W), got shape {images.shape}")
    if images.dtype == np.uint8:
        setter = "fedvar_defense_set_clean_u8"
    elif images.dtype.kind == "f":
        images, setter = images.astype(np.float32, copy=False), "fedvar_defense_set_clean_f32"
    else:
        raise ValueError(f"images must be uint8 (0..255) or float in [0, 1], "
                         f"got dtype {images.dtype}")
    if len(images) == 0:
        raise ValueError("the clean set is empty")
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.ndim != 1:
        raise ValueError(f"labels must be (N,), got shape {labels.shape}")
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if labels.dtype.kind == "u" and labels.max() > np.iinfo(np.int64).max:
        raise ValueError(f"label {labels.max()} is not a class")
    return (np.ascontiguousarray(images), np.ascontiguousarray(labels, dtype=np.int64),
            setter)


def _normalization(normalize):
    try:
        mean, std = normalize
        mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        std = np.atleast_1d(np.asarray(std, dtype=np.float64))
    except (TypeError, ValueError) as error:
        raise ValueError(f"normalize must be (mean, std), one number per channel each: "
                         f"{error}") from None
    if mean.ndim != 1 or mean.shape != std.shape:
        raise ValueError(f"normalize: mean and std need one number per channel each, got "
                         f"shapes {mean.shape} and {std.shape}")
    return np.ascontiguousarray(mean), np.ascontiguousarray(std)


def _seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) \
            or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an integer in 0..2**64-1, got {seed!r}")
    return int(seed)


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {value!r}")
    if value > 2**31 - 1:
        raise ValueError(f"{what} is too large: {value}")
    return int(value)
