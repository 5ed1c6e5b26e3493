"""Monitoring a model with tensor inputs and multiclass outputs over a real prediction log: image drift
against the stored reference sample, drift of the predicted classes and of each class's probability,
and live accuracy, macro F1 and per-class recall from delayed labels."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, recall_score

from mloop import Project
from mloop.metrics.reference import sample_from_bytes
from mloop.monitoring.reference import log_reference
from mloop.predictions.files import partition, to_table, write_parquet
from mloop.predictions.log import predictions_folder
from tests.monitoring.stream import label

START = datetime(2026, 11, 30, tzinfo=UTC)
CLASSES = ["low", "mid", "high"]


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    digits = load_digits().images.astype(np.float32)  # in the order of its writers: shuffled
    return digits[np.random.default_rng(7).permutation(len(digits))]


def probabilities(rows: int, rng: np.random.Generator, favour: int | None = None) -> np.ndarray:
    alpha = np.ones(3) if favour is None else np.where(np.arange(3) == favour, 6.0, 1.0)
    return rng.dirichlet(alpha, size=rows)


def register(project: Project, reference: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"image": list(reference), "size": rng.normal(size=len(reference))})
    model = LogisticRegression().fit(frame[["size"]], rng.integers(0, 3, len(frame)))
    with project.run("digits") as run:
        lineage = log_reference(run, frame, prediction=probabilities(len(frame), rng), classes=CLASSES)
        run.register(model, "digits", input_example=frame[["size"]].head(20), lineage=lineage,
                     card={"training_data": {"task": "multiclass"}})  # fmt: skip


def log_window(project: Project, hour: int, batch: np.ndarray, proba: np.ndarray, name: str) -> list[str]:
    """One single-row record per image, spread over ``hour``, written as compacted Parquet."""
    ids, recs = [], []
    sizes = np.random.default_rng(hour).normal(size=len(batch))  # as in the reference
    for i, (image, p) in enumerate(zip(batch, proba, strict=True)):
        ids.append(uuid.uuid4().hex)
        ts = START + timedelta(hours=hour, seconds=3600 * (i + 0.5) / len(batch))
        recs.append({"request_id": ids[-1], "ts": ts.timestamp(), "endpoint": "digits", "model": "digits",
                     "version": 1, "revision": 1, "latency_s": 0.003, "status": "ok",
                     "predictions": [p.tolist()], "inputs": {"image": [image.tolist()], "size": [sizes[i]]}})  # fmt: skip
    folder = predictions_folder(project.settings)
    write_parquet(to_table(recs), partition(folder, "digits", START.date()) / f"part-{name}.parquet")
    return ids


@pytest.fixture
def project(tmp_path: Path, images: np.ndarray) -> Any:
    with Project.open(tmp_path, env={}, monitoring={"window": "1h", "sinks": [{"kind": "log"}]}) as opened:
        register(opened, images[:900])
        yield opened


def by_column(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["column"]: c for c in entry["columns"]}


def test_the_reference_sample_is_stored_beside_the_profile(project: Project, images: np.ndarray) -> None:
    version = project.models.get("digits", 1)
    assert set(version.lineage) >= {"reference_profile", "reference_sample"}
    sample = sample_from_bytes(project.artifacts.get_bytes(version.lineage["reference_sample"]))  # type: ignore[attr-defined]
    assert sample["image"].shape == (900, 64) and sample["image"].dtype == np.float32
    assert np.array_equal(sample["image"], images[:900].reshape(900, 64))  # fewer than 2,000 rows: all


@pytest.mark.slow
def test_a_shifted_image_window_and_its_classes_are_flagged(project: Project, images: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    current = images[900:1700]
    log_window(project, 0, current, probabilities(len(current), rng), "quiet")
    noisy = current + rng.normal(0, 4.0, size=current.shape).astype(np.float32)
    log_window(project, 1, noisy, probabilities(len(current), rng, favour=2), "shifted")
    found = project.monitoring.drift("digits", since=START, until=START + timedelta(hours=2))
    quiet, shifted = (by_column(e) for e in found)
    assert quiet["image"]["kind"] == "tensor" and quiet["image"]["method"] == "domain_classifier"
    assert quiet["image"]["drifted"] is False and found[0]["drifted"] == []
    assert 0.4 < quiet["image"]["statistic"] < 0.55 and quiet["image"]["rows"] == 800
    assert shifted["image"]["drifted"] is True and shifted["image"]["statistic"] > 0.9
    assert "size" in quiet and quiet["size"]["kind"] == "numeric"
    assert shifted["__prediction__"]["drifted"] and shifted["__prediction__.high"]["drifted"]
    assert {"__prediction__", "__prediction__.low", "__prediction__.mid", "__prediction__.high"} <= set(quiet)
    # another method, by name, as mloop.yaml's drift.methods would choose it
    mmd = project.monitoring.drift("digits", since=START, until=START + timedelta(hours=2),
                                   methods={"image": "mmd"})  # fmt: skip
    assert [by_column(e)["image"]["method"] for e in mmd] == ["mmd", "mmd"]
    assert [by_column(e)["image"]["drifted"] for e in mmd] == [False, True]
    assert by_column(mmd[1])["image"]["p_value"] < 0.01


def test_live_multiclass_performance_from_delayed_labels(project: Project, images: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    proba = probabilities(300, rng)
    ids = log_window(project, 0, images[900:1200], proba, "labelled")
    truth = rng.integers(0, 3, 300)
    truth[:150] = np.argmax(proba[:150], axis=1)  # half the labels agree with the model
    sent = {rid: CLASSES[t] for rid, t in zip(ids[:250], truth[:250], strict=True)}
    sent[ids[250]] = "unknown-class"  # counted as invalid, left out
    assert label(project, sent)["accepted"] == 251
    window = project.monitoring.performance("digits", since=START, until=START + timedelta(hours=1))[0]
    assert window["task"] == "multiclass" and window["labelled"] == 250 and window["invalid_labels"] == 1
    y, predicted = truth[:250], np.argmax(proba[:250], axis=1)
    realised = window["realised"]
    assert realised["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    assert realised["macro_f1"] == pytest.approx(f1_score(y, predicted, average="macro"))
    recall = recall_score(y, predicted, average=None)
    assert realised["per_class_recall"] == pytest.approx(dict(zip(CLASSES, recall, strict=True)))


def test_methods_are_checked_against_the_column_kind() -> None:
    from mloop.errors import MalformedInput
    from mloop.metrics.profile import build_profile
    from mloop.monitoring.suite import compare

    frame = pd.DataFrame({"image": list(np.zeros((4, 2))), "x": [1.0, 2.0, 3.0, 4.0]})
    profile = build_profile(frame)
    with pytest.raises(MalformedInput, match="is a tensor: use component_share, domain_classifier, mmd"):
        compare(profile, frame, methods={"image": "psi"})
    with pytest.raises(MalformedInput, match="mmd compares tensors"):
        compare(profile, frame, methods={"x": "mmd"})
    found = compare(profile, frame).column("image")  # no sample: undecided, with the reason
    assert found.drifted is None and "no reference sample" in found.note
    other = compare(profile, frame, samples={"image": np.zeros((4, 3), dtype=np.float32)}).column("image")
    assert other.drifted is None and "3" in other.note and "2 components" in other.note
