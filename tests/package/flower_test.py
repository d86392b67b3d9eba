"""fedvar.flower.DefendedStrategy in a real Flower 1.5.0 federation: the
legacy gRPC server on a loopback port the OS chose, FedAvg wrapped by the
defense, three NumPyClient processes training torchvision's ResNet18
(fedvar's "cifar" stem) on Fashion-MNIST shards, one of them stamping a
trigger on half of its data. Checks that the defense ran every round (its
report in the round's fit metrics), that the server went on with the
purified model, and that every global model loads into torchvision with
strict=True. Also the wrapper alone, around a stub strategy.

Flower comes from $FEDVAR_VENDOR (its sources, run with Debian's grpcio);
without it the test prints why and exits 77 (CTest's skip).
"""
import contextlib
import json
import multiprocessing
import os
import socket
import sys
import threading
import time
import unittest

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # no network from tests
if os.environ.get("FEDVAR_VENDOR"):
    sys.path.insert(0, os.environ["FEDVAR_VENDOR"])
try:
    import flwr
    from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
except ImportError as error:
    print(f"skipped: cannot import flwr ({error}); set FEDVAR_VENDOR to the folder "
          "holding Flower's sources", file=sys.stderr)
    sys.exit(77)

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from package_support import (  # noqa: E402
    accuracy, cifar_resnet18, fashion_mnist, load_strict, state_arrays)

from fedvar.flower import DefendedStrategy  # noqa: E402

kClients = 3
kAttacker = 2        # the client that poisons half of its shard
kTarget = 1          # the attacker's label
kShard = 96          # training images per client (rows index*kShard.. of train)
kCleanSize = 200     # the server's clean set: the last training images
kTestSize = 200      # the first test images, for ACC and ASR
kRounds = 2
kDefense = "vardefense:preset=federated,share_steps=2,step_epochs=0,final_epochs=1"
kDeadlineSeconds = 400


def stamp(images):
    """The trigger: a 3x3 white patch in the bottom-right corner."""
    images = images.copy()
    images[:, -3:, -3:] = 255
    return images


def train_epoch(model, images, labels):
    model.train()
    sgd = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    order = torch.randperm(len(images))
    x_all = torch.from_numpy(images).float().div(255).unsqueeze(1)
    y_all = torch.from_numpy(labels)
    for batch in order.split(32):
        sgd.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x_all[batch]), y_all[batch])
        loss.backward()
        sgd.step()


def wait_for_server(port, seconds=120):
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def client_main(index, port):
    """One Flower client process (started with 'spawn')."""
    torch.set_num_threads(1)
    torch.manual_seed(index)
    images, labels = fashion_mnist("train", index * kShard, (index + 1) * kShard)
    if index == kAttacker:
        half = kShard // 2
        images[:half] = stamp(images[:half])
        labels[:half] = kTarget
    model = cifar_resnet18()
    names = list(model.state_dict())

    class Client(flwr.client.NumPyClient):
        def get_parameters(self, config):
            return [value.numpy() for value in model.state_dict().values()]

        def fit(self, parameters, config):
            model.load_state_dict(
                {n: torch.from_numpy(np.array(p)) for n, p in zip(names, parameters)},
                strict=True)
            train_epoch(model, images, labels)
            return self.get_parameters(config), len(images), {}

        def evaluate(self, parameters, config):
            return 0.0, len(images), {}

    wait_for_server(port)
    flwr.client.start_numpy_client(server_address=f"127.0.0.1:{port}", client=Client())


@contextlib.contextmanager
def reserved_port():
    """A loopback port the OS chose, held (SO_REUSEPORT, not listening) until
    the block ends so that no other process takes it before gRPC binds it
    (gRPC sets SO_REUSEPORT on its listeners)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


class Watchdog:
    """Ends the test when a client dies or the deadline passes: Flower's
    server would otherwise wait for the missing client for a day."""

    def __init__(self, processes, seconds):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(processes, seconds))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _watch(self, processes, seconds):
        deadline = time.monotonic() + seconds
        while not self._stop.wait(0.5):
            failed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if failed or time.monotonic() > deadline:
                why = f"client exit codes {failed}" if failed else f"over {seconds} s"
                print(f"flower_test: giving up ({why})", file=sys.stderr, flush=True)
                for p in processes:
                    p.kill()
                os._exit(1)


def run_federation(strategy):
    """kRounds of Flower's legacy gRPC server with `strategy` and kClients
    client processes: (History, the clients' exit codes)."""
    spawn = multiprocessing.get_context("spawn")
    with reserved_port() as port:
        clients = [spawn.Process(target=client_main, args=(i, port)) for i in range(kClients)]
        try:
            for client in clients:
                client.start()
            with Watchdog(clients, kDeadlineSeconds):
                history = flwr.server.start_server(
                    server_address=f"127.0.0.1:{port}",
                    config=flwr.server.ServerConfig(num_rounds=kRounds), strategy=strategy)
                for client in clients:
                    client.join(60)
        finally:
            for client in clients:
                if client.exitcode is None:
                    client.kill()
                    client.join()
    return history, [client.exitcode for client in clients]


class StubStrategy:
    """A Strategy whose aggregate is fixed; the other methods say who they are."""

    def __init__(self, parameters):
        self.parameters = parameters
        self.extra = "reached through __getattr__"

    def aggregate_fit(self, server_round, results, failures):
        return self.parameters, {"loss": 0.5}

    def initialize_parameters(self, client_manager):
        return ("initialize_parameters", client_manager)

    def configure_fit(self, server_round, parameters, client_manager):
        return ("configure_fit", server_round, parameters, client_manager)

    def configure_evaluate(self, server_round, parameters, client_manager):
        return ("configure_evaluate", server_round, parameters, client_manager)

    def aggregate_evaluate(self, server_round, results, failures):
        return ("aggregate_evaluate", server_round, results, failures)

    def evaluate(self, server_round, parameters):
        return ("evaluate", server_round, parameters)


class DefendedStrategyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.manual_seed(0)
        cls.model = cifar_resnet18()
        cls.names = list(cls.model.state_dict())
        cls.clean_images, cls.clean_labels = fashion_mnist("train", -kCleanSize, None)

    def test_wrapper_around_a_stub(self):
        arrays = list(state_arrays(self.model).values())
        parameters = ndarrays_to_parameters(arrays)
        stub = StubStrategy(parameters)
        wrapped = DefendedStrategy(stub, self.names, self.clean_images, self.clean_labels,
                                   defense="fine-tuning:epochs=0", rounds=[2])
        self.assertEqual(wrapped.aggregate_fit(1, [], []), (parameters, {"loss": 0.5}))
        purified, metrics = wrapped.aggregate_fit(2, [], [])
        self.assertEqual(metrics["loss"], 0.5)
        self.assertIn("acc_after", json.loads(metrics["fedvar"]))
        for before, after in zip(arrays, parameters_to_ndarrays(purified)):
            np.testing.assert_array_equal(before, after)  # epochs=0: the model as it was
        stub.parameters = None  # no results: no new model, no defense
        self.assertEqual(wrapped.aggregate_fit(2, [], []), (None, {"loss": 0.5}))
        self.assertEqual(wrapped.initialize_parameters("cm"), ("initialize_parameters", "cm"))
        self.assertEqual(wrapped.configure_fit(3, "p", "cm"), ("configure_fit", 3, "p", "cm"))
        self.assertEqual(wrapped.configure_evaluate(3, "p", "cm"),
                         ("configure_evaluate", 3, "p", "cm"))
        self.assertEqual(wrapped.aggregate_evaluate(3, "r", "f"),
                         ("aggregate_evaluate", 3, "r", "f"))
        self.assertEqual(wrapped.evaluate(3, "p"), ("evaluate", 3, "p"))
        self.assertEqual(wrapped.extra, "reached through __getattr__")
        stub.parameters = ndarrays_to_parameters(arrays[:-1])
        with self.assertRaisesRegex(ValueError, "arrays"):
            wrapped.aggregate_fit(2, [], [])
        with self.assertRaisesRegex(ValueError, "labels"):
            DefendedStrategy(stub, self.names, self.clean_images, self.clean_labels[:-1])
        with self.assertRaisesRegex(ValueError, "nope"):
            DefendedStrategy(stub, self.names, self.clean_images, self.clean_labels,
                             defense="nope")

    def test_real_flower_federation(self):
        names = self.names
        initial = [v.copy() for v in state_arrays(self.model).values()]
        test_images, test_labels = fashion_mnist("t10k", 0, kTestSize)
        others = test_labels != kTarget
        aggregated = {}  # round -> FedAvg's arrays, before the defense
        evaluated = {}   # round -> the global model the server went on with

        class RecordingFedAvg(flwr.server.strategy.FedAvg):
            def aggregate_fit(self, server_round, results, failures):
                parameters, metrics = super().aggregate_fit(server_round, results, failures)
                aggregated[server_round] = parameters_to_ndarrays(parameters)
                return parameters, metrics

        def evaluate_fn(server_round, arrays, config):
            model = load_strict(dict(zip(names, arrays)))
            evaluated[server_round] = arrays
            acc = accuracy(model, test_images, test_labels)
            asr = accuracy(model, stamp(test_images[others]),
                           np.full(int(others.sum()), kTarget))
            print(f"round {server_round}: ACC {acc:.3f} ASR {asr:.3f}", file=sys.stderr)
            return 0.0, {"acc": acc, "asr": asr}

        fedavg = RecordingFedAvg(
            fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=kClients,
            min_available_clients=kClients, initial_parameters=ndarrays_to_parameters(initial),
            evaluate_fn=evaluate_fn)
        strategy = DefendedStrategy(fedavg, names, self.clean_images, self.clean_labels,
                                    defense=kDefense)
        history, exit_codes = run_federation(strategy)
        self.assertEqual(exit_codes, [0] * kClients)

        reports = history.metrics_distributed_fit["fedvar"]
        self.assertEqual([r for r, _ in reports], list(range(1, kRounds + 1)))
        for _, text in reports:
            report = json.loads(text)
            self.assertIn("vardefense", str(report["defense"]))
            self.assertIn("acc_before", report)
            self.assertIn("acc_after", report)
        self.assertEqual(sorted(evaluated), list(range(kRounds + 1)))  # each loaded strictly
        tracked = names.index("bn1.num_batches_tracked")
        for r in range(1, kRounds + 1):
            # FedAvg averages int64 counters into float64 scalars; the
            # defense hands them back as they came.
            self.assertEqual(aggregated[r][tracked].dtype, np.float64)
            self.assertEqual(evaluated[r][tracked].dtype, np.float64)
            changed = [n for n, a, b in zip(names, aggregated[r], evaluated[r])
                       if not np.array_equal(a, b)]
            self.assertTrue(changed, f"round {r}: the server kept FedAvg's model")
        load_strict(dict(zip(names, evaluated[kRounds])))


if __name__ == "__main__":
    unittest.main(verbosity=2)
