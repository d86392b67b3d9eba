"""A Flower strategy wrapper that purifies each round's aggregated model.

    from flwr.server.strategy import FedAvg
    from fedvar.flower import DefendedStrategy
    strategy = DefendedStrategy(FedAvg(...), list(model.state_dict().keys()),
                                images, labels)
    flwr.server.start_server(..., strategy=strategy)

Flower itself is imported only when a round is aggregated, so this module
loads without it. The wrapped strategy does the aggregation; the defense
runs after it, as the differential-privacy wrappers of Flower wrap any
Strategy.
"""
import json
import logging

from . import Defense

_log = logging.getLogger(__name__)

# The fit metrics' key holding the defense's report (a JSON string).
METRICS_KEY = "fedvar"


class DefendedStrategy:
    """Wraps any Flower Strategy: its aggregate_fit's parameters are purified
    by a fedvar defense with the server's clean set, the report put in the
    round's fit metrics under "fedvar" (a JSON string: Flower's metrics are
    scalars). Every other method is the wrapped strategy's.

    strategy: a flwr.server.strategy.Strategy (FedAvg, FedProx, ...).
    names: the model's state dict keys in the order of Flower's parameters
        (list(model.state_dict().keys()) for clients that send
        [v.numpy() for v in model.state_dict().values()]).
    images, labels, normalize, device, seed: the clean set and the rest, as
        fedvar.purify's (checked here: a bad one raises ValueError now).
    defense: a spec of fedvar.defenses().
    rounds: the rounds to purify (None: all; else a collection of numbers).
    A round whose wrapped aggregate_fit returns no parameters passes
    unchanged. A defense error (ValueError, RuntimeError) is raised from
    aggregate_fit: the server does not go on with an unpurified model.
    """

    def __init__(self, strategy, names, images, labels,
                 defense="vardefense:preset=federated", normalize=None, rounds=None,
                 device="auto", seed=0):
        names = list(names)
        if not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
            raise ValueError("names must be distinct strings: the model's state dict keys")
        self.strategy = strategy
        self.names = names
        self.rounds = None if rounds is None else frozenset(int(r) for r in rounds)
        self.defense = Defense(images, labels, defense=defense, normalize=normalize,
                               device=device, seed=seed)

    def __repr__(self):
        return f"DefendedStrategy({self.strategy!r}, defense={self.defense.spec!r})"

    def aggregate_fit(self, server_round, results, failures):
        """The wrapped strategy's aggregate, purified (when server_round is
        one of `rounds`), with metrics["fedvar"] = the report as JSON."""
        parameters, metrics = self.strategy.aggregate_fit(server_round, results, failures)
        if parameters is None or (self.rounds is not None and server_round not in self.rounds):
            return parameters, metrics
        from flwr.common import (  # pylint: disable=import-outside-toplevel
            ndarrays_to_parameters, parameters_to_ndarrays)
        arrays = parameters_to_ndarrays(parameters)
        if len(arrays) != len(self.names):
            raise ValueError(f"round {server_round}: the aggregated model has {len(arrays)} "
                             f"arrays, names has {len(self.names)}")
        purified, report = self.defense.purify(dict(zip(self.names, arrays)))
        _log.info("fedvar: round %s purified by %s: holdout ACC %s -> %s in %.1f s",
                  server_round, self.defense.spec, report.get("acc_before"),
                  report.get("acc_after"), report.get("seconds", {}).get("total", 0.0))
        metrics = dict(metrics or {})
        metrics[METRICS_KEY] = json.dumps(report)
        return ndarrays_to_parameters(list(purified.values())), metrics

    # The rest of Flower's Strategy, delegated.
    def initialize_parameters(self, client_manager):
        return self.strategy.initialize_parameters(client_manager)

    def configure_fit(self, server_round, parameters, client_manager):
        return self.strategy.configure_fit(server_round, parameters, client_manager)

    def configure_evaluate(self, server_round, parameters, client_manager):
        return self.strategy.configure_evaluate(server_round, parameters, client_manager)

    def aggregate_evaluate(self, server_round, results, failures):
        return self.strategy.aggregate_evaluate(server_round, results, failures)

    def evaluate(self, server_round, parameters):
        return self.strategy.evaluate(server_round, parameters)

    def __getattr__(self, name):
        # Only called for what the wrapper lacks; "strategy" itself missing
        # (during unpickling) must not recurse.
        if name == "strategy":
            raise AttributeError(name)
        return getattr(self.strategy, name)

    def close(self):
        """Frees the defense's clean set in the library."""
        self.defense.close()
