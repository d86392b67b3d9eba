"""ResNet18 interop with torchvision, both ways.

  resnet_interop.py export DIR   writes DIR/torchvision.safetensors (a
                                 torchvision resnet18 with the cifar stem and 1
                                 input channel) and DIR/io.safetensors (an input
                                 batch and torchvision's logits for it)
  resnet_interop.py check DIR    loads DIR/fedvar.safetensors into torchvision
                                 with strict=True, runs DIR/fedvar_io's input
                                 and compares with fedvar's logits
  resnet_interop.py strict FILE  loads FILE into torchvision with strict=True
                                 and prints, per conv, how many output channels
                                 are all zero (JSON)
Exit code 0 on success; a message on stderr and 1 otherwise."""
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402


def cifar_resnet18(num_classes=10):
    model = torchvision.models.resnet18(num_classes=num_classes)
    model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = torch.nn.Identity()
    return model


def randomize_bn(model, gen):
    # Non-trivial BN statistics so that a mix-up of buffers shows in logits.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.num_batches_tracked.fill_(7)


def export(out_dir):
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = cifar_resnet18()
    randomize_bn(model, gen)
    model.eval()
    x = torch.rand(4, 1, 28, 28, generator=gen)
    with torch.no_grad():
        logits = model(x)
    safetensors_io.save(model.state_dict(), os.path.join(out_dir, "torchvision.safetensors"),
                        {"format": "pt"})
    safetensors_io.save({"input": x, "logits": logits},
                        os.path.join(out_dir, "io.safetensors"))
    return 0


def check(out_dir):
    state, _ = safetensors_io.load(os.path.join(out_dir, "fedvar.safetensors"))
    io, _ = safetensors_io.load(os.path.join(out_dir, "fedvar_io.safetensors"))
    model = cifar_resnet18(num_classes=io["logits"].shape[1])
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        logits = model(io["input"])
    diff = (logits - io["logits"]).abs().max().item()
    if diff >= 1e-4:
        print(f"logits differ from fedvar's by {diff}", file=sys.stderr)
        return 1
    return 0


def strict(path):
    import json
    state, _ = safetensors_io.load(path)
    model = cifar_resnet18(num_classes=state["fc.weight"].shape[0])
    model.load_state_dict(state, strict=True)
    zero = {name: int((m.weight.flatten(1).abs().sum(1) == 0).sum())
            for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    print(json.dumps(zero))
    return 0


if __name__ == "__main__":
    mode, arg = sys.argv[1], sys.argv[2]
    sys.exit({"export": export, "check": check, "strict": strict}[mode](arg))
