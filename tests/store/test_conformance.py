"""The metadata store's contract, run on every backend (SQLite and a real PostgreSQL server).

Everything above the store (services, audit chain, CLI) relies on these properties; a backend that
passes this suite can replace another.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import multiprocessing
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.security import audit_chain
from mloop.store import MetadataStore, open_metadata_store
from mloop.store.base import HEAD
from mloop.store.schema import AuditHeadRow, Base, DatasetRow, EventRow, ExperimentRow, ProjectRow, UserRow
from mloop.store.types import JSONText, UTCDateTime

NOW = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)
# Examples reuse the test's store, so each one inserts rows under names of its own.
FIXTURE_EXAMPLES = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
COUNTER = itertools.count()


def table_names(store: MetadataStore) -> set[str]:
    return set(sa.inspect(store.engine).get_table_names()) - {"alembic_version"}


def append_events(store: MetadataStore, count: int, actor: str) -> None:
    for i in range(count):
        with store.write() as session:
            audit_chain.append(
                session, project="p", actor=actor, action="test.append", resource=f"r:{i}", payload={"i": i}
            )


def open_and_append(url: str, together: Any, count: int, actor: str) -> None:
    together.wait(60)
    store = open_metadata_store(url)
    try:
        append_events(store, count, actor)
    finally:
        store.close()


def assert_one_unbroken_chain(store: MetadataStore, expected: int) -> None:
    report = audit_chain.verify(store)
    assert report.problems == []
    assert report.checked == expected
    assert report.head_seq == expected
    with store.read() as session:
        assert list(session.scalars(sa.select(EventRow.seq).order_by(EventRow.seq))) == list(
            range(1, expected + 1)
        )


# ---- migrations ----------------------------------------------------------------------------------------


def test_migrations_reach_head(store: MetadataStore) -> None:
    assert store.head_revision() is not None
    assert (
        store.current_revision() == store.head_revision() == HEAD
    )  # HEAD: migrate()'s check, read from file names
    assert store._stored_revision() == HEAD
    assert table_names(store) == set(Base.metadata.tables)


def test_migrated_schema_matches_the_orm_metadata(store: MetadataStore) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_migrate_is_idempotent_and_keeps_data(store: MetadataStore, metadata_url: str) -> None:
    project_id = store.project_id("kept")
    store.migrate()
    store.migrate()
    reopened = open_metadata_store(metadata_url)
    try:
        assert reopened.current_revision() == reopened.head_revision()
        assert reopened.project_id("kept") == project_id
        with reopened.read() as session:
            # The migration seeds the audit head once; running it again must not add or reset it.
            heads = session.scalars(sa.select(AuditHeadRow)).all()
        assert [(h.id, h.seq) for h in heads] == [(1, 0)]
    finally:
        reopened.close()


def test_downgrade_to_base_and_upgrade_again(store: MetadataStore) -> None:
    command.downgrade(store.alembic_config(), "base")
    assert store.current_revision() is None
    assert table_names(store) == set()
    store.migrate()
    assert table_names(store) == set(Base.metadata.tables)
    assert audit_chain.verify(store).ok


# ---- types and round trips -----------------------------------------------------------------------------


def sample_row(table: sa.Table, inserted: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A value for every column of ``table``: full-length unicode strings, big integers, aware datetimes
    in a non-UTC zone, nested JSON; foreign keys point at the rows inserted before."""
    row: dict[str, Any] = {}
    for column in table.columns:
        kind = column.type
        if isinstance(kind, UTCDateTime):
            row[column.name] = NOW.astimezone(timezone(timedelta(hours=5, minutes=30)))
        elif isinstance(kind, JSONText):
            row[column.name] = {
                "list": [1, 2.5, None, True, "ünï ✓"],
                "empty": {},
                "big": 2**53,
                "neg": -0.25,
            }
        elif isinstance(kind, sa.Boolean):
            row[column.name] = True
        elif isinstance(kind, sa.Float):
            row[column.name] = 0.1
        elif isinstance(kind, sa.BigInteger):
            row[column.name] = 2**40 + 3
        elif isinstance(kind, sa.Integer):
            row[column.name] = 7
        elif isinstance(kind, sa.String) and kind.length:
            row[column.name] = ("ü✓-" * kind.length)[: kind.length]
        else:
            row[column.name] = "first line\nsecond ✓ " * 200
    for column in table.columns:
        for key in column.foreign_keys:
            parent = key.column.table.name
            row[column.name] = (row if parent == table.name else inserted[parent])[key.column.name]
    return row


def test_every_column_of_every_table_round_trips(store: MetadataStore) -> None:
    inserted: dict[str, dict[str, Any]] = {}
    with store.write() as session:
        for table in Base.metadata.sorted_tables:
            inserted[table.name] = sample_row(table, inserted)
            session.execute(table.insert().values(inserted[table.name]))
    with store.read() as session:
        for table in Base.metadata.sorted_tables:
            key = [column == inserted[table.name][column.name] for column in table.primary_key.columns]
            back = dict(session.execute(sa.select(table).where(*key)).mappings().one())
            assert back == inserted[table.name], table.name
            for name, value in back.items():
                if isinstance(value, datetime):
                    assert value.utcoffset() == timedelta(0), f"{table.name}.{name} came back as {value!r}"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)
aware_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.builds(timezone, st.integers(-1439, 1439).map(lambda m: timedelta(minutes=m))),
)


@FIXTURE_EXAMPLES
@given(tags=st.dictionaries(st.text(), json_values, max_size=5), created_at=aware_datetimes)
def test_json_and_datetimes_come_back_equal(
    store: MetadataStore, tags: dict[str, Any], created_at: datetime
) -> None:
    project_id = store.project_id("p")
    with store.write() as session:
        row = ExperimentRow(project_id=project_id, name=f"e{next(COUNTER)}", created_at=created_at, tags=tags)
        session.add(row)
    with store.read() as session:
        back = session.get(ExperimentRow, row.id)
    assert back is not None
    assert back.tags == tags
    assert back.created_at == created_at
    assert back.created_at.tzinfo is not None and back.created_at.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(store: MetadataStore) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), store.write() as session:
        session.add(ProjectRow(name="naive", created_at=datetime(2024, 1, 1)))
    with store.read() as session:
        assert session.scalar(sa.select(ProjectRow).where(ProjectRow.name == "naive")) is None


# ---- constraints and transactions -----------------------------------------------------------------------


def user(name: str) -> UserRow:
    return UserRow(name=name, kind="user", grants=[], disabled=False, created_at=NOW, created_by="test")


def test_duplicate_user_names_are_refused(store: MetadataStore) -> None:
    with store.write() as session:
        session.add(user("alice"))
    with pytest.raises(sa.exc.IntegrityError), store.write() as session:
        session.add(user("alice"))
    with store.read() as session:
        assert session.scalars(sa.select(UserRow.name)).all() == ["alice"]


def test_dataset_names_are_unique_per_project(store: MetadataStore) -> None:
    first, second = store.project_id("first"), store.project_id("second")
    with store.write() as session:
        session.add(DatasetRow(project_id=first, name="txns", created_at=NOW, created_by="test"))
        session.add(DatasetRow(project_id=second, name="txns", created_at=NOW, created_by="test"))
    with pytest.raises(sa.exc.IntegrityError), store.write() as session:
        session.add(DatasetRow(project_id=first, name="txns", created_at=NOW, created_by="test"))
    with store.read() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(DatasetRow)) == 2


def test_foreign_keys_are_enforced(store: MetadataStore) -> None:
    with pytest.raises(sa.exc.IntegrityError), store.write() as session:
        session.add(DatasetRow(project_id=12345, name="orphan", created_at=NOW, created_by="test"))


def test_a_write_that_raises_rolls_back_everything(store: MetadataStore) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.write() as session:
        session.add(ProjectRow(name="rolled-back", created_at=NOW))
        session.add(user("rolled-back"))
        session.flush()
        audit_chain.append(session, project="p", actor="test", action="test.append", resource="r", payload={})
        raise Boom
    with store.read() as session:
        assert session.scalars(sa.select(ProjectRow.name)).all() == []
        assert session.scalars(sa.select(UserRow.name)).all() == []
        assert session.scalars(sa.select(EventRow.seq)).all() == []
    assert audit_chain.verify(store).head_seq == 0


def test_a_write_commits_when_the_block_ends(store: MetadataStore, metadata_url: str) -> None:
    with store.write() as session:
        session.add(user("committed"))
    other = open_metadata_store(metadata_url, migrate=False)
    try:
        with other.read() as session:
            assert session.scalars(sa.select(UserRow.name)).all() == ["committed"]
    finally:
        other.close()


# ---- concurrency ----------------------------------------------------------------------------------------


def test_concurrent_appends_from_threads_form_one_chain(store: MetadataStore) -> None:
    threads = [threading.Thread(target=append_events, args=(store, 10, f"thread-{i}")) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert_one_unbroken_chain(store, 40)


@pytest.mark.slow
def test_processes_opening_a_fresh_store_together_migrate_it_once_and_append_one_chain(
    metadata_url: str,
) -> None:
    spawn = multiprocessing.get_context("spawn")
    together = spawn.Barrier(2)
    processes = [
        spawn.Process(target=open_and_append, args=(metadata_url, together, 15, f"process-{i}"))
        for i in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0, 0]  # a failure's traceback is on stderr
    store = open_metadata_store(metadata_url, migrate=False)
    try:
        assert store.current_revision() == store.head_revision()
        assert_one_unbroken_chain(store, 30)
    finally:
        store.close()


# ---- projects -------------------------------------------------------------------------------------------


def test_project_id_is_stable_and_distinct_per_name(store: MetadataStore, metadata_url: str) -> None:
    first = store.project_id("fraud")
    assert store.project_id("fraud") == first
    assert store.project_id("churn") != first
    reopened = open_metadata_store(metadata_url)
    try:
        assert reopened.project_id("fraud") == first
    finally:
        reopened.close()


def test_project_id_creates_the_project_once_under_concurrency(store: MetadataStore) -> None:
    start = threading.Barrier(6)

    def racer() -> int:
        start.wait()
        return store.project_id("raced")

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        ids = [f.result() for f in [pool.submit(racer) for _ in range(6)]]
    assert len(set(ids)) == 1
    with store.read() as session:
        assert session.scalars(sa.select(ProjectRow.id).where(ProjectRow.name == "raced")).all() == ids[:1]
