"""fedvar.purify on a torchvision ResNet18 (fedvar's "cifar" stem) and real
Fashion-MNIST images: the result loads back with strict=True, the input is
untouched, every dtype fedvar carries comes back as it went in, and every
bad input is a ValueError with fedvar's message.

Run by CTest with PYTHONPATH=build/python and FEDVAR_BINARY=build/fedvar.
"""
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from package_support import (  # noqa: E402
    cifar_resnet18, fashion_mnist, load_strict, state_arrays)

import fedvar  # noqa: E402

kCleanSize = 200
# No training (epochs=0): the defense's pipeline without its cost, for the
# tests of marshalling and errors; the model comes back as it went in.
kIdentity = "fine-tuning:epochs=0"
# The cheap real defense: three purification steps, no training.
kOneShot = "vardefense:preset=one-shot"


def run_python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120, check=False)


class PurifyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.manual_seed(0)
        cls.model = cifar_resnet18()
        cls.images, cls.labels = fashion_mnist("t10k", 0, kCleanSize)

    def state(self):
        return state_arrays(self.model)

    def assertInvalid(self, fragment, state=None, images=None, labels=None, **kwargs):
        state = self.state() if state is None else state
        images = self.images if images is None else images
        labels = self.labels if labels is None else labels
        kwargs.setdefault("defense", kIdentity)
        with self.assertRaises(ValueError) as caught:
            fedvar.purify(state, images, labels, **kwargs)
        self.assertIn(fragment, str(caught.exception))

    def test_vardefense_purifies_a_torchvision_model(self):
        state = self.state()
        before = {k: v.copy() for k, v in state.items()}
        images = self.images[:, np.newaxis]  # (N, 1, H, W)
        out, report = fedvar.purify(state, images, self.labels, defense=kOneShot, device="cpu")
        self.assertEqual(list(out), list(state))
        for name, value in out.items():
            self.assertEqual((value.dtype, value.shape), (state[name].dtype, state[name].shape),
                             name)
            np.testing.assert_array_equal(state[name], before[name], err_msg=name)
        changed = [k for k in out if not np.array_equal(out[k], before[k])]
        self.assertTrue(any(k.endswith("conv2.weight") for k in changed), changed)
        for key in ("defense", "acc_before", "acc_after", "seconds"):
            self.assertIn(key, report)
        self.assertIn("vardefense", str(report["defense"]))
        model = load_strict(out)
        model.eval()
        with torch.no_grad():
            logits = model(torch.from_numpy(images[:8]).float() / 255)
        self.assertTrue(torch.isfinite(logits).all())

    def test_image_forms_and_normalization(self):
        # (N, H, W) uint8, (N, 1, H, W) float32 in [0, 1] and a normalization
        # (sequences or, for one channel, numbers) all run; kIdentity returns
        # the model as it went in.
        state = self.state()
        forms = [
            (self.images, None),
            (self.images[:, np.newaxis].astype(np.float32) / 255, None),
            (self.images, ([0.2860], [0.3530])),
            (self.images, (0.2860, 0.3530)),
        ]
        for images, normalize in forms:
            with self.subTest(shape=images.shape, dtype=images.dtype, normalize=normalize):
                out, report = fedvar.purify(state, images, self.labels, defense=kIdentity,
                                            normalize=normalize)
                for name in state:
                    np.testing.assert_array_equal(out[name], state[name], err_msg=name)
                self.assertIn("acc_after", report)

    def test_flower_dtypes_come_back_as_they_went(self):
        # Flower's FedAvg turns int64 num_batches_tracked into float64 0-d
        # arrays; other callers hold float64, float16 or int32 tensors, or
        # Fortran-order ones.
        state = self.state()
        mixed = {}
        for i, (name, value) in enumerate(state.items()):
            if name.endswith("num_batches_tracked"):
                mixed[name] = np.array(float(value), dtype=np.float64)
            elif i % 3 == 1:
                mixed[name] = value.astype(np.float64)
            elif name.endswith("running_var"):
                mixed[name] = value.astype(np.float16)
            elif value.ndim == 4:
                mixed[name] = np.asfortranarray(value)
            else:
                mixed[name] = value
        mixed["layer1.0.bn1.num_batches_tracked"] = np.array(3, dtype=np.int32)
        out, _ = fedvar.purify(mixed, self.images, self.labels, defense=kIdentity)
        self.assertEqual(list(out), list(mixed))
        for name, value in mixed.items():
            self.assertEqual((out[name].dtype, out[name].shape), (value.dtype, value.shape), name)
            self.assertTrue(out[name].flags.c_contiguous, name)
            np.testing.assert_array_equal(out[name], value, err_msg=name)
        load_strict(out)

    def test_num_batches_tracked_may_be_left_out(self):
        state = {k: v for k, v in self.state().items() if not k.endswith("num_batches_tracked")}
        out, _ = fedvar.purify(state, self.images, self.labels, defense=kIdentity)
        self.assertEqual(list(out), list(state))

    def test_a_defense_purifies_one_model_after_another(self):
        with fedvar.Defense(self.images, self.labels, defense=kIdentity) as defense:
            first, _ = defense.purify(self.state())
            second, _ = defense.purify(first)
        for name in first:
            np.testing.assert_array_equal(first[name], second[name], err_msg=name)
        with self.assertRaisesRegex(ValueError, "closed"):
            defense.purify(self.state())

    def test_bad_state_dicts(self):
        state = self.state()
        renamed = {("fc.weights" if k == "fc.weight" else k): v for k, v in state.items()}
        self.assertInvalid("fc.weight", state=renamed)
        missing = {k: v for k, v in state.items() if k != "layer4.1.conv2.weight"}
        self.assertInvalid("layer4.1.conv2.weight", state=missing)
        extra = dict(state, **{"head.weight": np.zeros((10, 512), np.float32)})
        self.assertInvalid("head.weight", state=extra)
        self.assertInvalid("fc.weight", state=dict(state, **{"fc.weight": state["fc.weight"].T}))
        for bad in (np.zeros(3, np.uint8), np.zeros(3, np.bool_), np.zeros(3, np.complex64),
                    np.array(["x"]), "text"):
            with self.subTest(dtype=np.asarray(bad).dtype):
                self.assertInvalid("fc.bias", state=dict(state, **{"fc.bias": bad}))
        self.assertInvalid("keys must be strings", state={**state, 7: state["fc.bias"]})
        self.assertInvalid("state_dict must map", state=list(state.values()))
        self.assertInvalid("no tensors", state={})

    def test_bad_defenses(self):
        self.assertInvalid("no-such-defense", defense="no-such-defense")
        self.assertInvalid("nope", defense="fine-tuning:nope=1")
        self.assertInvalid("epochs", defense="fine-tuning:epochs=-1")
        self.assertInvalid("spec string", defense=None)

    def test_bad_clean_sets(self):
        images, labels = self.images, self.labels
        self.assertInvalid("empty", images=images[:0], labels=labels[:0])
        self.assertInvalid("labels", labels=labels[:-1])
        wrong = labels.copy()
        wrong[5] = 10
        self.assertInvalid("0..9", labels=wrong)
        wrong[5] = -1
        self.assertInvalid(">= 0", labels=wrong)
        self.assertInvalid("integers", labels=labels.astype(np.float32))
        self.assertInvalid("(N,)", labels=labels[:, np.newaxis])
        self.assertInvalid("(N, C, H, W)", images=images.reshape(-1))
        self.assertInvalid("uint8", images=images.astype(np.int64))
        self.assertInvalid("[0, 1]", images=images.astype(np.float32))
        self.assertInvalid("channel", images=np.repeat(images[:, np.newaxis], 3, axis=1))

    def test_bad_normalizations_devices_seeds(self):
        self.assertInvalid("channel", normalize=([0.5] * 3, [0.25] * 3))
        self.assertInvalid("std", normalize=([0.5], [0.0]))
        self.assertInvalid("normalize", normalize="mean")
        self.assertInvalid("normalize", normalize=([0.5, 0.5], [0.25]))
        self.assertInvalid("tpu", device="tpu")
        self.assertInvalid("seed", seed=-1)
        if not torch.cuda.is_available():
            with self.assertRaisesRegex(RuntimeError, "CUDA"):
                fedvar.purify(self.state(), self.images, self.labels, defense=kIdentity,
                              device="cuda")

    def test_defenses_and_version(self):
        names = fedvar.defenses()
        self.assertIn("vardefense", names)
        self.assertIn("fine-tuning", names)
        catalog = fedvar.defenses(details=True)
        self.assertEqual([entry["name"] for entry in catalog], names)
        self.assertTrue(all("options" in entry for entry in catalog))
        binary = os.environ.get("FEDVAR_BINARY")
        if not binary:
            self.skipTest("FEDVAR_BINARY (build/fedvar) not set")
        printed = subprocess.run([binary, "--version"], capture_output=True, text=True,
                                 check=True).stdout.split()
        self.assertEqual(fedvar.__version__, printed[-1])

    def test_loading_the_library(self):
        # FEDVAR_LIBRARY first; a bad one is a clear ImportError.
        found = run_python("import fedvar; print(fedvar.__version__)",
                           FEDVAR_LIBRARY=fedvar._native.library_path())
        self.assertEqual(found.stdout.strip(), fedvar.__version__, found.stderr)
        missing = run_python("import fedvar; fedvar.defenses()",
                             FEDVAR_LIBRARY="/nonexistent/libfedvar.so")
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("ImportError: fedvar: cannot load FEDVAR_LIBRARY", missing.stderr)
        # The library loads on first use: the service's client needs none.
        remote_only = run_python("import fedvar, fedvar.remote; print('ok')",
                                 FEDVAR_LIBRARY="/nonexistent/libfedvar.so")
        self.assertEqual(remote_only.stdout.strip(), "ok", remote_only.stderr)
        # An installed package: no library next to it, _library_path.py names it.
        source = os.path.dirname(fedvar.__file__)
        with tempfile.TemporaryDirectory() as root:
            package = os.path.join(root, "fedvar")
            os.mkdir(package)
            for name in ("__init__.py", "_native.py", "flower.py"):
                with open(os.path.join(source, name), encoding="utf-8") as f:
                    text = f.read()
                with open(os.path.join(package, name), "w", encoding="utf-8") as f:
                    f.write(text)
            with open(os.path.join(package, "_library_path.py"), "w", encoding="utf-8") as f:
                f.write(f"LIBRARY = {os.path.realpath(fedvar._native.library_path())!r}\n")
            installed = run_python(
                "import sys, fedvar.flower; print(fedvar._native.library_path());"
                "print('flwr' in sys.modules)", PYTHONPATH=root, FEDVAR_LIBRARY="")
            self.assertEqual(installed.returncode, 0, installed.stderr)
            path, flwr_loaded = installed.stdout.split()
            self.assertEqual(path, os.path.realpath(fedvar._native.library_path()))
            self.assertEqual(flwr_loaded, "False")  # fedvar.flower loads without Flower


if __name__ == "__main__":
    unittest.main(verbosity=2)
