"""Parquet files at rest, plain or encrypted: the one way mloop writes and reads the Parquet it keeps
(datasets, quarantine, the push log, the prediction log, feedback).

Encrypted files use Parquet modular encryption (pyarrow): each file gets its own data-encryption key,
which pyarrow wraps with the project's active data key (named in the file's key material), and
columns and footer are sealed with AES-GCM. A reader still reads only the columns and row groups it
needs, and DuckDB scans an encrypted file through an Arrow dataset with its projection and filters
pushed down. Files written before encryption was turned on (``PAR1`` at both ends) are read as they are.

>>> files = PLAIN                                         # encryption off: exactly pyarrow and read_parquet
>>> files.write_table(table, "part-0.parquet")            # doctest: +SKIP
>>> con.sql(f"SELECT count(*) FROM {files.scan(con, ['part-0.parquet'])}")   # doctest: +SKIP
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import struct
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mloop.crypto.keys import DataKeyError, Keyring

if TYPE_CHECKING:
    import duckdb

_ENCRYPTED = b"PARE"
_MASTER_KEY_ID = re.compile(rb'"masterKeyID":"([^"]+)"')


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def key_id_of(path: str | Path, filesystem: pafs.FileSystem | None = None) -> str | None:
    """The data key an encrypted Parquet file was written under; None for a plaintext file. ``path`` is
    on ``filesystem`` when one is given (an object store), else local."""
    opened = filesystem.open_input_file(str(path)) if filesystem is not None else open(path, "rb")  # noqa: SIM115
    with opened as handle:
        handle.seek(-8, os.SEEK_END)
        tail = handle.read(8)
        if tail[4:] != _ENCRYPTED:
            return None
        size = struct.unpack("<I", tail[:4])[0]
        handle.seek(-8 - size, os.SEEK_END)
        found = _MASTER_KEY_ID.search(handle.read(min(size, 4096)))
    return found.group(1).decode() if found else None


class ParquetFiles:
    """Writes and reads mloop's Parquet files, encrypted under ``keyring``'s active data key when one is
    given; plain pyarrow and DuckDB calls when it is None.

    A path that starts with ``remote``'s prefix (``s3://``) lives on ``remote``'s filesystem: it is read
    through pyarrow (DuckDB scans it as a registered Arrow dataset, projection and filters pushed down)
    and :meth:`replace` uploads it whole; every other path is a local file."""

    def __init__(
        self, keyring: Keyring | None = None, remote: tuple[str, pafs.FileSystem] | None = None
    ) -> None:
        self.keyring = keyring
        self.remote = remote
        self._factory: Any = None

    def _remote_path(self, path: str | Path) -> str | None:
        """``path`` on the remote filesystem, or None for a local file."""
        if self.remote is None or not isinstance(path, str) or not path.startswith(self.remote[0]):
            return None
        return path[len(self.remote[0]) :]

    @property
    def encrypted(self) -> bool:
        return self.keyring is not None

    def key_id(self, path: str | Path) -> str | None:
        """:func:`key_id_of` of a local file or of an object on the remote store."""
        remote = self._remote_path(path)
        if remote is not None:
            assert self.remote is not None
            return key_id_of(remote, self.remote[1])
        return key_id_of(path)

    # ---- writing --------------------------------------------------------------------------------------

    def write_table(self, table: pa.Table, where: str | Path | Any, **options: Any) -> None:
        """``pq.write_table``; the file is encrypted when encryption is on. ``where`` is a path or a
        binary handle, as for pyarrow."""
        if self.keyring is not None:
            options["encryption_properties"] = self._encryption()
        pq.write_table(table, where, **options)

    def seal(self, path: str | Path) -> int:
        """Rewrite a plaintext file just written (by DuckDB's COPY) encrypted, atomically; returns its
        new size. A no-op when encryption is off or the file is encrypted already."""
        if self.keyring is None or key_id_of(path) is not None:
            return Path(path).stat().st_size
        self.rewrite(path)
        return Path(path).stat().st_size

    def replace(self, table: pa.Table, path: str | Path) -> None:
        """Write ``table`` to ``path`` atomically and durably (a temp file in the same folder, fsync,
        rename, fsync of the folder): readers see the old file or the whole new one, also after a crash."""
        remote = self._remote_path(path)
        if remote is not None:
            self._upload(table, remote)
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            self.write_table(table, tmp)
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def _upload(self, table: pa.Table, remote: str) -> None:
        """An object store has no rename, and an object appears only when its upload completes: the
        file is written locally in full, then uploaded in one go (a failed upload shows nothing)."""
        assert self.remote is not None
        fd, tmp = tempfile.mkstemp(prefix="mloop-", suffix=".parquet")
        os.close(fd)
        try:
            self.write_table(table, tmp)
            pafs.copy_files(tmp, remote, source_filesystem=pafs.LocalFileSystem(),
                            destination_filesystem=self.remote[1])  # fmt: skip
        finally:
            os.unlink(tmp)

    def rewrite(self, path: str | Path) -> None:
        """Rewrite ``path`` under the active data key: a temp file in the same folder, fsync, rename, so
        a reader sees the old file or the new one and a crash leaves the old one (on an object store:
        read whole, then uploaded whole)."""
        if self._remote_path(path) is not None:
            self.replace(self.read_table(path), path)
            return
        target = Path(path)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            with self.open(target) as parquet, open(tmp, "wb") as handle:
                options = {"encryption_properties": self._encryption()} if self.keyring is not None else {}
                # Row group by row group: a large file is never held in memory whole.
                with pq.ParquetWriter(handle, parquet.schema_arrow, **options) as writer:
                    for group in range(parquet.metadata.num_row_groups):
                        writer.write_table(parquet.read_row_group(group))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    # ---- reading --------------------------------------------------------------------------------------

    def open(self, path: str | Path) -> pq.ParquetFile:
        """``pq.ParquetFile`` that decrypts (plaintext files open as they are)."""
        remote = self._remote_path(path)
        if remote is not None:
            assert self.remote is not None
            source: Any = self.remote[1].open_input_file(remote)
            return pq.ParquetFile(source, decryption_properties=self._decryption())
        return pq.ParquetFile(path, decryption_properties=self._decryption())

    def read_table(
        self, paths: str | Path | Sequence[str | Path], columns: list[str] | None = None, **options: Any
    ) -> pa.Table:
        """``pq.read_table`` of one file, or of several as one dataset (``schema=`` and ``filter=`` pass
        on)."""
        if isinstance(paths, str | Path):
            remote = self._remote_path(paths)
            if remote is not None:
                assert self.remote is not None
                return pq.read_table(remote, columns=columns, filesystem=self.remote[1],
                                     decryption_properties=self._decryption(), **options)  # fmt: skip
            return pq.read_table(paths, columns=columns, decryption_properties=self._decryption(), **options)
        return self.dataset(paths, schema=options.pop("schema", None)).to_table(columns=columns, **options)

    def dataset(self, paths: Sequence[str | Path], schema: pa.Schema | None = None) -> ds.Dataset:
        """An Arrow dataset over ``paths`` (decrypting when encryption is on)."""
        names = [str(p) for p in paths]
        filesystem = None
        remote = [self._remote_path(p) for p in paths]
        if names and all(r is not None for r in remote):
            assert self.remote is not None
            names, filesystem = [str(r) for r in remote], self.remote[1]
        file_format = "parquet" if self.keyring is None else self._format()
        return ds.dataset(names, schema=schema, format=file_format, filesystem=filesystem)

    def scan(
        self, con: duckdb.DuckDBPyConnection, paths: Sequence[str | Path], *, union: bool = False
    ) -> str:
        """A DuckDB FROM expression over ``paths``: ``read_parquet([...])`` when no file is encrypted, else
        an Arrow dataset registered on ``con`` (scanned lazily, projection and filters pushed down)."""
        relation, datasets = self.relation(paths, union=union)
        for name, dataset in datasets.items():
            con.register(name, dataset)
        return relation

    def relation(
        self, paths: Sequence[str | Path], *, union: bool = False
    ) -> tuple[str, dict[str, ds.Dataset]]:
        """:meth:`scan` for a connection opened later: the FROM expression, and the Arrow datasets to
        register under their names before it is used (none when no file is encrypted)."""
        names = [str(p) for p in paths]
        remote = any(self._remote_path(p) is not None for p in paths)
        # DuckDB reads local files itself; objects on a remote store through pyarrow's filesystem.
        if not remote and (self.keyring is None or not any(key_id_of(p) for p in names)):
            by_name = ", union_by_name = true" if union else ""
            return f"read_parquet([{', '.join(_literal(p) for p in names)}]{by_name})", {}
        schema = None
        if union:
            if remote:  # a footer per file, each a round trip to the object store: fetched together
                with ThreadPoolExecutor(16) as pool:
                    opened = list(pool.map(self.open, names))
            else:
                opened = [self.open(p) for p in names]
            schema = pa.unify_schemas([f.schema_arrow for f in opened])
        view = "_mloop_parquet_" + hashlib.sha256("\0".join(names).encode()).hexdigest()[:16]
        return view, {view: self.dataset(list(paths), schema=schema)}

    # ---- pyarrow's encryption objects -------------------------------------------------------------------

    def _crypto(self) -> tuple[Any, Any]:
        if self._factory is None:
            keyring = self.keyring
            assert keyring is not None
            self._factory = pe.CryptoFactory(lambda _config: _KmsClient(keyring))
        return self._factory, pe.KmsConnectionConfig()

    def _encryption(self) -> Any:
        assert self.keyring is not None
        factory, kms = self._crypto()
        config = pe.EncryptionConfiguration(
            footer_key=self.keyring.active_id,
            uniform_encryption=True,
            double_wrapping=False,  # the data key wraps each file's key directly: one KMS call per file
            plaintext_footer=False,
        )
        return factory.file_encryption_properties(kms, config)

    def _decryption(self) -> Any:
        if self.keyring is None:
            return None
        factory, kms = self._crypto()
        return factory.file_decryption_properties(kms, pe.DecryptionConfiguration())

    def _format(self) -> ds.ParquetFileFormat:
        factory, kms = self._crypto()
        config = ds.ParquetDecryptionConfig(factory, kms, pe.DecryptionConfiguration())
        options = ds.ParquetFragmentScanOptions(decryption_config=config)
        return ds.ParquetFileFormat(default_fragment_scan_options=options)


class _KmsClient(pe.KmsClient):  # type: ignore[misc]
    """pyarrow's key-management seam: each file's key is wrapped with the data key it names."""

    def __init__(self, keyring: Keyring) -> None:
        super().__init__()
        self._keyring = keyring

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(self._keyring.key(master_key_identifier)).encrypt(
            nonce, key_bytes, master_key_identifier.encode()
        )
        return base64.b64encode(nonce + sealed).decode()

    def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
        raw = base64.b64decode(wrapped_key)
        try:
            return AESGCM(self._keyring.key(master_key_identifier)).decrypt(
                raw[:12], raw[12:], master_key_identifier.encode()
            )
        except InvalidTag:
            raise DataKeyError(
                f"A Parquet file's key does not open with data key {master_key_identifier}: the file was "
                "tampered with or written by another project."
            ) from None


PLAIN = ParquetFiles()
