"""Batch scoring: ``mloop.serving.scoring.job.score`` over Parquet files, with point-in-time features."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from mloop import Project
from mloop.errors import MloopError, NotFound, SchemaError
from mloop.models.signature import SignatureError
from mloop.serving.scoring.job import score
from tests.serving import pit
from tests.serving.pit import DAY, T0

FRAUD_FEATURES = ["customer_stats:*", "customer_last:*", "amount_ratio:amount_ratio"]


# ---- the fraud model: the same predictions as the registry's model on the point-in-time frame -------------


@pytest.fixture(scope="module")
def fraud_input(trained: Project) -> Path:
    """200 labelled transactions, shuffled out of time order, as a Parquet file."""
    frame = pd.read_parquet(Path(trained.root) / "txns.parquet")
    sample = (
        frame[["txn_id", "customer_id", "ts", "amount"]].sample(200, random_state=5).reset_index(drop=True)
    )
    path = Path(trained.root) / "to_score.parquet"
    sample.to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def reference(trained: Project, fraud_input: Path) -> np.ndarray:
    """What the registry's model answers on the point-in-time training-style frame of the same rows."""
    rows = pd.read_parquet(fraud_input)
    frame = trained.features.historical(rows, FRAUD_FEATURES, timestamp="ts")
    return np.asarray(trained.models.load("fraud", version=1).predict(frame))


@pytest.mark.slow
def test_predictions_equal_the_model_on_the_point_in_time_frame(
    trained: Project, fraud_input: Path, reference: np.ndarray, tmp_path: Path
) -> None:
    report = score(trained, "fraud:1", fraud_input, tmp_path / "preds.parquet", chunk_rows=64, workers=1)
    out = pd.read_parquet(tmp_path / "preds.parquet")
    rows = pd.read_parquet(fraud_input)
    assert list(out.columns) == [*rows.columns, "prediction"]
    pd.testing.assert_frame_equal(out[rows.columns], rows)  # input order and values kept
    np.testing.assert_allclose(out["prediction"].to_numpy(), reference, rtol=1e-12)
    assert (report.rows, report.chunks, report.workers, report.model, report.version) == (
        200,
        4,
        1,
        "fraud",
        1,
    )
    assert report.endpoint is None and report.output == str(tmp_path / "preds.parquet")


@pytest.mark.slow
def test_two_workers_write_the_same_file_as_one(
    trained: Project, fraud_input: Path, reference: np.ndarray, tmp_path: Path
) -> None:
    seen: list[tuple[int, int]] = []
    report = score(trained, "fraud:1", fraud_input, tmp_path / "two.parquet", chunk_rows=30, workers=2,
                   progress=lambda done, total: seen.append((done, total)))  # fmt: skip
    assert report.workers == 2 and report.chunks == 7
    np.testing.assert_allclose(pd.read_parquet(tmp_path / "two.parquet")["prediction"], reference, rtol=1e-12)
    assert seen[0] == (0, 200) and seen[-1] == (200, 200)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


@pytest.mark.slow
@settings(max_examples=6, deadline=None)
@given(chunk_rows=st.integers(min_value=13, max_value=260))
def test_chunk_size_does_not_change_a_prediction(
    trained: Project, fraud_input: Path, reference: np.ndarray, chunk_rows: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        report = score(
            trained, "fraud:1", fraud_input, Path(folder) / "p.parquet", chunk_rows=chunk_rows, workers=1
        )
        predictions = pd.read_parquet(Path(folder) / "p.parquet")["prediction"].to_numpy()
    assert report.chunks == -(-200 // chunk_rows)
    np.testing.assert_allclose(predictions, reference, rtol=1e-12)


def test_a_request_field_of_the_wrong_type_is_a_per_field_error(
    trained: Project, fraud_input: Path, tmp_path: Path
) -> None:
    # amount feeds the on-demand view amount_ratio; as text it must be refused by name, not crash the view.
    pd.read_parquet(fraud_input).head(5).assign(amount="12.5").to_parquet(
        tmp_path / "in.parquet", index=False
    )
    with pytest.raises(SignatureError, match="amount: expected float64") as caught:
        score(trained, "fraud:1", tmp_path / "in.parquet", tmp_path / "out.parquet", workers=1)
    assert [p.name for p in caught.value.problems] == ["amount"]
    assert not (tmp_path / "out.parquet").exists()


# ---- the exact setup: which value a row saw -------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("batch")
    project = Project.open(root, env={})
    pit.build(project, root, versions=2)
    yield project
    project.close()


def _score(
    project: Project, frame: pd.DataFrame, folder: Path, target: str = "pit:1", **options: object
) -> pd.DataFrame:
    frame.to_parquet(folder / "in.parquet", index=False)
    score(project, target, folder / "in.parquet", folder / "out.parquet", **options)  # type: ignore[arg-type]
    return pd.read_parquet(folder / "out.parquet")


def test_a_row_sees_only_feature_values_from_up_to_its_time(small: Project, tmp_path: Path) -> None:
    # Customer 1 holds 1.0 from day 1 and 100.0 from day 3: a day-2 row must not see the later 100.0.
    frame = pit.rows(
        (1, T0 + 2 * DAY),
        (1, T0 + 4 * DAY),
        (2, T0 + 2 * DAY),
        (1, T0 + 3 * DAY),
        (1, T0 + 3 * DAY - pd.Timedelta("1us")),
    )
    out = _score(small, frame, tmp_path)
    seen = [1.0, 100.0, 5.0, 100.0, 1.0]  # an event at exactly the row's time counts; a microsecond later not
    np.testing.assert_allclose(out["prediction"], [pit.expected(v) for v in seen])
    assert out["row"].tolist() == list(range(5))


def test_the_inputs_own_column_wins_over_the_looked_up_one(small: Project, tmp_path: Path) -> None:
    frame = pit.rows((1, T0 + 4 * DAY), (2, T0 + 2 * DAY)).assign(value=[7.0, 8.0])
    out = _score(small, frame, tmp_path)
    np.testing.assert_allclose(out["prediction"], [pit.expected(7.0), pit.expected(8.0)])
    # Rows that carry every input need no lookup, so no time either.
    out = _score(small, pd.DataFrame({"value": [3.0]}), tmp_path)
    np.testing.assert_allclose(out["prediction"], [pit.expected(3.0)])


def test_keep_chooses_the_input_columns_of_the_output(small: Project, tmp_path: Path) -> None:
    out = _score(small, pit.rows((1, T0 + 2 * DAY)), tmp_path, keep=["row"])
    assert list(out.columns) == ["row", "prediction"]


def test_an_empty_input_gives_an_empty_output_with_the_columns(small: Project, tmp_path: Path) -> None:
    out = _score(small, pit.rows(), tmp_path)
    assert list(out.columns) == ["row", "customer_id", "ts", "prediction"] and len(out) == 0


def test_a_model_with_several_outputs_writes_a_column_per_output(small: Project, tmp_path: Path) -> None:
    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "b": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]})
    model = LogisticRegression().fit(x, ["lo", "lo", "mid", "mid", "hi", "hi"])
    small.models.register("tri", model, input_example=x)
    out = _score(small, x, tmp_path, target="tri")
    probabilities = model.predict_proba(x)
    assert list(out.columns) == ["a", "b", "prediction", "prediction_hi", "prediction_lo", "prediction_mid"]
    np.testing.assert_allclose(np.stack(out["prediction"].to_numpy()), probabilities)
    for j, name in enumerate(model.classes_):
        np.testing.assert_allclose(out[f"prediction_{name}"], probabilities[:, j])


# ---- what the target names -----------------------------------------------------------------------------


def test_targets_resolve_to_endpoints_aliases_and_versions(small: Project, tmp_path: Path) -> None:
    pit.rows((1, T0 + 2 * DAY)).to_parquet(tmp_path / "in.parquet", index=False)

    def version(target: str, **options: object) -> tuple[int, str | None, str]:
        report = score(small, target, tmp_path / "in.parquet", tmp_path / "out.parquet", **options)  # type: ignore[arg-type]
        return report.version, report.endpoint, report.notes[0]

    assert version("pit")[:2] == (2, None)  # no champion: the newest version
    assert version("pit:1")[:2] == (1, None)
    assert version("pit", version=1)[:2] == (1, None)
    small.models.set_alias("pit", "champion", 1)
    assert version("pit")[:2] == (1, None) and "champion" in version("pit")[2]
    assert version("pit@champion")[:2] == (1, None)
    small.deploy("pit-live", "pit", version=2)
    assert version("pit-live")[:2] == (2, "pit-live")
    assert version("pit-live", version=1)[:2] == (1, None)  # a pinned version of the endpoint's model
    small.deploy("pit", "pit", version=2)  # a name that is both an endpoint and a model: the endpoint wins
    found, endpoint, note = version("pit")
    assert (found, endpoint) == (2, "pit") and "also a model name" in note and "pit@champion" in note
    assert version("pit@champion")[:2] == (1, None)
    small.deployments.undeploy("pit")
    assert version("pit")[:2] == (1, None)
    with pytest.raises(NotFound, match="neither a live endpoint nor a registered model.*pit-live"):
        version("nope")
    with pytest.raises(MloopError, match="version number"):
        version("pit:x")
    with pytest.raises(MloopError, match="names a version already"):
        version("pit:1", version=2)
    with pytest.raises(NotFound):
        version("pit:9")


# ---- failures --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_failure_midway_leaves_no_partial_output(small: Project, tmp_path: Path, workers: int) -> None:
    # The input brings its own value column; row 4 (in the second chunk of three rows) holds a null.
    frame = pd.DataFrame({"value": [1.0, 2.0, 3.0, 4.0, None, 6.0, 7.0]})
    frame.to_parquet(tmp_path / "in.parquet", index=False)
    (tmp_path / "out.parquet").write_bytes(b"the previous output")
    with pytest.raises(SignatureError, match=r"rows 3 to 5 of in.parquet") as caught:
        score(
            small, "pit:1", tmp_path / "in.parquet", tmp_path / "out.parquet", chunk_rows=3, workers=workers
        )
    assert [p.name for p in caught.value.problems] == ["value"]
    assert (tmp_path / "out.parquet").read_bytes() == b"the previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "out.parquet"]


def test_bad_input_is_refused_with_the_fix(small: Project, tmp_path: Path) -> None:
    def run(frame: pd.DataFrame | None, **options: object) -> None:
        if frame is not None:
            frame.to_parquet(tmp_path / "in.parquet", index=False)
        score(small, "pit:1", tmp_path / "in.parquet", tmp_path / "out.parquet", **options)  # type: ignore[arg-type]

    with pytest.raises(NotFound, match="does not exist"):
        run(None)
    (tmp_path / "in.parquet").write_text("customer_id,ts\n1,2026-02-02\n")
    with pytest.raises(SchemaError, match="not a Parquet file"):
        run(None)
    good = pit.rows((1, T0 + 2 * DAY))
    with pytest.raises(SchemaError, match=r"no column 'when'.*--timestamp"):
        run(good, timestamp="when")
    with pytest.raises(SchemaError, match=r"\['customer_id'\], which the input lacks"):
        run(good.drop(columns="customer_id"))
    with pytest.raises(SchemaError, match="without a time zone.*tz_localize"):
        run(good.assign(ts=good["ts"].dt.tz_localize(None)))
    with pytest.raises(SchemaError, match="not timestamps"):
        run(good.assign(ts=good["ts"].astype(str)))
    with pytest.raises(SignatureError, match="value: expected float64") as caught:
        run(good.assign(value=["high"]))
    assert [p.name for p in caught.value.problems] == ["value"]
    with pytest.raises(SchemaError, match=r"keep names column\(s\) \['nope'\]"):
        run(good, keep=["nope"])
    with pytest.raises(SchemaError, match="column 'prediction'.*--keep"):
        run(good.assign(prediction=1.0))
    with pytest.raises(MloopError, match="chunk_rows"):
        run(good, chunk_rows=0)
    assert not (tmp_path / "out.parquet").exists()
