"""The single-file output of batch scoring: one Parquet file, written beside its final name and renamed over
it only when every chunk has succeeded (for :mod:`mloop.serving.scoring.job`)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


class AtomicParquet:
    """A Parquet file written beside ``path`` and renamed over it only when the block ends without error."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
        self.handle: Any = None
        self.writer: pq.ParquetWriter | None = None

    def __enter__(self) -> AtomicParquet:
        self.handle = open(self.temp, "wb")
        return self

    committed: frozenset[int] = frozenset()  # one file, written whole: nothing to resume from
    rows_done = 0

    def skip(self, start: int) -> bool:
        return False

    def finish(self, rows: int, chunks: int, empty: pa.Table) -> None:
        if self.writer is None:  # an empty input: the output has the columns and no rows
            self.write(empty, 0)

    def write(self, table: pa.Table, start: int) -> None:
        # The input's pandas metadata describes the input's columns, not these.
        table = table.replace_schema_metadata(None)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.handle, table.schema)
        elif table.schema != self.writer.schema:
            table = table.cast(self.writer.schema)
        self.writer.write_table(table)

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        complete = False
        try:
            if self.writer is not None:
                self.writer.close()
            if kind is None:
                self.handle.flush()
                os.fsync(self.handle.fileno())
                complete = True
        finally:
            self.handle.close()
            if complete:
                os.replace(self.temp, self.path)
            else:
                self.temp.unlink(missing_ok=True)
