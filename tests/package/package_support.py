"""What the package's tests share: Fashion-MNIST from its IDX files, the
torchvision ResNet18 with fedvar's "cifar" stem, and state dicts as numpy."""
import gzip
import os

import numpy as np
import torch
import torchvision

FASHION_MNIST = os.environ.get("FEDVAR_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")


def _idx(path):
    # IDX: a big-endian header (magic: two zero bytes, the type, the number
    # of dimensions), the dimensions as big-endian uint32, then uint8 data.
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fashion_mnist(split, start=0, stop=None):
    """(uint8 images (N, 28, 28), int64 labels (N,)) of split "train" or
    "t10k", rows start:stop."""
    prefix = os.path.join(FASHION_MNIST, split)
    images = _idx(prefix + "-images-idx3-ubyte.gz")[start:stop]
    labels = _idx(prefix + "-labels-idx1-ubyte.gz")[start:stop].astype(np.int64)
    return np.array(images), labels


def cifar_resnet18(num_classes=10, in_channels=1):
    """torchvision's resnet18 with fedvar's "cifar" stem (3x3 conv, no max
    pool), as tests/python/resnet_interop.py builds it."""
    model = torchvision.models.resnet18(num_classes=num_classes)
    model.conv1 = torch.nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1,
                                  bias=False)
    model.maxpool = torch.nn.Identity()
    return model


def state_arrays(model):
    """The model's state dict as numpy arrays (sharing the model's memory)."""
    return {name: value.numpy() for name, value in model.state_dict().items()}


def load_strict(arrays, num_classes=10, in_channels=1):
    """A fresh cifar_resnet18 with `arrays` loaded by load_state_dict(strict=True)."""
    model = cifar_resnet18(num_classes, in_channels)
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()},
                          strict=True)
    return model


def accuracy(model, images, labels, mean=0.0, std=1.0):
    """Top-1 accuracy of `model` (eval mode) on uint8 (N, 28, 28) images."""
    model.eval()
    x = (torch.from_numpy(images).float().div(255).unsqueeze(1) - mean) / std
    with torch.no_grad():
        predicted = model(x).argmax(1).numpy()
    return float((predicted == labels).mean())
