"""Federated training: three client processes, each on its own rows, only weights and scalars crossing
to the aggregator (checked by recording every message it receives), DP-SGD's ε on the run, the clients'
fingerprints in the registered version's lineage; the protocol's refusals and the aggregation rules."""

from __future__ import annotations

import dataclasses
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mloop as ml
from mloop import Project
from mloop.errors import SchemaError
from mloop.training.federated import DP, Federated, ProtocolError, protocol
from mloop.training.federated.aggregate import fedavg, proximal_term
from mloop.training.torch import TorchClassifier
from tests.training.federated_setup import MLP, REGIONS, setup

ROUNDS = 2


@dataclasses.dataclass
class Trained:
    project: Project
    pipeline: ml.TrainingPipeline
    run: Any
    transcript: list[bytes]


pytestmark = pytest.mark.xdist_group("federated")  # the module's fixtures are built once, on one worker


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    """One federated run (3 clients, DP-SGD), every message the aggregator received recorded raw."""
    folder = tmp_path_factory.mktemp("federated")
    (folder / "project").mkdir()
    project = Project.open(folder / "project", env={})
    spec = Federated(
        clients="region", rounds=ROUNDS, local_epochs=2, dp=DP(noise_multiplier=0.6, max_grad_norm=1.0)
    )
    model = TorchClassifier(MLP, lr=0.05, batch_size=32)
    pipeline = setup(project, folder, model, federated=spec)
    transcript: list[bytes] = []
    checked = protocol.receive

    def recording(data: bytes, weights: Any) -> protocol.Message:
        transcript.append(bytes(data))
        return checked(data, weights)

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(protocol, "receive", recording)
            run = pipeline.run(project)
        yield Trained(project, pipeline, run, transcript)
    finally:
        project.close()


@pytest.mark.slow  # the module's one federated run: three spawned processes importing torch
def test_only_weights_and_scalars_leave_the_client_processes(trained: Trained) -> None:
    weights = {k: tuple(v.shape) for k, v in MLP().state_dict().items()}
    kinds: dict[str, int] = {}
    pids = set()
    for data in trained.transcript:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:  # no pickled object can hide in it
            arrays = {name: archive[name] for name in archive.files}
        header = json.loads(arrays.pop(protocol.HEADER).tobytes())
        kinds[header["kind"]] = kinds.get(header["kind"], 0) + 1
        if header["kind"] == "update":
            assert {k: a.shape for k, a in arrays.items()} == weights  # named weights of the model's shapes
            assert all(a.dtype == np.float32 for a in arrays.values())
        else:
            assert arrays == {}
        if header["kind"] == "hello":
            assert set(header) == {"kind", "client", "pid", "rows", "fingerprint", "classes", "features"}
            pids.add(header["pid"])
        for value in _leaves(header):  # every header value is a short scalar
            assert isinstance(value, int | float | str | bool | None) and len(str(value)) <= 100
    assert kinds == {"hello": 3, "update": 3 * ROUNDS, "evaluation": 3}
    assert len(pids) == 3 and os.getpid() not in pids  # three processes, none of them this one


@pytest.mark.slow
def test_each_round_is_a_step_of_one_run_with_the_epsilon_spent(trained: Trained) -> None:
    info = trained.project.runs.get(trained.run.id)
    assert info.params["federated_strategy"] == "fedavg" and info.params["federated_rounds"] == str(ROUNDS)
    history = trained.project.runs.metric_history(trained.run.id, "test_accuracy")
    assert [step for step, _, _ in history] == list(range(ROUNDS + 1))
    assert info.metrics["test_accuracy"] > 0.7
    assert info.metrics["dp_epsilon"] > 0
    per_client = [info.metrics[f"dp_epsilon/{r}"] for r in REGIONS]
    assert all(e > 0 for e in per_client) and info.metrics["dp_epsilon"] == pytest.approx(max(per_client))


@pytest.mark.slow
def test_the_lineage_lists_the_clients_fingerprints_never_their_rows(trained: Trained) -> None:
    version = trained.project.models.get("diagnosis")
    clients = version.lineage["federated"]["clients"]
    assert [c["name"] for c in clients] == list(REGIONS)
    # The fingerprint a client computed is the hash of its own rows, as the pipeline would build them.
    source = trained.pipeline.label.source
    import pandas as pd

    north = pd.read_parquet(source).query("region == 'north'").reset_index(drop=True)
    alone = dataclasses.replace(
        trained.pipeline, label=dataclasses.replace(trained.pipeline.label, source=north)
    )
    assert clients[0]["fingerprint"] == alone.training_set(trained.project).fingerprint
    assert sum(c["rows"]["train"] for c in clients) < 360 and len({c["fingerprint"] for c in clients}) == 3
    proba = np.asarray(trained.project.models.load("diagnosis").predict(
        alone.training_set(trained.project).test[[f"f{i}" for i in range(30)]]))  # fmt: skip
    assert proba.ndim == 1 and ((proba >= 0) & (proba <= 1)).all()  # the probability of benign


# ---- the protocol refuses anything but the model's weights and scalars -----------------------------


WEIGHTS = {"net.0.weight": ((8, 30), "float32"), "net.0.bias": ((8,), "float32")}
EVALUATION = {s: {"rows": 10, "loss_sum": 3.0, "correct": 7} for s in protocol.SPLITS}
UPDATE = {"kind": "update", "client": "north", "round": 0, "rows": 10, "loss": 0.5, "epsilon": None,
          "evaluation": EVALUATION}  # fmt: skip


def _weights() -> dict[str, np.ndarray]:
    return {name: np.zeros(shape, dtype=dtype) for name, (shape, dtype) in WEIGHTS.items()}


def test_an_update_of_the_models_weights_is_accepted() -> None:
    message = protocol.receive(protocol.encode(UPDATE, _weights()), WEIGHTS)
    assert message.kind == "update" and set(message.arrays) == set(WEIGHTS)


@pytest.mark.parametrize(
    ("header", "arrays", "complaint"),
    [
        (UPDATE, {**_weights(), "rows": np.zeros((10, 30), np.float32)}, "unexpected arrays \\['rows'\\]"),
        (
            UPDATE,
            {**_weights(), "net.0.bias": np.zeros((10,), np.float32)},
            "must be float32 of shape \\(8,\\)",
        ),
        (UPDATE, {"net.0.weight": np.zeros((8, 30), np.float32)}, "missing \\['net.0.bias'\\]"),
        ({**UPDATE, "kind": "evaluation", "round": 0}, {}, "allows exactly"),
        (
            {"kind": "evaluation", "client": "n", "round": 0, "evaluation": EVALUATION},
            _weights(),
            "carries arrays",
        ),
        ({**UPDATE, "rows_seen": [1.0, 2.0]}, _weights(), "allows exactly"),
        ({"kind": "dump", "client": "n"}, {}, "not one a client may send"),
        ({**UPDATE, "loss": "0.5"}, _weights(), "Field 'loss'"),
        ({**UPDATE, "evaluation": {"test": {"rows": 1}}}, _weights(), "An evaluation must be"),
    ],
)
def test_anything_else_is_refused(
    header: dict[str, Any], arrays: dict[str, np.ndarray], complaint: str
) -> None:
    with pytest.raises(ProtocolError, match=complaint):
        protocol.receive(protocol.encode(header, arrays), WEIGHTS)


def test_a_pickled_object_is_refused() -> None:
    buffer = io.BytesIO()
    np.savez(buffer, __header__=np.frombuffer(json.dumps(UPDATE).encode(), np.uint8),
             rows=np.array([{"amount": 1.0}], dtype=object))  # fmt: skip
    with pytest.raises(ProtocolError, match="not a protocol message"):
        protocol.receive(buffer.getvalue(), WEIGHTS)


# ---- aggregation ------------------------------------------------------------------------------------


@given(st.lists(st.tuples(st.floats(-5, 5), st.integers(1, 1000)), min_size=1, max_size=6))
@settings(max_examples=20)
def test_fedavg_is_the_row_weighted_mean(clients: list[tuple[float, int]]) -> None:
    updates = [({"w": np.full(3, value, np.float32)}, rows) for value, rows in clients]
    want = sum(v * r for v, r in clients) / sum(r for _, r in clients)
    got = fedavg(updates)["w"]
    assert got.dtype == np.float32 and np.allclose(got, want, atol=1e-4)


def test_fedprox_pulls_towards_the_global_weights() -> None:
    module = torch.nn.Linear(3, 1)
    anchor = {k: v.detach().clone() for k, v in module.named_parameters()}
    assert float(proximal_term(module, anchor, mu=0.5).detach()) == 0.0
    with torch.no_grad():
        module.weight += 2.0  # three weights, each 2 away
    assert float(proximal_term(module, anchor, mu=0.5).detach()) == pytest.approx(0.5 / 2 * 3 * 4)


# ---- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"clients": ""}, "name the label source's column"),
        ({"strategy": "fedsgd"}, "one of fedavg, fedprox"),
        ({"rounds": 0}, "rounds must be a whole number"),
        ({"fraction": 1.5}, "fraction"),
        ({"mu": -1.0}, "mu"),
        ({"dp": {"noise_multiplier": 1.0}}, "DP\\(...\\) or None"),
    ],
)
def test_a_wrong_spec_says_what_to_give(kwargs: dict[str, Any], complaint: str) -> None:
    with pytest.raises(SchemaError, match=complaint):
        Federated(**{"clients": "region", **kwargs})


def test_bad_dp_settings_are_refused() -> None:
    with pytest.raises(SchemaError, match="delta must be in"):
        DP(delta=2.0)


def test_a_tree_model_or_a_dataframe_source_is_refused_with_what_works(
    sqlite_project: Project, tmp_path: Path
) -> None:
    trees = setup(
        sqlite_project, tmp_path, lightgbm.LGBMClassifier(n_estimators=5), federated=Federated("region")
    )
    with pytest.raises(SchemaError, match="Use mloop.training.torch.TorchClassifier or TorchRegressor"):
        trees.run(sqlite_project)
    import pandas as pd

    frame = pd.read_parquet(trees.label.source)
    net = dataclasses.replace(trees, model=TorchClassifier(MLP), label=ml.Label(frame, "benign", "ts"))
    with pytest.raises(SchemaError, match="frame.to_parquet"):
        net.run(sqlite_project)
    assert sqlite_project.runs.search() == []  # refused before any run began


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value
