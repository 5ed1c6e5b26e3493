"""A training pipeline run federated: ``TrainingPipeline(..., federated=Federated(...)).run(project)``.

One tracked run: the spec as parameters, each round a step of its metrics (``train_loss``, and the
aggregated model's ``valid_*``/``test_*`` on the clients' own rows), the ε spent; the version registered
with the clients and their rows' fingerprints in its lineage, never their rows. The driver reads only the
partition key's values from the label source, to know which clients to start.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop.errors import SchemaError
from mloop.features.definitions import DatasetSource
from mloop.training.federated.partitions import PipelinePartition
from mloop.training.federated.runner import FederatedResult, RoundResult, check_model, train
from mloop.training.fitting import seeded
from mloop.training.workspace import Workspace


def run_federated(pipeline: Any, project: Workspace, params: dict[str, Any]) -> Any:
    """Train ``pipeline`` federated as its ``federated`` spec says; returns the finished run."""
    spec = pipeline.federated
    model = seeded(pipeline.model, pipeline.seed, params)
    check_model(model)
    values = partition_values(project, pipeline.label.source, spec.clients)
    opener = _opener(project)
    partitions = {str(v): PipelinePartition(str(v), opener, pipeline, spec.clients, v) for v in values}
    run_params = {"seed": pipeline.seed, "model_class": f"{type(model).__module__}.{type(model).__name__}",
                  **spec.params()}  # fmt: skip
    tags = {"pipeline": pipeline.name, "federated": spec.strategy, "clients": str(len(partitions))}
    with project.run(pipeline.experiment or pipeline.name, params=run_params, tags=tags) as run:

        def log(row: RoundResult) -> None:
            run.log_metrics(row.metrics, step=row.step)

        result = train(model, partitions, spec, on_round=log)
        # The model's metrics are the last round's points already logged; these are the run's own.
        totals = {"federated_seconds": result.seconds}
        if result.epsilon is not None:
            totals["dp_epsilon"] = result.epsilon
            totals.update(
                {f"dp_epsilon/{c.name}": c.epsilon for c in result.clients if c.epsilon is not None}
            )
        run.log_metrics(totals)
        if pipeline.register:
            final = {**{k: v for k, v in result.metrics.items() if k != "train_loss"}, **totals}
            version = run.register(
                result.model, pipeline.name, input_example=_example(result), metrics=final,
                lineage=_lineage(pipeline, spec, result), card=_card(pipeline, spec, result),
                description=pipeline.description,
            )  # fmt: skip
            run.set_tags({"model": pipeline.name, "model_version": str(version.version)})
            run.model_version = version
    return run


def _opener(project: Workspace) -> Any:
    """How a client process opens this project (``Project.open(root)``: the class travels by name)."""
    open_ = getattr(type(project), "open", None)
    if not callable(open_):
        raise SchemaError(
            f"Federated clients reopen the project in their own processes; a {type(project).__name__} cannot "
            "be reopened. Run the pipeline on an mloop.Project."
        )
    return functools.partial(open_, project.root)


def partition_values(project: Workspace, source: Any, key: str) -> list[Any]:
    """The values of the label source's column ``key``, one client each (the only column read here)."""
    if isinstance(source, pd.DataFrame):
        raise SchemaError(
            "A federated pipeline's label source must be one each client reads itself: a Parquet path or an "
            "ingested dataset's name. A DataFrame would be sent to every client, rows and all; write it "
            "(frame.to_parquet('labels.parquet')) and pass the path."
        )
    name = source.dataset if isinstance(source, DatasetSource) else str(source)
    try:
        if Path(name).suffix.lower() == ".parquet" and Path(name).exists():
            keys = pd.read_parquet(name, columns=[key])[key]
        else:
            keys = project.data.read(name, columns=[key])[key]
    except (KeyError, ValueError) as exc:
        raise SchemaError(
            f"The label source {name!r} has no column {key!r} to partition the clients by ({exc}); name one "
            "of its columns in Federated(clients=...)."
        ) from None
    values = sorted(keys.dropna().unique().tolist(), key=lambda v: (type(v).__name__, v))
    if len(values) < 2:
        raise SchemaError(
            f"Column {key!r} holds {len(values)} value(s): federated training needs two clients or more."
        )
    return values


def _example(result: FederatedResult) -> pd.DataFrame:
    """A made-up input (zeros) with the features' names: registering needs an example, and no client's
    row may serve."""
    features = result.clients[0].features
    return pd.DataFrame(np.zeros((2, len(features)), dtype=np.float32), columns=features)


def _lineage(pipeline: Any, spec: Any, result: FederatedResult) -> dict[str, Any]:
    return {
        "features": list(pipeline.features),
        "label": {"column": pipeline.label.column, "timestamp": pipeline.label.timestamp},
        "seed": pipeline.seed,
        "federated": {
            "strategy": spec.strategy,
            "rounds": spec.rounds,
            "partition_key": spec.clients,
            "dp": None if spec.dp is None else {"delta": spec.dp.delta, "epsilon": result.epsilon},
            "clients": [
                {"name": c.name, "rows": c.rows, "fingerprint": c.fingerprint, "epsilon": c.epsilon}
                for c in result.clients
            ],
        },
    }


def _card(pipeline: Any, spec: Any, result: FederatedResult) -> dict[str, Any]:
    metrics = {s: {k.removeprefix(f"{s}_"): v for k, v in result.metrics.items() if k.startswith(f"{s}_")}
               for s in ("valid", "test")}  # fmt: skip
    return {
        "intended_use": pipeline.description or f"model trained federated by pipeline {pipeline.name!r}",
        "training_data": {
            "federated": f"{len(result.clients)} clients by {spec.clients!r}, {spec.rounds} rounds of {spec.strategy}",
            "rows": {c.name: c.rows for c in result.clients},
            "features": result.clients[0].features,
        },
        "metrics": metrics,
    }
