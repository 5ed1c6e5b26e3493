"""Data files on a real S3-compatible server (SeaweedFS): what a user sees when S3 cannot be used."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mloop import Project
from mloop.errors import ConfigError, StorageUnavailable
from mloop.storage import open_data_storage
from tests.seaweedfs import SeaweedFSServer
from tests.services import free_port

pytestmark = pytest.mark.s3


def frame(*ids: int) -> pd.DataFrame:
    return pd.DataFrame({"id": list(ids), "ts": pd.Timestamp("2024-01-01", tz="UTC"), "v": 1})


def reopen(project: Project, url: str) -> Project:
    return Project.open(project.root, env={}, data_url=url)


@pytest.mark.parametrize("fault", ["wrong secret", "server down", "no bucket"])
def test_s3_that_cannot_be_used_is_a_clear_error_naming_endpoint_and_bucket_and_nothing_is_written(
    s3_project: Project, s3_url: str, s3_server: SeaweedFSServer, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    s3_project.data.ingest(frame(1, 2), "events")
    url, endpoint, bucket = s3_url, s3_server.endpoint, s3_url.split("/")[2]
    if fault == "wrong secret":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    elif fault == "server down":
        endpoint = f"http://127.0.0.1:{free_port()}"
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    else:
        bucket = "no-such-bucket"
        url = f"s3://{bucket}/mloop"
    broken = reopen(s3_project, url)
    try:
        attempts = [lambda: broken.data.ingest(frame(3), "events"), lambda: broken.data.read("events")]
        for attempt in attempts[: 1 if fault == "no bucket" else 2]:  # a missing bucket holds no file to read
            with pytest.raises(StorageUnavailable) as info:
                attempt()
            message = str(info.value)
            assert f"endpoint {endpoint}" in message and f"bucket '{bucket}'" in message
            assert "AWS_ACCESS_KEY_ID" in message
    finally:
        broken.close()
    assert s3_project.data.info("events").ingestions == 1  # the failed ingestion recorded nothing
    assert sorted(s3_project.data.read("events")["id"]) == [1, 2]


def test_a_local_folder_and_s3_urls_open_the_backend_they_name(s3_url: str, tmp_path: Path) -> None:
    assert not open_data_storage(str(tmp_path)).remote
    assert not open_data_storage(f"file://{tmp_path}").remote
    s3 = open_data_storage(s3_url)
    assert s3.remote and s3.root == s3_url
    with pytest.raises(ConfigError, match="data_url scheme 'gs' is not supported; choose one of file, s3"):
        open_data_storage("gs://bucket/x")
