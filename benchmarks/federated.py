"""Benchmark: federated training against centralised and each client alone (docs/explain.md).

scikit-learn's breast cancer set (569 rows, 30 features, standardised once: a scaling agreed in
advance, not learnt from the clients), split by a seeded, label-skewed ``region`` into three clients
(north mostly malignant, west mostly benign), each client's rows split 60/20/20 into train, valid and
test. The same MLP (30-16-2, Adam, lr 0.01, batch 32) is trained:

- centralised: on every client's training rows pooled, ``rounds × local_epochs`` epochs;
- each client alone: on its own training rows, as many epochs;
- federated: FedAvg, FedProx (mu 0.1), and FedAvg with DP-SGD (Opacus, noise 1.0, clip 1.0, δ 1e-5),
  ``rounds`` rounds of ``local_epochs`` epochs, one spawned process per client (:mod:`mloop.training.federated`).

Every model is scored on the same holdout: the union of the clients' test rows (accuracy, log loss).

    .venv/bin/python benchmarks/federated.py                    # 20 rounds of 2 epochs, a few minutes
    .venv/bin/python benchmarks/federated.py --rounds 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import accuracy_score, log_loss

from mloop.training.federated import DP, Federated, FramePartition, train
from mloop.training.torch import TorchClassifier

FEATURES = [f"f{i}" for i in range(30)]
REGIONS = ("north", "south", "west")
# P(region | label): malignant (0) rows mostly north, benign (1) rows mostly west.
SKEW = {0: (0.7, 0.2, 0.1), 1: (0.1, 0.3, 0.6)}


class MLP(torch.nn.Module):
    def __init__(self, inputs: int = 30, hidden: int = 16, out: int = 2) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(inputs, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, out)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def rows(seed: int) -> pd.DataFrame:
    x, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame((x - x.mean(axis=0)) / x.std(axis=0), columns=FEATURES).astype(np.float32)
    frame["label"] = y
    frame["region"] = [REGIONS[rng.choice(3, p=SKEW[int(v)])] for v in y]
    frame["split"] = rng.choice(["train", "valid", "test"], size=len(y), p=[0.6, 0.2, 0.2])
    return frame


def net(epochs: int, seed: int) -> TorchClassifier:
    return TorchClassifier(MLP, lr=0.01, batch_size=32, max_epochs=epochs, train_split=None, checkpoint=False,
                           seed=seed)  # fmt: skip


def scores(proba: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    return float(accuracy_score(y, proba.argmax(axis=1))), float(log_loss(y, proba, labels=[0, 1]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--local-epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    frame = rows(args.seed)
    test = frame[frame["split"] == "test"]
    x_test, y_test = test[FEATURES].to_numpy(), test["label"].to_numpy()
    epochs = args.rounds * args.local_epochs
    print(f"breast cancer: {len(frame)} rows; clients (rows, share benign):")
    for region in REGIONS:
        mine = frame[frame["region"] == region]
        print(
            f"  {region:<6} {len(mine):>4} rows  benign {mine['label'].mean():.0%}  train {int((mine['split'] == 'train').sum())}"
        )
    print(f"holdout: the clients' test rows, {len(test)}\n")
    table: list[tuple[str, int, float, float, float, str]] = []

    def alone(name: str, train_rows: pd.DataFrame) -> None:
        started = time.perf_counter()
        model = net(epochs, args.seed).fit(train_rows[FEATURES].to_numpy(), train_rows["label"].to_numpy())
        accuracy, loss = scores(model.predict_proba(x_test), y_test)
        table.append((name, 0, accuracy, loss, time.perf_counter() - started, "-"))

    train_rows = frame[frame["split"] == "train"]
    alone("centralised (pooled rows)", train_rows)
    for region in REGIONS:
        alone(f"{region} alone", train_rows[train_rows["region"] == region])

    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "rows.parquet")
        frame.to_parquet(path, index=False)
        partitions = {r: FramePartition(r, path, "region", r, FEATURES, "label") for r in REGIONS}
        runs = {
            "FedAvg": Federated("region", rounds=args.rounds, local_epochs=args.local_epochs, seed=args.seed),
            "FedProx (mu 0.1)": Federated("region", rounds=args.rounds, local_epochs=args.local_epochs,
                                          strategy="fedprox", mu=0.1, seed=args.seed),
            "FedAvg + DP-SGD": Federated("region", rounds=args.rounds, local_epochs=args.local_epochs,
                                         dp=DP(noise_multiplier=1.0, max_grad_norm=1.0, delta=1e-5), seed=args.seed),
        }  # fmt: skip
        for name, spec in runs.items():
            result = train(net(epochs, args.seed), partitions, spec)
            proba = result.model.predict_proba(x_test)
            accuracy, loss = scores(proba, y_test)
            # The protocol's own holdout figure (summed from the clients' evaluations) must agree.
            assert abs(result.metrics["test_accuracy"] - accuracy) < 1e-9, (result.metrics, accuracy)
            epsilon = "-" if result.epsilon is None else f"{result.epsilon:.2f} (δ 1e-5)"
            table.append((name, spec.rounds, accuracy, loss, result.seconds, epsilon))
            per_round = sum(r.seconds for r in result.rounds[1:]) / spec.rounds
            startup = result.seconds - per_round * spec.rounds
            print(f"{name}: {result.messages} messages received, {startup:.1f} s to start the clients, "
                  f"{per_round:.2f} s a round")  # fmt: skip

    print("\n| model | rounds | holdout accuracy | holdout log loss | seconds | ε |")
    print("|---|---|---|---|---|---|")
    for name, rounds, accuracy, loss, seconds, epsilon in table:
        print(f"| {name} | {rounds or '-'} | {accuracy:.3f} | {loss:.3f} | {seconds:.1f} | {epsilon} |")


if __name__ == "__main__":
    main()
