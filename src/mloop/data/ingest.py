"""The ingestion engine: validate every row of a source against a schema and write the result.

One DuckDB pass converts and checks every row (vectorised, multi-threaded, spilling to disk when the
input is larger than memory). Accepted rows are written as Parquet partitioned by the UTC date of the
timestamp column; failed rows go to one quarantine file with their reasons.

Tensor columns are checked before that pass with NumPy (:mod:`mloop.data.tensors`, in memory: a source
with tensor columns must fit in it) and their per-row reasons join it; their values skip DuckDB and are
written by Arrow, as fixed-shape tensors or lists, beside the other columns. Everything is written into a
staging folder: the caller moves it into place and commits, so a failure leaves nothing behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mloop._time import as_utc
from mloop.crypto import PLAIN, ParquetFiles
from mloop.data import checks, keyrange, sensors, tensors
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
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase


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


class Ingestion:
    """The DuckDB work of one ingestion: ``validate()`` every row, then ``write()`` the staged output.

    >>> with Ingestion(dataset, source, workdir=tmp, ingest_id="i1", existing=[]) as job:  # doctest: +SKIP
    ...     outcome = job.validate()
    ...     job.write(outcome)
    """

    def __init__(
        self,
        dataset: Dataset,
        source: Source,
        *,
        workdir: Path,
        ingest_id: str,
        existing: list[str],
        progress: Progress | None = None,
        memory_limit: str | None = None,
        parquet: ParquetFiles = PLAIN,
        key_ranges: Mapping[str, keyrange.KeyRanges] | None = None,
        history: sensors.History | None = None,
    ) -> None:
        self.dataset, self.source, self.workdir = dataset, source, workdir
        self.history = history or sensors.History()  # what the sensor checks' windows read before the batch
        self.parquet = parquet
        self.key_ranges = key_ranges or {}  # per stored file; a file without ranges is always read
        self.ingest_id, self.existing, self.progress = ingest_id, existing, progress
        self.memory_limit = memory_limit
        self.timings: dict[str, float] = {}
        self.tensor_values: dict[str, pa.Array] = {}  # each tensor column's stored values, by __pos

    def __enter__(self) -> Ingestion:
        self._connection = connect(self.workdir, self.memory_limit)
        self.con = self._connection.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._connection.__exit__(None, None, None)

    def validate(self) -> Outcome:
        """Convert and check every row; failures (with their raw values) go to the ``bad`` table."""
        con, dataset = self.con, self.dataset
        clock = time.perf_counter()
        _step(self.progress, "read", 0.0)
        self.opened = opened = self.source.open(con, self.workdir)
        notes = check_columns(dataset, opened, self.source)
        self.keys = ", ".join(quote(k) for k in opened.row_key)
        if dataset.tensors:
            with self._reading():
                self._check_tensors()
        typed = checks.typed_view(dataset, opened.view, opened.types, opened.row_key)
        con.execute(f"CREATE VIEW typed AS {typed}")
        _step(self.progress, "read", 1.0)
        clock = _lap(self.timings, "open", clock)
        with self._reading(), _polling(con, self.progress, "validate"):
            failures = checks.failures_query(dataset, "typed", opened.types, opened.row_key, opened.columns)
            con.execute(f"CREATE TABLE bad AS {failures}")
            clock = _lap(self.timings, "rules", clock)
            self._duplicates()
            clock = _lap(self.timings, "keys", clock)
            if dataset.sensors:
                sensors.quarantine_faults(con, dataset, typed="typed", row_key=opened.row_key,
                                          carry=opened.columns, history=self.history, parquet=self.parquet)  # fmt: skip
                clock = _lap(self.timings, "sensors", clock)
            rows_src = _scalar(con, f"SELECT count(*) FROM {quote(opened.view)}")
        rejects = opened.rejects
        rows_rejected = _scalar(con, f"SELECT count(*) FROM {rejects}") if rejects else 0
        rows_bad = _scalar(con, "SELECT count(*) FROM bad")
        by_reason: dict[str, int] = {}
        for table in ["bad", *([rejects] if rejects else [])]:
            for reason, count in con.execute(f"SELECT _reason, count(*) FROM {table} GROUP BY 1").fetchall():
                by_reason[reason] = by_reason.get(reason, 0) + count
        outcome = Outcome(
            rows_read=rows_src + rows_rejected,
            rows_accepted=rows_src - rows_bad,
            rows_quarantined=rows_bad + rows_rejected,
            by_reason=dict(sorted(by_reason.items(), key=lambda kv: -kv[1])),
            notes=notes,
            timings=self.timings,
        )
        _lap(self.timings, "count", clock)
        if outcome.rows_accepted + outcome.rows_quarantined != outcome.rows_read:  # pragma: no cover - a bug
            raise AssertionError(f"ingestion lost rows: {outcome}")
        return outcome

    def write(self, outcome: Outcome) -> None:
        """Stage the accepted rows (partitioned) and the quarantine file under ``workdir/out``."""
        clock = time.perf_counter()
        out = self.workdir / "out"
        with self._reading(), _polling(self.con, self.progress, "write"):
            self._write_accepted(out, outcome)
            clock = _lap(self.timings, "write", clock)
            self._write_quarantine(out, outcome)
            _lap(self.timings, "quarantine", clock)
        _step(self.progress, "write", 1.0)

    @contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except duckdb.Error as exc:
            # A file that opened but fails mid-way (a corrupt page, say): nothing has been committed.
            raise MalformedInput(
                f"{self.source.describe()} could not be read to the end: {_first_line(exc)}."
            ) from None

    def _check_tensors(self) -> None:
        """Check every tensor column with NumPy; register the reasons (row key, ``__pos``, ``__r<i>``)."""
        dataset, opened = self.dataset, self.opened
        names = [c.name for c in dataset.tensors]
        table = opened.read_columns(self.con, names)
        checked: dict[str, pa.Array] = {}
        for i, column in enumerate(dataset.columns):
            if column.is_tensor:
                result = tensors.check(column, table[column.name], required=dataset.required(column))
                self.tensor_values[column.name] = result.values
                checked[f"__r{i}"] = pa.array(result.reasons, pa.string())
        keys = {k: table[k] for k in opened.row_key}
        position = pa.array(np.arange(table.num_rows, dtype=np.int64))
        self.con.register(checks.TENSOR_TABLE, pa.table({**keys, "__pos": position, **checked}))

    def _duplicates(self) -> None:
        """Key uniqueness, among rows that passed every other rule: first against what was ingested
        before, then within the source (the first occurrence is kept). Only key columns are scanned, of
        only the stored files whose key ranges hold a new key (:mod:`mloop.data.keyrange`); the raw
        values of duplicates are fetched afterwards, and only if there are any."""
        dataset, con, keys = self.dataset, self.con, self.keys
        if not dataset.key:
            return
        pairs = checks.key_columns(dataset)
        label = ", ".join(dataset.key)
        con.execute(f"CREATE TABLE dup AS SELECT {keys}, NULL::VARCHAR AS _reason FROM bad WHERE false")
        if self.existing:
            typed_keys = ", ".join(typed for typed, _ in pairs)
            con.execute(
                f"CREATE TEMP TABLE fresh AS SELECT {keys}, {typed_keys} FROM typed ANTI JOIN bad USING ({keys})"
            )
            stored = keyrange.candidates(con, "fresh", dataset, self.existing, self.key_ranges)
            if stored:
                files = self.parquet.scan(con, stored)
                cols = ", ".join(name for _, name in pairs)
                match = " AND ".join(f"t.{typed} = e.{name}" for typed, name in pairs)
                con.execute(
                    f"INSERT INTO dup SELECT {keys}, {literal(f'key ({label}): already ingested')} "
                    f"FROM fresh t SEMI JOIN (SELECT {cols} FROM {files}) e ON {match}"
                )
            con.execute("DROP TABLE fresh")
        partition = ", ".join(typed for typed, _ in pairs)
        con.execute(
            f"INSERT INTO dup SELECT {keys}, {literal(f'key ({label}): duplicate within the source')} FROM ("
            f"SELECT {keys}, row_number() OVER (PARTITION BY {partition} ORDER BY {keys}) AS n "
            f"FROM typed ANTI JOIN bad USING ({keys}) ANTI JOIN dup USING ({keys})) WHERE n > 1"
        )
        if _scalar(con, "SELECT count(*) FROM dup"):
            carry = ", ".join(f"t.{quote(c)}" for c in self.opened.columns)
            con.execute(
                f"INSERT INTO bad BY NAME SELECT {keys}, {carry}, d._reason, d._reason AS _reasons "
                f"FROM typed t JOIN dup d USING ({keys})"
            )

    def _write_accepted(self, out: Path, outcome: Outcome) -> None:
        dataset, keys = self.dataset, self.keys
        out.mkdir(parents=True, exist_ok=True)
        if outcome.rows_accepted == 0:
            return
        if dataset.tensors:
            self._write_with_tensors(out, outcome)
            return
        columns = ", ".join(
            f"{checks.typed_name(i)} AS {quote(c.name)}" for i, c in enumerate(dataset.columns)
        )
        if dataset.timestamp:
            ts = checks.typed_name(dataset.column_names.index(dataset.timestamp))
            day = _utc_date(ts, dataset.column(dataset.timestamp).dtype)
            select = f"SELECT {columns}, {day} AS _date FROM typed ANTI JOIN bad USING ({keys})"
            target = out / "data"
            options = f"PARTITION_BY (_date), FILENAME_PATTERN {literal(f'part-{self.ingest_id}-{{i}}')}, "
        else:
            select = f"SELECT {columns} FROM typed ANTI JOIN bad USING ({keys})"
            target = out / "data" / f"part-{self.ingest_id}-0.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            options = ""
        rows = self.con.execute(
            f"COPY ({select}) TO {literal(str(target))} "
            f"(FORMAT PARQUET, {options}ROW_GROUP_SIZE 1000000, RETURN_STATS)"
        ).fetchall()
        written = 0
        for filename, count, _size, _footer, stats, *_ in rows:
            size = self.parquet.seal(filename)  # DuckDB writes plaintext: encrypted here when enabled
            written += int(count)
            path = Path(filename).relative_to(out).as_posix()
            entry: dict[str, object] = {"path": path, "rows": int(count), "bytes": int(size)}
            ranges = keyrange.from_stats(dataset, stats)
            outcome.files.append({**entry, "keys": ranges} if ranges else entry)
            if dataset.timestamp:
                _widen(outcome, stats.get(quote(dataset.timestamp), {}))
        if written != outcome.rows_accepted:  # pragma: no cover - a bug
            raise AssertionError(f"wrote {written} rows, expected {outcome.rows_accepted}")

    def _write_with_tensors(self, out: Path, outcome: Outcome) -> None:
        """Accepted rows through Arrow: DuckDB selects the scalar columns and each row's ``__pos``; the
        tensors are taken from the checked values by position, so they never pass through SQL."""
        dataset, keys = self.dataset, self.keys
        scalars = ", ".join(
            f"{checks.typed_name(i)} AS {quote(c.name)}"
            for i, c in enumerate(dataset.columns)
            if not c.is_tensor
        )
        day = ""
        if dataset.timestamp:
            ts = checks.typed_name(dataset.column_names.index(dataset.timestamp))
            day = f", {_utc_date(ts, dataset.column(dataset.timestamp).dtype)} AS _date"
        order = "_date, __pos" if dataset.timestamp else "__pos"
        rows = self.con.sql(
            f"SELECT {scalars + ', ' if scalars else ''}__pos{day} FROM typed ANTI JOIN bad USING ({keys}) "
            f"ORDER BY {order}"
        ).to_arrow_table()
        positions = rows["__pos"].combine_chunks()
        columns = {
            c.name: self.tensor_values[c.name].take(positions) if c.is_tensor else rows[c.name]
            for c in dataset.columns
        }
        table = pa.table(columns)
        width = sum(int(np.prod(c.shape or (1,))) for c in dataset.tensors) * 8 + 8 * len(dataset.columns)
        group = max(1024, min(1_000_000, (128 << 20) // max(width, 1)))  # ~128 MB row groups
        pieces: list[tuple[Path, pa.Table]] = []
        if dataset.timestamp:
            days = rows["_date"].combine_chunks()
            starts = [
                0,
                *np.flatnonzero(pc.not_equal(days[1:], days[:-1]).to_numpy(zero_copy_only=False)) + 1,
            ]
            for start, end in zip(starts, [*starts[1:], len(days)], strict=True):
                folder = out / "data" / f"_date={days[start].as_py().isoformat()}"
                pieces.append((folder / f"part-{self.ingest_id}-0.parquet", table.slice(start, end - start)))
        else:
            pieces.append((out / "data" / f"part-{self.ingest_id}-0.parquet", table))
        for path, piece in pieces:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.parquet.write_table(piece, path, row_group_size=group)
            relative = path.relative_to(out).as_posix()
            entry = {"path": relative, "rows": piece.num_rows, "bytes": path.stat().st_size}
            ranges = keyrange.from_table(dataset, piece)
            outcome.files.append({**entry, "keys": ranges} if ranges else entry)
        if dataset.timestamp and table.num_rows:
            low, high = pc.min_max(table[dataset.timestamp]).values()
            for value in (low.as_py(), high.as_py()):
                stamp = value if isinstance(value, datetime) else datetime.combine(value, datetime.min.time())
                _widen_to(outcome, as_utc(stamp))

    def _write_quarantine(self, out: Path, outcome: Outcome) -> None:
        if outcome.rows_quarantined == 0:
            return
        target = out / "quarantine" / f"{self.ingest_id}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        select, rejects = "SELECT * FROM bad", self.opened.rejects
        if rejects:
            select += f" UNION ALL BY NAME SELECT _line, _raw, _reason, _reason AS _reasons FROM {rejects}"
        order = "_line NULLS FIRST, _row" if rejects else self.keys
        self.con.execute(f"COPY ({select} ORDER BY {order}) TO {literal(str(target))} (FORMAT PARQUET)")
        self.parquet.seal(target)
        outcome.quarantine = target.relative_to(out).as_posix()


def run(
    dataset: Dataset,
    source: Source,
    *,
    workdir: Path,
    ingest_id: str,
    existing: list[str],
    write: bool,
    progress: Progress | None = None,
    memory_limit: str | None = None,
    parquet: ParquetFiles = PLAIN,
    key_ranges: Mapping[str, keyrange.KeyRanges] | None = None,
    history: sensors.History | None = None,
) -> Outcome:
    """Validate ``source`` against ``dataset``; with ``write``, stage the output under ``workdir/out``."""
    with Ingestion(
        dataset, source, workdir=workdir, ingest_id=ingest_id, existing=existing, progress=progress,
        memory_limit=memory_limit, parquet=parquet, key_ranges=key_ranges, history=history,
    ) as job:  # fmt: skip
        outcome = job.validate()
        if write:
            job.write(outcome)
    return outcome


def _utc_date(column: str, dtype: str) -> str:
    """SQL for the UTC date of a timestamp, by integer arithmetic on its epoch: exact, and several times
    cheaper than a time-zone-aware CAST(... AS DATE), which goes through ICU for every row."""
    if dtype == "date":
        return column
    micros, day = f"epoch_us({column})", 86_400_000_000
    days = (
        f"(({micros} - ((({micros} % {day}) + {day}) % {day})) // {day})"  # floor, for dates before 1970 too
    )
    return f"(DATE '1970-01-01' + CAST({days} AS INTEGER))"


def _widen(outcome: Outcome, stats: dict[str, str]) -> None:
    for key, attr, pick in (("min", "min_ts", min), ("max", "max_ts", max)):
        if key in stats:
            value = _parse_stat(stats[key])
            current = getattr(outcome, attr)
            setattr(outcome, attr, value if current is None else pick(current, value))


def _widen_to(outcome: Outcome, value: datetime) -> None:
    outcome.min_ts = value if outcome.min_ts is None else min(outcome.min_ts, value)
    outcome.max_ts = value if outcome.max_ts is None else max(outcome.max_ts, value)


def _parse_stat(text: str) -> datetime:
    value = datetime.fromisoformat(text if len(text) > 10 else f"{text}T00:00:00+00:00")
    return as_utc(value)


def _lap(timings: dict[str, float], phase: str, since: float) -> float:
    now = time.perf_counter()
    timings[phase] = round(now - since, 4)
    return now


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
