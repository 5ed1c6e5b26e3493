"""A training pipeline end to end: feature views -> point-in-time training set -> LightGBM -> evaluated,
profiled, registered with lineage and a model card -> reloaded in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lightgbm
import pandas as pd
import pytest

import mloop as ml
from mloop import Project
from mloop.errors import SchemaError
from tests.training.fraud import setup


@pytest.fixture
def fraud(sqlite_project: Project, tmp_path: Path) -> tuple[Project, ml.TrainingPipeline, pd.DataFrame]:
    pipeline, frame = setup(sqlite_project, tmp_path)
    return sqlite_project, pipeline, frame


@pytest.mark.slow
def test_train_register_champion_and_reload_in_a_fresh_process(fraud, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project, pipeline, _ = fraud
    run = pipeline.run(project)
    info = project.runs.get(run.id)
    assert info.status == "finished"
    assert info.metrics["test_roc_auc"] > 0.75 and info.metrics["valid_roc_auc"] > 0.75
    version = project.models.get("fraud", version=1)
    assert version.run_id == run.id
    assert {v["name"] for v in version.lineage["feature_views"]} == {"customer_stats", "customer_last"}
    assert version.lineage["training_set_fingerprint"] == info.tags["training_set"]
    project.models.set_alias("fraud", "champion", version.version)

    sample = pipeline.training_set(project).test.head(50)
    features = version.signature.to_dict()["inputs"] if hasattr(version.signature, "to_dict") else None
    assert features is not None
    names = [c["name"] for c in features]
    inputs = sample[names].reset_index(drop=True)
    here = project.models.load("fraud", alias="champion").predict(inputs)
    inputs.to_parquet(tmp_path / "inputs.parquet")
    script = (
        "import sys, json, pandas as pd, mloop as ml\n"
        f"project = ml.Project.open({str(project.root)!r}, env={{}})\n"
        "model = project.models.load('fraud', alias='champion')\n"
        f"preds = model.predict(pd.read_parquet({str(tmp_path / 'inputs.parquet')!r}))\n"
        "print(json.dumps([float(p) for p in preds]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [float(p) for p in here]


def test_the_same_pipeline_on_the_same_data_gives_the_same_fingerprint_and_metrics(fraud) -> None:  # type: ignore[no-untyped-def]
    project, pipeline, _ = fraud
    first, second = pipeline.run(project), pipeline.run(project)
    a, b = project.runs.get(first.id), project.runs.get(second.id)
    assert a.tags["training_set"] == b.tags["training_set"]
    assert {k: v for k, v in a.metrics.items() if k.startswith(("valid_", "test_"))} == {
        k: v for k, v in b.metrics.items() if k.startswith(("valid_", "test_"))
    }
    assert project.models.get("fraud").version == 2


def test_the_model_card_has_every_section(fraud) -> None:  # type: ignore[no-untyped-def]
    project, pipeline, _ = fraud
    pipeline.run(project)
    card = project.models.card("fraud", 1, format="markdown")
    for section in ("Intended use", "Training data", "Metrics", "Fairness", "Limitations", "Lineage"):
        assert section.lower() in card.lower(), section
    assert "card payments" in card and "customer_stats" in card


def test_a_reference_profile_is_stored_for_monitoring(fraud) -> None:  # type: ignore[no-untyped-def]
    project, pipeline, _ = fraud
    pipeline.run(project)
    version = project.models.get("fraud")
    profile = json.loads(project.artifacts.get_bytes(version.lineage["reference_profile"]))
    assert "amount_ratio" in json.dumps(profile) and "prediction" in json.dumps(profile)


def test_tuning_runs_child_trials_and_marks_the_best(fraud) -> None:  # type: ignore[no-untyped-def]
    project, pipeline, _ = fraud
    result = pipeline.tune(project, {"num_leaves": (4, 31), "learning_rate": (0.02, 0.3, "log")}, trials=6)
    trials = [r for r in result.trials if r["state"] == "complete"]
    assert len(result.trials) == 6 and trials
    assert result.best_value == max(r["value"] for r in trials)
    best = project.runs.get(result.best_run_id)
    assert best.tags.get("best") == "true" and best.parent_id == result.parent_run_id
    parent = project.runs.get(result.parent_run_id)
    assert parent.tags["best_run"] == result.best_run_id


def test_bad_labels_say_what_to_fix(fraud) -> None:  # type: ignore[no-untyped-def]
    project, pipeline, frame = fraud
    one_class = frame.assign(is_fraud=0)
    with pytest.raises(SchemaError, match="single class"):
        ml.TrainingPipeline(
            "x", pipeline.features, ml.Label(one_class, "is_fraud", "ts"), pipeline.model
        ).run(project)
    early = frame.assign(ts=frame.ts - pd.Timedelta(days=3650))
    with pytest.raises(SchemaError, match="outside the feature data"):
        ml.TrainingPipeline("x", pipeline.features, ml.Label(early, "is_fraud", "ts"), pipeline.model).run(
            project
        )
    with pytest.raises(SchemaError, match="split is empty"):
        ml.TrainingPipeline("x", pipeline.features, ml.Label(frame, "is_fraud", "ts"), pipeline.model,
                            split=ml.TimeSplit(valid="30d", test="5d")).run(project)  # fmt: skip
    text = frame.assign(is_fraud=frame.txn_id.map(lambda v: f"class {v % 3}"))
    with pytest.raises(SchemaError, match="use a classifier for classes"):
        ml.TrainingPipeline(
            "x", pipeline.features, ml.Label(text, "is_fraud", "ts"), lightgbm.LGBMRegressor()
        ).run(project)
    with pytest.raises(SchemaError, match="no column"):
        ml.TrainingPipeline(
            "x", pipeline.features, ml.Label(frame, "label", "ts"), lightgbm.LGBMClassifier()
        ).run(project)


@pytest.mark.slow
def test_tuning_in_a_process_pool_gives_child_runs_too(fraud) -> None:  # type: ignore[no-untyped-def]
    project, pipeline, _ = fraud
    result = pipeline.tune(project, {"num_leaves": (4, 31)}, trials=4, executor="process", jobs=2, refit=True)
    assert len(result.trials) == 4 and all(r["state"] == "complete" for r in result.trials)
    children = [project.runs.get(r["run_id"]) for r in result.trials]
    assert {c.parent_id for c in children} == {result.parent_run_id}
    assert result.refit is not None and project.runs.get(result.refit.id).params["num_leaves"] in (
        str(result.best_params["num_leaves"]),
        result.best_params["num_leaves"],
    )
