"""fedvar.remote against a real `fedvar defend`: a torchvision ResNet18
(1 input channel, the cifar stem) built in PyTorch is purified over ZeroMQ
and loads back with strict=True; a wrong key raises ValueError.

    remote_test.py FEDVAR_BINARY DATA_DIR

Exit 0 on success, 1 on a failure, 77 (skipped) without pyzmq, msgpack,
torch or torchvision."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77
DEFENSE = "vardefense:preset=one-shot"  # no training: quick at full width


def missing_modules():
    missing = []
    for name in ("zmq", "msgpack", "numpy", "torch", "torchvision"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    return missing


def torchvision_resnet18():
    import torch
    import torchvision
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = torch.nn.Identity()
    return model


def start_service(binary, data, work):
    key_file = os.path.join(work, "key")
    with open(key_file, "w") as f:
        f.write("remote-test-key\n")
    endpoint_file = os.path.join(work, "endpoint")
    out = open(os.path.join(work, "defend.jsonl"), "w")
    log = open(os.path.join(work, "defend.log"), "w")
    service = subprocess.Popen(
        [binary, "defend", "--listen", "tcp://127.0.0.1:*", "--endpoint-file", endpoint_file,
         "--data", data, "--clean-range", "-200:", "--device", "cpu", "--threads", "2",
         "--defense", DEFENSE, "--key-file", key_file], stdout=out, stderr=log)
    out.close()  # the child holds its own copies
    log.close()
    for _ in range(600):
        if os.path.exists(endpoint_file) or service.poll() is not None:
            break
        time.sleep(0.1)
    with open(endpoint_file) as f:
        return service, f.read().strip(), key_file


def check_purify(endpoint, key_text):
    import torch
    import fedvar.remote
    model = torchvision_resnet18()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state, report = fedvar.remote.purify(endpoint, key_text, model.state_dict(), timeout=240)
    assert report["defense"] == "vardefense", report
    assert report["normalization"]["source"] == "none", report
    assert len(report["request_id"]) == 32, report
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert list(state) == list(before), "names come back in the input's order"
    fresh = torchvision_resnet18()
    fresh.load_state_dict(state, strict=True)
    changed = [k for k in before if not torch.equal(before[k], state[k].to(before[k].dtype))]
    assert changed, "the purified model equals the input"
    print(f"purified: {len(changed)} tensor(s) changed, ACC {report['acc_before']} -> "
          f"{report['acc_after']}", file=sys.stderr)
    return model


def check_wrong_key(endpoint, model):
    import fedvar.remote
    try:
        fedvar.remote.purify(endpoint, b"not-the-key", model.state_dict(), timeout=60)
    except ValueError as e:
        assert "wrong key" in str(e), e
        return
    raise AssertionError("a wrong key did not raise ValueError")


def main(binary, data):
    missing = missing_modules()
    if missing:
        print(f"skipped: python3 lacks {', '.join(missing)} "
              "(apt-get install python3-zmq python3-msgpack)", file=sys.stderr)
        return SKIP
    with tempfile.TemporaryDirectory() as work:
        service, endpoint, key_file = start_service(binary, data, work)
        try:
            with open(key_file) as f:
                model = check_purify(endpoint, f.read())
            check_wrong_key(endpoint, model)
            service.send_signal(signal.SIGTERM)
            assert service.wait(timeout=60) == 0, "the service did not exit with 0"
            with open(os.path.join(work, "defend.jsonl")) as f:
                kinds = [json.loads(line)["kind"] for line in f]
            assert kinds == ["purified", "error"], kinds
        except BaseException:
            with open(os.path.join(work, "defend.log")) as f:
                sys.stderr.write(f.read())
            raise
        finally:
            if service.poll() is None:
                service.kill()
                service.wait()
    print("ok", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
