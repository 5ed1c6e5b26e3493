"""The ingestion engine: validate every row of a source against a schema and write the result.

One DuckDB pass converts and checks every row (vectorised, multi-threaded, spilling to disk when the
input is larger than memory). Accepted rows are written as Parquet partitioned by the UTC date of the
timestamp column; failed rows go to one quarantine file with their reasons. Everything is written into a
staging folder: the caller moves it into place and commits, so a failure leaves nothing behind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from mloop.data import checks
from mloop.data.schema import Dataset
from mloop.data.sources import Opened, Source
from mloop.data.sql import literal, quote
from mloop.errors import MalformedInput

Progress = Callable[[str, float], None]


@dataclass
class Outcome:
    rows_read: int
    rows_accepted: int
    rows_quarantined: int
    by_reason: dict[str, int]
    files: list[dict[str, object]] = field(
        default_factory=list
    )  # path relative to the staging folder, rows, bytes
    quarantine: str | None = None  # relative to the staging folder
    min_ts: datetime | None = None
    max_ts: datetime | None = None
    notes: list[str] = field(default_factory=list)


@contextmanager
def connect(workdir: Path, memory_limit: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET temp_directory = {literal(str(workdir / 'spill'))}")
        if memory_limit:
            con.execute(f"SET memory_limit = {literal(memory_limit)}")
        yield con
    finally:
        con.close()


def check_columns(dataset: Dataset, opened: Opened, source: Source) -> list[str]:
    """Missing declared columns are an error; extra ones too, unless the dataset ignores them."""
    found = opened.columns
    missing = [c for c in dataset.column_names if c not in found]
    if missing:
        raise MalformedInput(
            f"{source.describe()} is missing column(s) {missing} that dataset {dataset.name!r} declares "
            f"(found: {found}). Fix the file, or change the schema: mloop data schema {dataset.name} --set FILE."
        )
    extra = [c for c in found if c not in dataset.column_names]
    if extra and dataset.extra_columns == "error":
        raise MalformedInput(
            f"{source.describe()} has column(s) {extra} that dataset {dataset.name!r} does not declare. Add them "
            "to the schema, or set extra_columns: ignore in it to leave them out."
        )
    return [f"ignored column(s) {extra} that the schema does not declare"] if extra else []


def run(
    dataset: Dataset,
    source: Source,
    *,
    workdir: Path,
    ingest_id: str,
    existing: list[Path],
    write: bool,
    progress: Progress | None = None,
    memory_limit: str | None = None,
) -> Outcome:
    """Validate ``source`` against ``dataset``; with ``write``, stage the output under ``workdir/out``."""
    with connect(workdir, memory_limit) as con:
        _step(progress, "read", 0.0)
        opened = source.open(con, workdir)
        notes = check_columns(dataset, opened, source)
        key = opened.row_key
        keys = ", ".join(quote(k) for k in key)
        con.execute(f"CREATE VIEW typed AS {checks.typed_view(dataset, opened.view, opened.types, key)}")
        _step(progress, "read", 1.0)
        try:
            with _polling(con, progress, "validate"):
                con.execute(
                    f"CREATE TABLE bad AS {checks.failures_query(dataset, 'typed', opened.types, key)}"
                )
                _duplicates(con, dataset, existing, keys)
            rows_src = _scalar(con, f"SELECT count(*) FROM {quote(opened.view)}")
            rows_rejected = _scalar(con, f"SELECT count(*) FROM {opened.rejects}") if opened.rejects else 0
            by_reason = dict(
                con.execute("SELECT _reason, count(*) FROM bad GROUP BY 1 ORDER BY 2 DESC").fetchall()
            )
            if opened.rejects:
                for reason, count in con.execute(
                    f"SELECT _reason, count(*) FROM {opened.rejects} GROUP BY 1"
                ).fetchall():
                    by_reason[reason] = by_reason.get(reason, 0) + count
            rows_bad = _scalar(con, "SELECT count(*) FROM bad")
            outcome = Outcome(
                rows_read=rows_src + rows_rejected,
                rows_accepted=rows_src - rows_bad,
                rows_quarantined=rows_bad + rows_rejected,
                by_reason=by_reason,
                notes=notes,
            )
            if write:
                with _polling(con, progress, "write"):
                    _write_accepted(con, dataset, workdir / "out", ingest_id, keys, outcome)
                    _write_quarantine(con, opened, workdir / "out", ingest_id, keys, outcome)
        except duckdb.Error as exc:
            # A file that opened but fails mid-way (a corrupt page, say): nothing has been committed.
            raise MalformedInput(
                f"{source.describe()} could not be read to the end: {_first_line(exc)}."
            ) from None
    if outcome.rows_accepted + outcome.rows_quarantined != outcome.rows_read:  # pragma: no cover - a bug
        raise AssertionError(f"ingestion lost rows: {outcome}")
    _step(progress, "write", 1.0)
    return outcome


def _duplicates(con: duckdb.DuckDBPyConnection, dataset: Dataset, existing: list[Path], keys: str) -> None:
    """Key uniqueness, among rows that passed every other rule: first against what was ingested before,
    then within the source (the first occurrence is kept)."""
    if not dataset.key:
        return
    pairs = checks.key_columns(dataset)
    label = ", ".join(dataset.key)
    if existing:
        files = "[" + ", ".join(literal(str(p)) for p in existing) + "]"
        cols = ", ".join(name for _, name in pairs)
        match = " AND ".join(f"t.{typed} = e.{name}" for typed, name in pairs)
        con.execute(
            f"INSERT INTO bad SELECT {keys}, {literal(f'key ({label}): already ingested')}, "
            f"{literal(f'key ({label}): already ingested')} FROM typed t ANTI JOIN bad USING ({keys}) "
            f"SEMI JOIN (SELECT {cols} FROM read_parquet({files})) e ON {match}"
        )
    partition = ", ".join(typed for typed, _ in pairs)
    reason = literal(f"key ({label}): duplicate within the source")
    con.execute(
        f"INSERT INTO bad SELECT {keys}, {reason}, {reason} FROM ("
        f"SELECT {keys}, row_number() OVER (PARTITION BY {partition} ORDER BY {keys}) AS n "
        f"FROM typed ANTI JOIN bad USING ({keys})) WHERE n > 1"
    )


def _write_accepted(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, out: Path, ingest_id: str, keys: str, outcome: Outcome
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    columns = [f"{checks.typed_name(i)} AS {quote(c.name)}" for i, c in enumerate(dataset.columns)]
    if outcome.rows_accepted == 0:
        return
    if dataset.timestamp:
        ts = checks.typed_name(dataset.column_names.index(dataset.timestamp))
        select = f"SELECT {', '.join(columns)}, CAST({ts} AS DATE) AS _date FROM typed ANTI JOIN bad USING ({keys})"
        target = out / "data"
        options = f"PARTITION_BY (_date), FILENAME_PATTERN {literal(f'part-{ingest_id}-{{i}}')}, "
    else:
        select = f"SELECT {', '.join(columns)} FROM typed ANTI JOIN bad USING ({keys})"
        target = out / "data" / f"part-{ingest_id}-0.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        options = ""
    rows = con.execute(
        f"COPY ({select}) TO {literal(str(target))} (FORMAT PARQUET, {options}ROW_GROUP_SIZE 1000000, RETURN_STATS)"
    ).fetchall()
    written = 0
    for filename, count, size, _footer, stats, *_ in rows:
        written += int(count)
        outcome.files.append(
            {"path": Path(filename).relative_to(out).as_posix(), "rows": int(count), "bytes": int(size)}
        )
        if dataset.timestamp:
            _widen(outcome, stats.get(quote(dataset.timestamp), {}))
    if written != outcome.rows_accepted:  # pragma: no cover - a bug
        raise AssertionError(f"wrote {written} rows, expected {outcome.rows_accepted}")


def _write_quarantine(
    con: duckdb.DuckDBPyConnection, opened: Opened, out: Path, ingest_id: str, keys: str, outcome: Outcome
) -> None:
    if outcome.rows_quarantined == 0:
        return
    target = out / "quarantine" / f"{ingest_id}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    select = f"SELECT s.*, b._reason, b._reasons FROM {quote(opened.view)} s JOIN bad b USING ({keys})"
    if opened.rejects:
        select += f" UNION ALL BY NAME SELECT _line, _raw, _reason, _reason AS _reasons FROM {opened.rejects}"
    order = "_line NULLS FIRST, _row" if opened.rejects else keys
    con.execute(f"COPY ({select} ORDER BY {order}) TO {literal(str(target))} (FORMAT PARQUET)")
    outcome.quarantine = target.relative_to(out).as_posix()


def _widen(outcome: Outcome, stats: dict[str, str]) -> None:
    for key, attr, pick in (("min", "min_ts", min), ("max", "max_ts", max)):
        if key in stats:
            value = _parse_stat(stats[key])
            current = getattr(outcome, attr)
            setattr(outcome, attr, value if current is None else pick(current, value))


def _parse_stat(text: str) -> datetime:
    value = datetime.fromisoformat(text if len(text) > 10 else f"{text}T00:00:00+00:00")
    from mloop._time import as_utc

    return as_utc(value)


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _step(progress: Progress | None, phase: str, fraction: float) -> None:
    if progress:
        progress(phase, fraction)


@contextmanager
def _polling(con: duckdb.DuckDBPyConnection, progress: Progress | None, phase: str) -> Iterator[None]:
    """Report DuckDB's own progress of the running query to ``progress``, from a side thread."""
    if progress is None:
        yield
        return
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.2):
            try:
                value = con.query_progress()
            except duckdb.Error:
                continue
            if value >= 0:
                progress(phase, min(value, 100.0) / 100.0)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        progress(phase, 1.0)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
