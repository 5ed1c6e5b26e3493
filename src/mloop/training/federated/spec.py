"""What a federated training asks for: :class:`Federated` (clients, rounds, strategy) and :class:`DP`.

>>> Federated(clients="field_region", rounds=20, strategy="fedprox", mu=0.01,
...           dp=DP(noise_multiplier=1.0, max_grad_norm=1.0, delta=1e-5))   # doctest: +SKIP

Both are validated when made: a wrong value fails here, naming the rule and the fix, not rounds later in
a client process.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from mloop.errors import SchemaError

STRATEGIES = ("fedavg", "fedprox")


@dataclass(frozen=True)
class DP:
    """Differentially private local training (Opacus DP-SGD): per-sample gradients clipped to
    ``max_grad_norm`` and Gaussian noise of ``noise_multiplier`` × that norm added; the ε spent at
    ``delta`` is reported per client and overall."""

    noise_multiplier: float = 1.0
    max_grad_norm: float = 1.0
    delta: float = 1e-5

    def __post_init__(self) -> None:
        if not _finite(self.noise_multiplier) or self.noise_multiplier <= 0:
            raise SchemaError(
                f"DP noise_multiplier must be a number > 0, got {self.noise_multiplier!r}: 1.0 is a common "
                "start (more noise, less ε spent)."
            )
        if not _finite(self.max_grad_norm) or self.max_grad_norm <= 0:
            raise SchemaError(f"DP max_grad_norm must be a number > 0, got {self.max_grad_norm!r}; try 1.0.")
        if not _finite(self.delta) or not 0 < self.delta < 1:
            raise SchemaError(
                f"DP delta must be in (0, 1), got {self.delta!r}; take less than 1/rows of a client, like 1e-5."
            )


@dataclass(frozen=True)
class Federated:
    """Train on data partitioned by the label source's column ``clients``: one client process per value,
    ``rounds`` rounds of ``local_epochs`` each on a ``fraction`` of the clients, aggregated by
    ``strategy`` ("fedavg": the mean of the clients' weights weighted by rows; "fedprox": the same, with
    ``mu``/2·‖w − w_global‖² in each client's loss, which holds skewed clients near the global model)."""

    clients: str
    rounds: int = 20
    strategy: str = "fedavg"
    mu: float = 0.01
    local_epochs: int = 1
    fraction: float = 1.0
    dp: DP | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.clients, str) or not self.clients:
            raise SchemaError(
                f"Federated clients must name the label source's column that partitions the rows (one "
                f"client per value), like clients='field_region'; got {self.clients!r}."
            )
        if self.strategy not in STRATEGIES:
            raise SchemaError(
                f"Federated strategy must be one of {', '.join(STRATEGIES)}, not {self.strategy!r}."
            )
        for name in ("rounds", "local_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SchemaError(f"Federated {name} must be a whole number ≥ 1, got {value!r}.")
        if not _finite(self.mu) or self.mu < 0:
            raise SchemaError(
                f"Federated mu (FedProx's proximal weight) must be ≥ 0, got {self.mu!r}; try 0.01."
            )
        if not _finite(self.fraction) or not 0 < self.fraction <= 1:
            raise SchemaError(
                f"Federated fraction (the share of clients training each round) must be in (0, 1], got "
                f"{self.fraction!r}."
            )
        if self.dp is not None and not isinstance(self.dp, DP):
            raise SchemaError(f"Federated dp must be a DP(...) or None, not a {type(self.dp).__name__}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise SchemaError(f"Federated seed must be an integer, got {self.seed!r}.")

    def params(self) -> dict[str, Any]:
        """The spec as flat run parameters (``federated_rounds``, ``federated_dp_delta``, ...)."""
        flat = {f"federated_{k}": v for k, v in asdict(self).items() if k != "dp"}
        dp = {} if self.dp is None else {f"federated_dp_{k}": v for k, v in asdict(self.dp).items()}
        return {**flat, "federated_dp": self.dp is not None, **dp}


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
