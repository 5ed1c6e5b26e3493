"""Partitioned, resumable output for batch scoring (``score(..., partition_by="date")``).

The output is a folder of Hive-style partitions, one Parquet file per partition and chunk::

    preds/
      date=2026-12-05/part-3f9c0a12d4e1-000000000000.parquet
      date=2026-12-06/part-3f9c0a12d4e1-000000000000.parquet
      _runs/3f9c0a12d4e1/run.json                  # what the run scores with (the model version, pinned)
      _runs/3f9c0a12d4e1/chunk-000000000000.json   # chunk committed: its rows and files

A run is named by a key: a hash of the input file's bytes and the options that decide the rows (target,
chunk size, partitioning, kept columns). A chunk is committed in three steps: each partition's rows go
to a hidden temporary file, each is renamed to its final name (which depends only on the key, the chunk
and the partition), and only then is the chunk's marker written, atomically. A crash (even ``kill -9``) at
any point leaves either a marker, and so the chunk's whole files, or no marker: the rerun scores that chunk
again and its renames replace any file the crash left, so a row is never written twice. A rerun of the
same input resumes with the version the run started with, so all its rows carry one model version.

Readers (``pd.read_parquet("preds/")``, DuckDB, Spark) skip the ``_runs`` folder and hidden files, as they
skip any name starting with ``_`` or ``.``. :func:`read_scores` reads the folder back with its partition column.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mloop._files import write_text
from mloop.errors import MloopError, NotFound, SchemaError

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # Hive's name for rows whose partition value is null
AS_OF = "features_as_of"  # the time each row's features were looked up as of (point in time)


def run_key(source: Path, **options: Any) -> str:
    """A key naming one scoring run: the input's bytes and the options that decide its output rows."""
    digest = hashlib.sha256()
    with open(source, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    digest.update(json.dumps(options, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:12]


def check_folder(output: Path) -> Path:
    """The output folder of a partitioned run, created if its parent exists."""
    if output.exists() and not output.is_dir():
        raise MloopError(
            f"Output {output} is a file, but partitioned output (partition_by / --partition-by) is a folder; "
            f"name a folder, like {output.parent / 'preds'}."
        )
    if not output.parent.is_dir():
        raise NotFound(
            f"The folder {output.parent}, where output {output.name}/ goes, does not exist; create it."
        )
    output.mkdir(exist_ok=True)
    return output


def pinned_version(output: Path, key: str) -> int | None:
    """The model version an interrupted run of ``key`` started with, if there was one."""
    path = output / "_runs" / key / "run.json"
    return int(json.loads(path.read_text())["version"]) if path.is_file() else None


class PartitionedOutput:
    """The sink of a partitioned run; see the module docstring for the layout and the commit protocol."""

    def __init__(self, output: Path, key: str, *, partition_by: str, timestamp: str, model: str,
                 version: int, manifest: dict[str, Any]) -> None:  # fmt: skip
        self.output, self.key, self.partition_by, self.timestamp = output, key, partition_by, timestamp
        self.model, self.version = model, version
        self.runs = output / "_runs" / key
        self.runs.mkdir(parents=True, exist_ok=True)
        self._discard_temporaries()
        run = self.runs / "run.json"
        if not run.is_file():
            body = {"key": key, "model": model, "version": version, "partition_by": partition_by, **manifest}
            write_text(run, json.dumps(body, indent=2, default=str), what="run manifest", option="output")
        self.committed = {int(p.stem.removeprefix("chunk-")) for p in self.runs.glob("chunk-*.json")}
        self.rows_done = sum(json.loads(p.read_text())["rows"] for p in self.runs.glob("chunk-*.json"))

    def skip(self, start: int) -> bool:
        """Whether the chunk starting at row ``start`` was committed by an earlier, interrupted run."""
        return start in self.committed

    def write(self, table: pa.Table, start: int) -> None:
        """Commit one chunk's output rows: every partition file, then the chunk's marker."""
        table = self._stamp(table.replace_schema_metadata(None))
        written = []
        for value, indices in _groups(self._partition_column(table)):
            rows = table.take(indices)
            if self.partition_by in rows.column_names:  # Hive: the value lives in the folder's name
                rows = rows.drop_columns([self.partition_by])
            folder = self.output / f"{self.partition_by}={_segment(value)}"
            folder.mkdir(exist_ok=True)
            name = f"part-{self.key}-{start:012d}.parquet"
            temp = folder / f".{name}.tmp"
            pq.write_table(rows, temp)
            _fsync(temp)
            os.replace(temp, folder / name)  # a file a crash left behind is replaced, never added to
            written.append(str((folder / name).relative_to(self.output)))
        marker = {"start": start, "rows": table.num_rows, "files": written}
        write_text(
            self.runs / f"chunk-{start:012d}.json", json.dumps(marker), what="chunk marker", option="output"
        )
        self.committed.add(start)
        self.rows_done += table.num_rows

    def __enter__(self) -> PartitionedOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        """Nothing to undo: each committed chunk stands, and the rest is scored by the next run."""

    def finish(self, rows: int, chunks: int, empty: pa.Table | None = None) -> None:
        """Record the run as complete (an empty input writes no partition: there is no value to name one)."""
        done = {"rows": rows, "chunks": chunks, "model": self.model, "version": self.version}
        write_text(self.runs / "done.json", json.dumps(done), what="run summary", option="output")

    def _discard_temporaries(self) -> None:
        """Temporary files of this run that a crash left behind (never renamed, so never read)."""
        for temp in self.output.glob(f"*=*/.part-{self.key}-*.tmp"):
            temp.unlink(missing_ok=True)

    def _stamp(self, table: pa.Table) -> pa.Table:
        """Each row with the model that scored it and the time its features were looked up as of."""
        n = table.num_rows
        table = table.append_column("model", pa.array([self.model] * n, pa.string()))
        table = table.append_column("model_version", pa.array([self.version] * n, pa.int64()))
        if self.timestamp in table.column_names:
            return table.append_column(AS_OF, table.column(self.timestamp))
        return table.append_column(AS_OF, pa.nulls(n, pa.timestamp("us", tz="UTC")))

    def _partition_column(self, table: pa.Table) -> pa.ChunkedArray:
        if self.partition_by in table.column_names:
            column = table.column(self.partition_by)
        elif self.partition_by == "date":  # the UTC day of each row's time
            stamps = table.column(AS_OF)
            if not pa.types.is_timestamp(stamps.type):
                raise SchemaError(
                    f"partition_by='date' is the UTC day of column {self.timestamp!r}, which holds {stamps.type}, "
                    "not timestamps; name the time column with timestamp= (--timestamp), or a column to partition by."
                )
            if stamps.type.tz is not None:
                stamps = stamps.cast(pa.timestamp(stamps.type.unit, tz="UTC"))
            column = pc.strftime(stamps, format="%Y-%m-%d")
        else:
            raise SchemaError(
                f"partition_by={self.partition_by!r} names no output column; output columns are "
                f"{table.column_names}. Name one of them, or 'date' for the UTC day of the {self.timestamp!r} column."
            )
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        return column


def read_scores(path: str | Path, columns: Sequence[str] | None = None) -> pa.Table:
    """The rows of a scoring output: one Parquet file, or a partitioned folder with its partition column.

    >>> read_scores("preds/").num_rows   # doctest: +SKIP
    2400
    """
    source = Path(path)
    if not source.exists():
        raise NotFound(f"No scoring output at {source}; pass the Parquet file or folder `mloop score` wrote.")
    try:
        table = pq.read_table(source, partitioning="hive") if source.is_dir() else pq.read_table(source)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SchemaError(f"Cannot read scoring output {source} as Parquet ({exc}).") from None
    fields = [f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in table.schema]
    table = table.cast(pa.schema(fields))
    if columns is not None:
        table = table.select(list(columns))
    return table


def _groups(column: pa.ChunkedArray) -> list[tuple[Any, np.ndarray]]:
    """Each partition value (None for nulls) with the positions of its rows, in one sort (not a scan per value)."""
    codes, uniques = pd.factorize(column.to_pandas(), use_na_sentinel=True)  # a null's code is -1
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(-1, len(uniques) + 1))
    found = [(None if code < 0 else uniques[code], order[bounds[code + 1] : bounds[code + 2]])
             for code in range(-1, len(uniques))]  # fmt: skip
    return [(value, rows) for value, rows in found if len(rows)]


def _segment(value: Any) -> str:
    """A partition value as a folder name segment (URI-encoded, as Hive readers decode it)."""
    return NULL_PARTITION if value is None else quote(str(value), safe="")


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
