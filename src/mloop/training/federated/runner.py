"""The rounds of a federated training: the aggregator here, one spawned process per client.

>>> result = train(TorchClassifier(MLP), partitions, Federated("region", rounds=10))  # doctest: +SKIP
>>> result.rounds[-1].metrics["test_accuracy"], result.epsilon                                        # doctest: +SKIP

Every byte a client sends is checked by :func:`mloop.training.federated.protocol.receive` against the
model's ``state_dict`` before it is used; the partitions are recipes the clients load themselves.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from mloop.errors import SchemaError
from mloop.training.federated import client, protocol
from mloop.training.federated.aggregate import fedavg
from mloop.training.federated.partitions import Partition
from mloop.training.federated.spec import Federated
from mloop.training.fitting import is_torch

FEDERABLE = "mloop.training.torch.TorchClassifier or TorchRegressor (a PyTorch module, like a small MLP)"
STOP_SECONDS = 30.0


@dataclass
class ClientInfo:
    """What the aggregator knows of a client: all it said in its hello, and the ε it has spent."""

    name: str
    pid: int
    rows: dict[str, int]
    fingerprint: str
    features: list[str] = field(default_factory=list)
    classes: list[Any] = field(default_factory=list)  # the label values it holds (not their counts)
    epsilon: float | None = None


@dataclass
class RoundResult:
    """Round ``step`` (0: the initial model): the clients that trained, their mean loss weighted by rows,
    the aggregated model's metrics on the clients' validation and test rows, and the seconds the round's
    training took (sending the weights, the clients' evaluation and local epochs, their answers)."""

    step: int
    clients: list[str]
    metrics: dict[str, float]
    seconds: float


@dataclass
class FederatedResult:
    """The trained model (``model``: the net with the final global weights), the clients, every round."""

    model: Any
    weights: dict[str, np.ndarray]
    classes: list[Any]
    clients: list[ClientInfo]
    rounds: list[RoundResult] = field(default_factory=list)
    seconds: float = 0.0
    messages: int = 0

    @property
    def metrics(self) -> dict[str, float]:
        """The final model's metrics (the last round's)."""
        return self.rounds[-1].metrics

    @property
    def epsilon(self) -> float | None:
        """The ε spent overall: the clients' rows are disjoint, so the largest client's ε (parallel
        composition); None without DP."""
        spent = [c.epsilon for c in self.clients if c.epsilon is not None]
        return max(spent) if spent else None


def check_model(model: Any) -> bool:
    """Whether ``model`` can be federated (a torch net); raise naming what can when not. Returns
    whether it is a classifier."""
    if not is_torch(model):
        raise SchemaError(
            f"A {type(model).__name__} cannot be trained federated: clients exchange a model's weights, which "
            f"a tree ensemble does not have in a form that averages. Use {FEDERABLE}."
        )
    from skorch import NeuralNetClassifier  # type: ignore[import-untyped]

    return isinstance(model, NeuralNetClassifier)


def train(
    model: Any,
    partitions: Mapping[str, Partition],
    spec: Federated,
    *,
    on_round: Callable[[RoundResult], None] | None = None,
) -> FederatedResult:
    """Train ``model`` (unfitted) over ``partitions`` (client name → its rows' recipe) as ``spec`` says."""
    import torch

    classifier = check_model(model)
    if len(partitions) < 2:
        raise SchemaError(f"Federated training needs two clients or more; {len(partitions)} given.")
    started = time.perf_counter()
    torch.manual_seed(spec.seed)
    model.initialize()
    weights = {k: v.detach().cpu().numpy() for k, v in model.module_.state_dict().items()}
    schema = {k: (tuple(v.shape), str(v.dtype)) for k, v in weights.items()}
    pool = Clients(model, partitions, spec, classifier, schema)
    try:
        infos = pool.hello()
        classes = pool.setup(infos)
        result = FederatedResult(model, weights, classes, list(infos.values()))
        rng = np.random.default_rng(spec.seed)
        names, picked, loss, took = list(partitions), list[str](), None, 0.0
        # Pass r evaluates the weights of round r (0: the initial ones) on every client, then the picked
        # clients train on them; what they send back is round r + 1. The last pass only evaluates.
        for step in range(spec.rounds + 1):
            chosen = [] if step == spec.rounds else _pick(names, spec.fraction, rng)
            clock = time.perf_counter()
            replies = pool.round(step, weights, chosen)
            metrics = _evaluation([r.header["evaluation"] for r in replies.values()], classifier)
            if loss is not None:
                metrics["train_loss"] = loss
            row = RoundResult(step, picked, metrics, took)
            result.rounds.append(row)
            if on_round is not None:
                on_round(row)
            took = time.perf_counter() - clock  # the pass that trained round step + 1
            updates = [r for r in replies.values() if r.kind == "update"]
            for update in updates:
                if update.header["epsilon"] is not None:
                    infos[update.header["client"]].epsilon = float(update.header["epsilon"])
            if updates:
                weights = fedavg([(u.arrays, int(u.header["rows"])) for u in updates])
                rows = sum(int(u.header["rows"]) for u in updates)
                loss = sum(float(u.header["loss"]) * int(u.header["rows"]) for u in updates) / max(rows, 1)
                picked = chosen
        result.messages = pool.received
    finally:
        pool.stop()
    model.module_.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
    if classifier:
        model.classes_inferred_ = np.asarray(classes)
    else:
        model.target_ndim_ = 1
    result.weights, result.seconds = weights, time.perf_counter() - started
    return result


class Clients:
    """The client processes and the aggregator's end of their pipes."""

    def __init__(self, model: Any, partitions: Mapping[str, Partition], spec: Federated, classifier: bool,
                 schema: dict[str, tuple[tuple[int, ...], str]]) -> None:  # fmt: skip
        from sklearn.base import clone

        # Spawned, not forked: a fork would copy this process's memory, which may hold other rows.
        context = multiprocessing.get_context("spawn")
        self.schema, self.received = schema, 0
        self.processes: dict[str, Any] = {}
        self.pipes: dict[str, Connection] = {}
        for index, (name, partition) in enumerate(partitions.items()):
            mine, theirs = context.Pipe()
            task = client.ClientSpec(partition, clone(model), spec, index, classifier)
            process = context.Process(target=client.main, args=(theirs, task), name=f"mloop-client-{name}",
                                      daemon=True)  # fmt: skip
            process.start()
            theirs.close()
            self.processes[name], self.pipes[name] = process, mine

    def receive(self, name: str) -> protocol.Message:
        """The next message of client ``name``, checked; a client's error or death raises here."""
        pipe, process = self.pipes[name], self.processes[name]
        while not pipe.poll(0.5):
            if not process.is_alive() and not pipe.poll(0):
                raise SchemaError(
                    f"Federated client {name!r} died (exit code {process.exitcode}) without a word."
                )
        try:
            data = pipe.recv_bytes()
        except EOFError:
            raise SchemaError(f"Federated client {name!r} closed its pipe without a word.") from None
        self.received += 1
        message = protocol.receive(data, self.schema)
        if message.header["client"] != name:
            raise protocol.ProtocolError(
                f"Client {name!r} sent a message signed {message.header['client']!r}."
            )
        if message.kind == "error":
            raise SchemaError(f"Federated client {name!r} failed: {message.header['message']}")
        return message

    def hello(self) -> dict[str, ClientInfo]:
        infos = {}
        for name in self.pipes:
            said = self.receive(name)
            if said.kind != "hello":
                raise protocol.ProtocolError(f"Client {name!r} began with {said.kind!r}, not 'hello'.")
            h = said.header
            infos[name] = ClientInfo(name, int(h["pid"]), dict(h["rows"]), str(h["fingerprint"]),
                                     list(h["features"]), list(h["classes"]))  # fmt: skip
        first = next(iter(infos.values()))
        for info in infos.values():
            if info.features != first.features:
                raise SchemaError(
                    f"Clients {first.name!r} and {info.name!r} have different features "
                    f"({first.features} vs {info.features}): every client must build the same inputs."
                )
            if info.rows["train"] == 0:
                raise SchemaError(f"Client {info.name!r} has no training rows; drop it or give it data.")
        return infos

    def setup(self, infos: Mapping[str, ClientInfo]) -> list[Any]:
        """Tell every client the label values of all (so they number the classes alike)."""
        seen = {c for info in infos.values() for c in info.classes}
        classes = sorted(seen, key=lambda c: (type(c).__name__, c))
        for pipe in self.pipes.values():
            pipe.send_bytes(protocol.encode({"kind": "setup", "classes": classes}))
        return classes

    def round(
        self, step: int, weights: Mapping[str, np.ndarray], chosen: list[str]
    ) -> dict[str, protocol.Message]:
        for name, pipe in self.pipes.items():
            pipe.send_bytes(
                protocol.encode({"kind": "round", "round": step, "train": name in chosen}, weights)
            )
        replies = {}
        for name in self.pipes:
            reply = self.receive(name)
            expected = "update" if name in chosen else "evaluation"
            if reply.kind != expected or reply.header["round"] != step:
                raise protocol.ProtocolError(
                    f"Client {name!r} answered round {step} with a {reply.kind!r} of round "
                    f"{reply.header.get('round')}; it owed a {expected!r}."
                )
            replies[name] = reply
        return replies

    def stop(self) -> None:
        for pipe in self.pipes.values():
            with contextlib.suppress(OSError):  # that client is gone already
                pipe.send_bytes(protocol.encode({"kind": "stop"}))
        deadline = time.monotonic() + STOP_SECONDS
        for process in self.processes.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join()
        for pipe in self.pipes.values():
            pipe.close()


def _pick(names: list[str], fraction: float, rng: np.random.Generator) -> list[str]:
    count = max(1, round(fraction * len(names)))
    return (
        sorted(rng.choice(names, size=count, replace=False).tolist()) if count < len(names) else list(names)
    )


def _evaluation(parts: list[dict[str, dict[str, float]]], classifier: bool) -> dict[str, float]:
    """The clients' evaluations summed: loss (log loss or MSE) and accuracy over all their rows."""
    out: dict[str, float] = {}
    for split in protocol.SPLITS:
        rows = sum(p[split]["rows"] for p in parts)
        if rows == 0:
            continue
        out[f"{split}_rows"] = float(rows)
        loss = sum(p[split]["loss_sum"] for p in parts) / rows
        if classifier:
            out[f"{split}_log_loss"] = loss
            out[f"{split}_accuracy"] = sum(p[split]["correct"] for p in parts) / rows
        else:
            out[f"{split}_mse"], out[f"{split}_rmse"] = loss, float(np.sqrt(loss))
    return out
