"""How the aggregator combines the clients' weights (FedAvg), and FedProx's proximal term, which a
client adds to its loss.

>>> fedavg([({"w": np.ones(2)}, 30), ({"w": np.zeros(2)}, 10)])["w"]
array([0.75, 0.75])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mloop.errors import SchemaError

Weights = Mapping[str, np.ndarray]


def fedavg(updates: Sequence[tuple[Weights, int]]) -> dict[str, np.ndarray]:
    """The mean of the clients' weights, each weighted by the rows it trained on (McMahan et al., 2017).
    FedProx aggregates the same way; it differs in the clients' loss (:func:`proximal_term`)."""
    if not updates:
        raise SchemaError("No client sent weights this round: nothing to aggregate.")
    total = sum(rows for _, rows in updates)
    if total <= 0:
        raise SchemaError("The clients of this round trained on 0 rows: nothing to aggregate.")
    names = list(updates[0][0])
    out = {}
    for name in names:
        first = updates[0][0][name]
        acc = np.zeros(first.shape, dtype=np.float64)
        for weights, rows in updates:
            acc += np.asarray(weights[name], dtype=np.float64) * (rows / total)
        out[name] = acc.astype(first.dtype)
    return out


def proximal_term(module: Any, anchor: Mapping[str, Any], mu: float) -> Any:
    """FedProx's ``mu/2 · ‖w − w_global‖²`` over the module's trainable parameters (a torch scalar), with
    ``anchor`` the global weights the round started from (torch tensors by parameter name)."""
    import torch

    total = torch.zeros(())
    for name, param in module.named_parameters():
        if param.requires_grad:
            total = total + ((param - anchor[name]) ** 2).sum()
    return 0.5 * mu * total


def proximal_step(module: Any, anchor: Mapping[str, Any], mu: float, lr: float) -> None:
    """The proximal term's gradient step ``w -= lr·mu·(w − w_global)``, for DP-SGD, whose optimizer keeps
    only the clipped, noised per-sample gradients of the data loss: it touches no data, so it spends no
    privacy budget."""
    import torch

    with torch.no_grad():
        for name, param in module.named_parameters():
            if param.requires_grad:
                param -= lr * mu * (param - anchor[name])
