"""Choosing the metadata backend from ``metadata_url``."""

from __future__ import annotations

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
