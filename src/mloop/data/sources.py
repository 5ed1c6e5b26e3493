"""Where rows come from: CSV and Parquet files, pandas/Arrow tables, SQL queries run by DuckDB.

Each source opens as a DuckDB view of its raw columns plus ``_row`` (the row's position in the source),
and has a content fingerprint, so ingesting the same content twice is recognised. A file that cannot be
read as what it claims to be raises :class:`MalformedInput` naming the file, what is wrong and what was
expected, before anything is written.
"""

from __future__ import annotations

import codecs
import csv
import glob
import gzip
import hashlib
import io
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mloop.data.schema import RESERVED
from mloop.data.sql import literal, quote
from mloop.data.tensors import arrow_column
from mloop.errors import MalformedInput, NotFound

Progress = Callable[[str, float], None]
_NATIVE_ENCODINGS = {"utf-8": "utf-8", "utf-16": "utf-16", "iso8859-1": "latin-1"}
_CSV_NULLS = ("", "NA", "N/A", "NULL", "null", "None")


@dataclass
class Opened:
    """A source opened on a DuckDB connection."""

    view: str  # name of a view or table: raw columns, then _row (and _file for several files)
    columns: list[str]  # raw column names, in source order
    types: dict[str, str]  # raw column -> DuckDB type
    row_key: tuple[str, ...] = ("_row",)
    rejects: str | None = None  # table of rows that did not parse: _line, _raw, _reason
    # The row key and the named raw columns as Arrow, with their Arrow types (a fixed-shape tensor keeps
    # its shape, which DuckDB's view flattens); None: read them from the view.
    arrow_columns: Callable[[list[str]], pa.Table] | None = None

    def read_columns(self, con: duckdb.DuckDBPyConnection, names: list[str]) -> pa.Table:
        """The row key and ``names`` for every row (tensor columns, checked outside DuckDB)."""
        if self.arrow_columns is not None:
            return self.arrow_columns(names)
        columns = ", ".join(quote(c) for c in [*self.row_key, *names])
        return con.sql(f"SELECT {columns} FROM {quote(self.view)}").to_arrow_table()


@dataclass
class Source:
    """Base of every source. ``timestamp`` and ``created_timestamp`` are used by the feature store."""

    timestamp: str | None = field(default=None, kw_only=True)
    created_timestamp: str | None = field(default=None, kw_only=True)

    def describe(self) -> str:
        raise NotImplementedError

    def fingerprint(self, progress: Progress | None = None) -> str:
        raise NotImplementedError

    def open(self, con: duckdb.DuckDBPyConnection, workdir: Path) -> Opened:
        raise NotImplementedError


@dataclass
class ParquetSource(Source):
    """One Parquet file, or several (a list or a glob such as ``data/*.parquet``)."""

    path: str | Path | Sequence[str | Path] = ""

    def files(self) -> list[Path]:
        paths = [self.path] if isinstance(self.path, str | Path) else list(self.path)
        found: list[Path] = []
        for item in paths:
            text = str(item)
            matches = sorted(glob.glob(text)) if any(ch in text for ch in "*?[") else [text]
            if not matches:
                raise NotFound(f"No Parquet file matches {text!r}: check the path and the pattern.")
            found.extend(Path(m) for m in matches)
        for path in found:
            if not path.is_file():
                raise NotFound(f"Parquet file {path} does not exist: check the path.")
        return found

    def describe(self) -> str:
        files = self.files()
        return str(files[0]) if len(files) == 1 else f"{len(files)} Parquet files ({files[0]}, ...)"

    def fingerprint(self, progress: Progress | None = None) -> str:
        return _hash_files(self.files(), progress)

    def open(self, con: duckdb.DuckDBPyConnection, workdir: Path) -> Opened:
        files = self.files()
        for path in files:
            _check_names(_check_parquet(path), str(path))
        many = len(files) > 1
        listing = "[" + ", ".join(literal(str(p)) for p in files) + "]"
        extra = ", filename = true" if many else ""
        renamed = ", filename AS _file" if many else ""
        exclude = "file_row_number, filename" if many else "file_row_number"
        con.execute(
            f"CREATE VIEW src AS SELECT * EXCLUDE ({exclude}), file_row_number AS _row{renamed} "
            f"FROM read_parquet({listing}, file_row_number = true{extra})"
        )
        types = _types(con, "src", hidden={"_row", "_file"})

        def arrow_columns(names: list[str]) -> pa.Table:
            tables = []
            for path in files:
                table = pq.read_table(path, columns=names)
                keys = {"_row": pa.array(np.arange(table.num_rows, dtype=np.int64))}
                if many:
                    keys = {"_file": pa.array([str(path)] * table.num_rows, pa.string()), **keys}
                tables.append(pa.table({**keys, **{n: table[n] for n in names}}))
            try:
                return pa.concat_tables(tables, promote_options="permissive")
            except pa.ArrowException as exc:
                raise MalformedInput(
                    f"{self.describe()}: column(s) {names} have different types in different files ({exc}); "
                    "write them with one type."
                ) from None

        return Opened("src", list(types), types, ("_file", "_row") if many else ("_row",),
                      arrow_columns=arrow_columns)  # fmt: skip


@dataclass
class CsvSource(Source):
    """A CSV file with a header line. Rows that do not parse (wrong field count, bad quoting) are
    quarantined with the reason; a file in the wrong encoding or with the wrong delimiter is an error."""

    path: str | Path = ""
    delimiter: str = ","
    encoding: str = "utf-8"
    quote: str = '"'
    null_values: tuple[str, ...] = _CSV_NULLS

    def describe(self) -> str:
        return str(self.path)

    def fingerprint(self, progress: Progress | None = None) -> str:
        return _hash_files([self._file()], progress)

    def _file(self) -> Path:
        path = Path(self.path)
        if not path.is_file():
            raise NotFound(f"CSV file {path} does not exist: check the path.")
        return path

    def open(self, con: duckdb.DuckDBPyConnection, workdir: Path) -> Opened:
        path = self._file()
        if path.stat().st_size == 0:
            raise MalformedInput(f"{path} is empty: expected a CSV file with a header line.")
        try:
            encoding = codecs.lookup(self.encoding).name
        except LookupError:
            raise MalformedInput(
                f"Unknown encoding {self.encoding!r} for {path}; use e.g. utf-8 or latin-1."
            ) from None
        header = self._header(path, encoding)
        if encoding not in _NATIVE_ENCODINGS:
            path = _transcode(path, encoding, workdir)
            encoding = "utf-8"
        columns = "{" + ", ".join(f"{literal(name)}: 'VARCHAR'" for name in header) + "}"
        nulls = "[" + ", ".join(literal(v) for v in self.null_values) + "]"
        try:
            con.execute(
                "CREATE TABLE src AS SELECT *, (row_number() OVER () - 1)::BIGINT AS _row FROM read_csv("
                f"{literal(str(path))}, header = true, auto_detect = false, columns = {columns}, "
                f"delim = {literal(self.delimiter)}, quote = {literal(self.quote)}, escape = {literal(self.quote)}, "
                f"encoding = {literal(_NATIVE_ENCODINGS[encoding])}, nullstr = {nulls}, strict_mode = true, "
                "store_rejects = true, rejects_table = 'csv_rejects', rejects_scan = 'csv_scans')"
            )
        except duckdb.Error as exc:
            raise MalformedInput(f"{self.path} could not be read as CSV: {_first_line(exc)}.") from None
        # DuckDB 1.x names it INVALID UNICODE, 2.x INVALID ENCODING: either means the wrong encoding.
        bad_unicode = con.execute(
            "SELECT min(line) FROM csv_rejects WHERE error_type::VARCHAR IN ('INVALID UNICODE', 'INVALID ENCODING')"
        ).fetchone()
        if bad_unicode and bad_unicode[0] is not None:
            raise MalformedInput(
                f"{self.path} is not valid {self.encoding} (first bad bytes on line {bad_unicode[0]}). "
                "Pass the file's real encoding, for example --encoding latin-1."
            )
        con.execute(
            "CREATE TABLE rejects AS SELECT line::BIGINT AS _line, any_value(csv_line) AS _raw, "
            "'csv: row does not parse (' || lower(any_value(error_type)) || ')' AS _reason "
            "FROM csv_rejects GROUP BY line"
        )
        types = _types(con, "src", hidden={"_row"})
        return Opened("src", list(types), types, rejects="rejects")

    def _header(self, path: Path, encoding: str) -> list[str]:
        try:
            line = _header_line(path, encoding).lstrip("\ufeff")
        except UnicodeDecodeError as exc:
            raise MalformedInput(
                f"{self.path} is not valid {self.encoding}: byte {exc.object[exc.start]:#04x} at offset {exc.start} "
                "of the header line. Pass the file's real encoding, for example --encoding latin-1."
            ) from None
        except (OSError, EOFError) as exc:
            raise MalformedInput(
                f"{self.path} could not be read: {exc}. Expected a CSV file (named .gz only if gzip-compressed)."
            ) from None
        names = next(csv.reader(io.StringIO(line), delimiter=self.delimiter, quotechar=self.quote), [])
        names = [n.strip() for n in names]
        if not names or not any(names):
            raise MalformedInput(f"{self.path} has an empty header line: expected the column names.")
        if len(names) == 1:
            for other in (";", "\t", "|", ","):
                if other != self.delimiter and other in names[0]:
                    shown = "\\t" if other == "\t" else other
                    raise MalformedInput(
                        f"{self.path} has one column {names[0][:60]!r} with delimiter {self.delimiter!r}; it looks "
                        f"delimited by {shown!r}. Pass delimiter={shown!r} (CLI: --delimiter '{shown}')."
                    )
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated or "" in names:
            raise MalformedInput(
                f"{self.path} header has duplicate or empty column names: {duplicated or ['']}. "
                "Give every column a distinct name in the header line."
            )
        _check_names(names, str(self.path))
        return names


@dataclass
class DataFrameSource(Source):
    """A pandas DataFrame or an Arrow table already in memory."""

    frame: Any = None
    name: str = "dataframe"
    _converted: pa.Table | None = field(default=None, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def _table(self) -> pa.Table:
        # Converted once: the fingerprint (in a side thread) and the ingestion both read it.
        with self._lock:
            if self._converted is None:
                self._converted = self._convert()
            return self._converted

    def _convert(self) -> pa.Table:
        if isinstance(self.frame, pa.Table):
            return self.frame
        if isinstance(self.frame, pa.RecordBatch):
            return pa.Table.from_batches([self.frame])
        try:
            # Columns of per-row arrays or nested lists (tensors) are converted on their own: pandas'
            # conversion refuses arrays of more than one dimension.
            frame = self.frame
            nested = [c for c in frame.columns if frame[c].dtype == object and _holds_arrays(frame[c])]
            table = pa.Table.from_pandas(frame.drop(columns=nested), preserve_index=False)
            for column in nested:
                table = table.add_column(
                    list(frame.columns).index(column), str(column), arrow_column(frame[column].tolist())
                )
            return table
        except (TypeError, pa.ArrowException) as exc:
            raise MalformedInput(
                f"{self.describe()}: cannot convert to an Arrow table: {exc}. Give each column one plain type "
                "(numbers, strings, timestamps) first."
            ) from None

    def describe(self) -> str:
        return f"<{self.name}>"

    def fingerprint(self, progress: Progress | None = None) -> str:
        sink = _HashSink()
        table = self._table()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.hexdigest()

    def open(self, con: duckdb.DuckDBPyConnection, workdir: Path) -> Opened:
        table = self._table()
        _check_names(table.column_names, self.describe())
        table = table.append_column("_row", pa.array(range(table.num_rows), pa.int64()))
        con.register("src_arrow", table)
        con.execute("CREATE VIEW src AS SELECT * FROM src_arrow")
        types = _types(con, "src", hidden={"_row"})
        return Opened("src", list(types), types, arrow_columns=lambda names: table.select(["_row", *names]))


@dataclass
class SqlSource(Source):
    """The result of a DuckDB SQL query, e.g. ``SELECT * FROM read_json('events/*.json')``."""

    query: str = ""

    def describe(self) -> str:
        return f"sql: {' '.join(self.query.split())[:200]}"

    def fingerprint(self, progress: Progress | None = None) -> str:
        con = duckdb.connect()
        try:
            reader = con.sql(self.query).to_arrow_reader(100_000)
        except duckdb.Error as exc:
            raise MalformedInput(f"The SQL source failed: {_first_line(exc)}.") from None
        sink = _HashSink()
        with pa.ipc.new_stream(sink, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
        con.close()
        return sink.hexdigest()

    def open(self, con: duckdb.DuckDBPyConnection, workdir: Path) -> Opened:
        try:
            names = [d[0] for d in con.execute(f"SELECT * FROM ({self.query}) LIMIT 0").description]
            _check_names(names, self.describe())
            con.execute(
                f"CREATE TABLE src AS SELECT *, (row_number() OVER () - 1)::BIGINT AS _row FROM ({self.query})"
            )
        except duckdb.Error as exc:
            raise MalformedInput(
                f"The SQL source failed: {_first_line(exc)}. Check the query: {self.describe()}"
            ) from None
        types = _types(con, "src", hidden={"_row"})
        return Opened("src", list(types), types)


def as_source(value: Any, **options: Any) -> Source:
    """A source from what the user passed: a Source, a path (.csv / .parquet), a DataFrame or Arrow table."""
    if isinstance(value, Source):
        return value
    if isinstance(value, str | Path):
        suffix = Path(value).suffix.lower()
        if suffix in (".csv", ".tsv", ".txt") or str(value).endswith(".csv.gz"):
            if suffix == ".tsv":
                options.setdefault("delimiter", "\t")
            return CsvSource(path=value, **options)
        if suffix in (".parquet", ".pq") or any(ch in str(value) for ch in "*?["):
            return ParquetSource(path=value, **options)
        raise MalformedInput(
            f"Cannot tell the format of {value} from its extension: expected .csv, .tsv or .parquet. "
            "Rename it, or pass mloop.CsvSource(...) or mloop.ParquetSource(...)."
        )
    if hasattr(value, "to_dict") or isinstance(value, pa.Table | pa.RecordBatch):
        return DataFrameSource(frame=value)
    raise MalformedInput(
        f"Cannot ingest a {type(value).__name__}: pass a file path, a DataFrame or a Source."
    )


# ---- helpers ---------------------------------------------------------------------------------------------


class _HashSink(io.RawIOBase):
    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._hash.update(data)
        return len(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _hash_files(files: list[Path], progress: Progress | None) -> str:
    total = sum(p.stat().st_size for p in files) or 1
    done = 0
    digest = hashlib.sha256()
    for path in files:
        with path.open("rb") as handle:
            while chunk := handle.read(8 << 20):
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress("fingerprint", done / total)
    return digest.hexdigest()


def _holds_arrays(series: Any) -> bool:
    """An object column whose first value is an array, list or tuple (a tensor column's cells)."""
    for value in series:
        if value is not None and not (isinstance(value, float) and value != value):  # NaN: missing
            return isinstance(value, np.ndarray | list | tuple)
    return False


def _check_parquet(path: Path) -> list[str]:
    """The column names of a Parquet file whose footer reads."""
    try:
        with pq.ParquetFile(path) as parquet:
            return list(parquet.schema_arrow.names)
    except (pa.ArrowException, OSError) as exc:
        raise MalformedInput(
            f"{path} is not a readable Parquet file ({exc}). Expected a complete Parquet file: it may be "
            "truncated, still being written, or another format with a .parquet name."
        ) from None


def _check_names(names: list[str], where: str) -> None:
    """Columns named like the ones mloop adds (``_row``, ``_reason``, ...) would be silently replaced."""
    reserved = [n for n in names if n in RESERVED]
    if reserved:
        raise MalformedInput(
            f"{where} has column(s) {reserved} whose names mloop reserves for its own columns "
            f"({', '.join(sorted(RESERVED))}). Rename them in the source."
        )


def _open_bytes(path: Path) -> BinaryIO:
    """The file's content: a ``.gz`` file is decompressed, as DuckDB does when it reads it."""
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else path.open("rb")  # type: ignore[return-value]


def _header_line(path: Path, encoding: str, limit: int = 1 << 20) -> str:
    """The header line, decoded a byte at a time: splitting bytes at b"\\n" breaks UTF-16, and decoding
    more than the line would blame the header for a bad byte further down."""
    decoder = codecs.getincrementaldecoder(encoding)()
    read, text = bytearray(), ""
    with _open_bytes(path) as handle:
        try:
            while len(read) < limit and (byte := handle.read(1)):
                read += byte
                text += decoder.decode(byte)
                if text.endswith("\n"):
                    break
            else:
                text += decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            bytes(read).decode(encoding)  # raises again, pointing at the first bad byte of the line
            raise
    return text


def _transcode(path: Path, encoding: str, workdir: Path) -> Path:
    """DuckDB reads UTF-8, UTF-16 and Latin-1; other encodings are converted to UTF-8 first, streamed."""
    target = workdir / "transcoded.csv"
    try:
        with (
            io.TextIOWrapper(_open_bytes(path), encoding=encoding, newline="") as src,
            target.open("w", encoding="utf-8", newline="") as dst,
        ):
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    except UnicodeDecodeError as exc:
        raise MalformedInput(
            f"{path} is not valid {encoding}: {exc.reason} at byte {exc.start}. Pass the file's real encoding."
        ) from None
    return target


def _types(con: duckdb.DuckDBPyConnection, view: str, hidden: set[str]) -> dict[str, str]:
    rows = con.execute(f"DESCRIBE {quote(view)}").fetchall()
    return {name: str(dtype) for name, dtype, *_ in rows if name not in hidden}


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
