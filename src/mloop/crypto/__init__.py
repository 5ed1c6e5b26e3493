"""Encryption at rest: the key hierarchy (:mod:`~mloop.crypto.keys`), sealed artifact blobs
(:mod:`~mloop.crypto.blobs`) and encrypted Parquet (:mod:`~mloop.crypto.parquet`).

A **master key** (``MLOOP_DATA_KEY`` or ``encryption.key_file``, never ``mloop.yaml``) wraps **data keys**
kept in the metadata store; the active data key wraps the per-file keys of Parquet files and seals
artifact blobs. Rotating the data key re-encrypts every file under a fresh one; the master key never
touches a file.

This package sits at the base of mloop's layers: it imports only ``config`` and ``errors``.
"""

from mloop.crypto.blobs import BlobCipher, is_sealed
from mloop.crypto.keys import DataKeyError, Keyring, master_key
from mloop.crypto.parquet import PLAIN, ParquetFiles

__all__ = ["PLAIN", "BlobCipher", "DataKeyError", "Keyring", "ParquetFiles", "is_sealed", "master_key"]
