"""Choosing the metadata backend from ``metadata_url``."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from mloop.errors import ConfigError
from mloop.store import open_metadata_store
from mloop.store.postgres import PostgresMetadataStore
from tests.services import PostgresServer


def test_an_unknown_backend_names_the_choices_without_the_password() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown backend 'mysql'\. Use sqlite:///.* or postgresql\+psycopg://"
    ) as error:
        open_metadata_store("mysql://mloop:hunter2@db/mloop")
    assert "hunter2" not in str(error.value)


def test_a_sqlite_store_makes_its_folder(tmp_path: Path) -> None:
    store = open_metadata_store(f"sqlite:///{tmp_path / 'a' / 'b' / 'mloop.db'}")
    try:
        assert store.backend == "sqlite"
        assert (tmp_path / "a" / "b" / "mloop.db").is_file()
    finally:
        store.close()


def test_the_store_url_hides_the_password() -> None:
    store = PostgresMetadataStore.from_url("postgresql://mloop:hunter2@db.internal:5432/mloop")
    try:
        assert store.url == "postgresql+psycopg://mloop:***@db.internal:5432/mloop"
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_every_postgres_spelling_opens_with_psycopg(postgres_server: PostgresServer, scheme: str) -> None:
    with postgres_server.database() as url:
        store = open_metadata_store(url.replace("postgresql+psycopg", scheme, 1))
        try:
            assert store.backend == "postgresql"
            assert store.engine.dialect.driver == "psycopg"
            assert store.current_revision() == store.head_revision()
        finally:
            store.close()


def _open_together(url: str, processes: int = 3) -> list[str | None]:
    """Open a store on ``url`` (an empty database) from ``processes`` processes at the same instant, as
    replicas starting together do; answers each one's revision after opening, or raises its error."""
    script = (
        "import sys, time\n"
        "from mloop.store import open_metadata_store\n"
        "start = float(sys.argv[2])\n"
        "time.sleep(max(0.0, start - time.time()))\n"
        "store = open_metadata_store(sys.argv[1])\n"
        "print(store.current_revision())\n"
        "store.close()\n"
    )
    start = time.time() + 2.0  # past every interpreter's import time
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, url, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    out = []
    for child in children:
        stdout, stderr = child.communicate(timeout=120)
        assert child.returncode == 0, stderr[-2000:]
        out.append(stdout.strip() or None)
    return out


def _all_at_head(url: str) -> None:
    revisions = _open_together(url)
    store = open_metadata_store(url)
    try:
        assert revisions == [store.head_revision()] * len(revisions)
    finally:
        store.close()


@pytest.mark.slow
def test_replicas_starting_together_migrate_once_on_sqlite(tmp_path: Path) -> None:
    _all_at_head(f"sqlite:///{tmp_path / 'mloop.db'}")


@pytest.mark.slow
@pytest.mark.postgres
def test_replicas_starting_together_migrate_once_on_postgres(postgres_server: PostgresServer) -> None:
    with postgres_server.database() as url:
        _all_at_head(url)
