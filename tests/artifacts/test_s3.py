"""The artifact store on a real S3 server (SeaweedFS): a whole project on it, and clear errors when S3
cannot be reached or refuses mloop."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mloop import Project
from mloop.artifacts import open_artifact_store
from mloop.errors import StorageUnavailable
from tests.services import free_port

pytestmark = pytest.mark.s3


def test_a_model_registered_on_s3_loads_back_in_a_fresh_project(tmp_path: Path, s3_url: str) -> None:
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = LogisticRegression().fit(frame, [0, 0, 1, 1])
    with Project.open(tmp_path, env={}, artifact_url=s3_url) as project:
        project.models.register("churn", model, input_example=frame)
        assert project.artifacts.url == s3_url
    with Project.open(tmp_path, env={}, artifact_url=s3_url) as project:
        loaded = project.models.load("churn", version=1)
        np.testing.assert_allclose(loaded.predict(frame), model.predict_proba(frame)[:, 1])
    assert not (tmp_path / ".mloop" / "artifacts").exists()  # every blob went to S3


def test_a_wrong_secret_names_the_endpoint_and_the_bucket(
    s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    bucket = s3_url.removeprefix("s3://").split("/")[0]
    store = open_artifact_store(s3_url)
    with pytest.raises(StorageUnavailable, match=rf"endpoint http://127\.0\.0\.1:\d+, bucket '{bucket}'"):
        store.put_bytes(b"weights")
    with pytest.raises(StorageUnavailable, match="access denied"):
        list(store.digests())


def test_a_missing_bucket_is_named_when_writing(s3_url: str) -> None:
    store = open_artifact_store("s3://no-such-bucket-here/mloop")
    with pytest.raises(StorageUnavailable, match=r"bucket does not exist.*bucket 'no-such-bucket-here'"):
        store.put_bytes(b"weights")


def test_an_unreachable_endpoint_names_it(s3_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # fail fast instead of botocore's retries with backoff
    store = open_artifact_store(s3_url)
    with pytest.raises(StorageUnavailable, match=rf"endpoint {dead}, bucket"):
        store.backend.put("k", io.BytesIO(b"x"))


def test_a_blob_of_an_unreachable_store_is_not_reported_missing(
    s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsspec's isfile() answers False on any error: S3 restarting must not read as "no such model"."""
    digest = open_artifact_store(s3_url).put_bytes(b"weights")
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    store = open_artifact_store(s3_url)
    with pytest.raises(StorageUnavailable, match=rf"cannot be used.*endpoint {dead}"):
        store.exists(digest)
    with pytest.raises(StorageUnavailable, match=rf"endpoint {dead}"):
        store.get_bytes(digest)


def test_the_artifact_store_retries_in_botocores_standard_mode_unless_the_environment_chooses(
    s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # legacy mode (botocore's default) slept up to 15 s before a command learnt that S3 was down
    monkeypatch.delenv("AWS_RETRY_MODE", raising=False)
    assert open_artifact_store(s3_url).backend.fs.config_kwargs == {"retries": {"mode": "standard"}}
    monkeypatch.setenv("AWS_RETRY_MODE", "adaptive")
    assert open_artifact_store(s3_url).backend.fs.config_kwargs == {}
