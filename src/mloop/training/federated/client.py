"""A federated client: a separate OS process that loads its own partition, trains the model it is sent
on it, and answers with weights and scalars only (:mod:`mloop.training.federated.protocol`).

Its life: load the rows (:class:`~mloop.training.federated.partitions.Partition`), say ``hello``, take
the ``setup`` (the label values of all clients, so every client numbers the classes alike), then for each
``round`` message evaluate the global weights it carries on its validation and test rows and, when picked,
train ``local_epochs`` on its training rows and send the new weights back; ``stop`` ends it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from mloop.training.federated import protocol
from mloop.training.federated.aggregate import proximal_step, proximal_term
from mloop.training.federated.partitions import ClientData, Partition
from mloop.training.federated.spec import Federated


@dataclass(frozen=True)
class ClientSpec:
    """What the driver gives a client process: a recipe for its rows, the unfitted model, the spec."""

    partition: Partition
    model: Any  # an unfitted mloop TorchClassifier / TorchRegressor (a skorch net)
    federated: Federated
    index: int  # the client's position, which seeds its shuffling and noise
    classifier: bool


def main(conn: Connection, spec: ClientSpec) -> None:
    """The client process's entry point (multiprocessing, spawn)."""
    name = spec.partition.name
    try:
        import warnings

        import torch

        torch.set_num_threads(1)  # several clients share the machine's cores
        # Opacus' notes on its fast RNG and its backward hooks on inputs that need no gradient.
        warnings.filterwarnings("ignore", message=".*Secure RNG turned off.*")
        warnings.filterwarnings("ignore", message=".*Full backward hook is firing.*")
        data = spec.partition.load()
        conn.send_bytes(protocol.encode(hello(name, data, spec.classifier)))
        Client(spec, data).serve(conn)
    except (EOFError, BrokenPipeError):
        pass  # the aggregator is gone: nobody to answer
    except Exception as exc:  # reported, as text only, for the aggregator to raise
        text = f"{type(exc).__name__}: {exc}"[: protocol.MAX_TEXT]
        with contextlib.suppress(OSError):
            conn.send_bytes(protocol.encode({"kind": "error", "client": name, "message": text}))
    finally:
        conn.close()


def hello(name: str, data: ClientData, classifier: bool) -> dict[str, Any]:
    labels = np.unique(data.y["train"]).tolist() if classifier else []
    return {
        "kind": "hello", "client": name, "pid": os.getpid(), "fingerprint": data.fingerprint,
        "rows": {s: len(data.y[s]) for s in ("train", "valid", "test")},
        "classes": labels, "features": list(data.features),
    }  # fmt: skip


class Client:
    """The model and optimiser of one client, kept across rounds (with DP, so is the privacy accountant)."""

    def __init__(self, spec: ClientSpec, data: ClientData) -> None:
        import torch

        self.spec, self.data = spec, data
        self.seed = spec.federated.seed + 1000 * (spec.index + 1)
        torch.manual_seed(self.seed)
        net = spec.model
        net.initialize()
        self.module, self.lr, self.batch_size = net.module_, float(net.lr), int(net.batch_size)
        self.optimizer = net.optimizer_
        self.trained = self.module  # the module the optimiser steps (Opacus wraps it)
        self.engine: Any = None

    def serve(self, conn: Connection) -> None:
        setup = protocol.decode(conn.recv_bytes())
        if setup.kind == "stop":  # the aggregator refused the clients' hellos
            return
        classes = setup.header.get("classes", [])
        self.targets = {s: self._targets(self.data.y[s], classes) for s in ("train", "valid", "test")}
        self.loader = self._loader()
        while True:
            message = protocol.decode(conn.recv_bytes())
            if message.kind == "stop":
                return
            self._load(message.arrays)
            evaluation = {s: self._evaluate(s) for s in protocol.SPLITS}
            header = {"client": self.spec.partition.name, "round": int(message.header["round"]),
                      "evaluation": evaluation}  # fmt: skip
            if not message.header.get("train"):
                conn.send_bytes(protocol.encode({"kind": "evaluation", **header}))
                continue
            loss = self._train(message.arrays)
            dp = self.spec.federated.dp
            epsilon = None if self.engine is None or dp is None else float(self.engine.get_epsilon(dp.delta))
            weights = {k: v.detach().cpu().numpy() for k, v in self.module.state_dict().items()}
            update = {"kind": "update", **header, "rows": len(self.targets["train"]), "loss": loss,
                      "epsilon": epsilon}  # fmt: skip
            conn.send_bytes(protocol.encode(update, weights))

    def _targets(self, labels: np.ndarray, classes: list[Any]) -> np.ndarray:
        if not self.spec.classifier:
            values = np.asarray(labels, dtype=np.float32)
            return values.reshape(-1, 1)
        index = {c: i for i, c in enumerate(classes)}
        return np.asarray([index[v] for v in labels.tolist()], dtype=np.int64)

    def _loader(self) -> Any:
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        dataset = TensorDataset(
            torch.from_numpy(self.data.x["train"]), torch.from_numpy(self.targets["train"])
        )
        generator = torch.Generator().manual_seed(self.seed)
        loader = DataLoader(dataset, batch_size=self.batch_size, shuffle=True, generator=generator)
        dp = self.spec.federated.dp
        if dp is None:
            return loader
        from opacus import PrivacyEngine  # type: ignore[import-untyped]

        self.engine = PrivacyEngine(accountant="rdp")
        self.trained, self.optimizer, loader = self.engine.make_private(
            module=self.module, optimizer=self.optimizer, data_loader=loader,
            noise_multiplier=dp.noise_multiplier, max_grad_norm=dp.max_grad_norm,
            noise_generator=torch.Generator().manual_seed(self.seed),
        )  # fmt: skip
        return loader

    def _load(self, arrays: dict[str, np.ndarray]) -> None:
        import torch

        self.module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})

    def _loss(self, out: Any, target: Any, reduction: str = "mean") -> Any:
        import torch.nn.functional as F

        if self.spec.classifier:
            return F.cross_entropy(out, target, reduction=reduction)
        return F.mse_loss(out, target, reduction=reduction)

    def _train(self, arrays: dict[str, np.ndarray]) -> float:
        import torch

        fed = self.spec.federated
        anchor = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
        prox = fed.strategy == "fedprox" and fed.mu > 0
        self.trained.train()
        losses: list[float] = []
        for _ in range(fed.local_epochs):
            for x, y in self.loader:
                if len(x) == 0:  # Poisson sampling (DP) can draw an empty batch
                    continue
                self.optimizer.zero_grad()
                loss = self._loss(self.trained(x), y)
                objective = (
                    loss + proximal_term(self.module, anchor, fed.mu) if prox and fed.dp is None else loss
                )
                objective.backward()
                self.optimizer.step()
                if prox and fed.dp is not None:
                    proximal_step(self.module, anchor, fed.mu, self.lr)
                losses.append(float(loss.detach()))
        return float(np.mean(losses)) if losses else 0.0

    def _evaluate(self, split: str) -> dict[str, float]:
        import torch

        x, y = torch.from_numpy(self.data.x[split]), torch.from_numpy(self.targets[split])
        self.module.eval()
        with torch.no_grad():
            out = self.module(x) if len(x) else None
        self.module.train()
        if out is None:
            return {"rows": 0, "loss_sum": 0.0, "correct": 0}
        correct = int((out.argmax(dim=1) == y).sum()) if self.spec.classifier else 0
        return {"rows": len(x), "loss_sum": float(self._loss(out, y, "sum")), "correct": correct}
