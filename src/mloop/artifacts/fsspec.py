"""Blobs on any fsspec filesystem (s3://, gs://, az://, memory://, file://).

On S3 a blob is written straight under its key: a single PUT, or a multipart upload, shows nothing until
it completes, and a failed one is aborted, so no rename is needed (S3 has none; a "move" there is a copy
of the whole blob). A process killed mid-upload leaves an incomplete multipart upload, invisible to reads
and listings, which ``temps`` reports and ``delete`` aborts. Elsewhere the blob is uploaded under a
temporary name and moved into place, so that a listing never shows a partial upload either.

Where S3 is, and who mloop is there, come from the environment as for every AWS client, never from
mloop.yaml: ``AWS_ENDPOINT_URL`` (for S3-compatible servers), ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, or ``AWS_PROFILE``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, BinaryIO

from mloop.artifacts.base import TempBlob
from mloop.errors import BackendNotInstalled, StorageUnavailable

TEMP = ".tmp"  # the folder under the root where put() uploads before moving a blob into place
UPLOADS = ".uploads"  # how temps() names an incomplete multipart upload on S3: .uploads/<id>/<key>
# Protocols whose objects appear only when their upload completes (and whose files can abort one).
_OBJECT_STORES = {"s3", "s3a"}


class FsspecBlobBackend:
    # Part size of multipart uploads: a blob above it is uploaded in parts, a smaller one in one PUT.
    upload_block_size = 8 << 20

    def __init__(self, url: str, **storage_options: Any) -> None:
        import fsspec

        if url.split("://", 1)[0] in _OBJECT_STORES and "config_kwargs" not in storage_options:
            storage_options["config_kwargs"] = _retries(os.environ)
        try:
            # A fresh filesystem per store: s3fs would otherwise reuse one built from an earlier environment.
            self.fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True, **storage_options)
        except (ImportError, ValueError) as exc:
            scheme = url.split("://", 1)[0]
            raise BackendNotInstalled(
                f"artifact_url '{url}' needs the fsspec driver for {scheme}:// ({exc}). "
                "For S3: pip install 'mloop[s3]'; or use a local folder (the default .mloop/artifacts)."
            ) from None
        self.url = url
        self.root = root.rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.object_store = bool(_OBJECT_STORES.intersection(protocols))

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}"

    @contextlib.contextmanager
    def _reaching(self, writing: bool = False) -> Iterator[None]:
        """Turn "cannot reach the store" into one clear error naming the endpoint and the bucket."""
        if not self.object_store:
            yield
            return
        try:
            yield
        except StorageUnavailable:
            raise
        except Exception as exc:
            # s3fs reports a missing bucket as FileNotFoundError: a read then finds no blob, a write fails.
            missing = writing and isinstance(exc, FileNotFoundError)
            reason = "the bucket does not exist" if missing else _unreachable(exc)
            if reason is None:
                raise
            bucket = self.root.split("/", 1)[0]
            raise StorageUnavailable(
                f"The artifact store {self.url} cannot be used: {reason} (endpoint {self._endpoint()}, "
                f"bucket '{bucket}'). Check that the server is up, that the bucket exists, and the "
                "credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (the endpoint: AWS_ENDPOINT_URL)."
            ) from exc

    def _endpoint(self) -> str:
        client = getattr(self.fs, "s3", None)  # set once s3fs has connected
        endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)
        return str(endpoint or getattr(self.fs, "endpoint_url", None) or "AWS default")

    def put(self, key: str, source: BinaryIO) -> None:
        with self._reaching(writing=True):
            if self.object_store:
                self._put_object(self._path(key), source)
            else:
                self._put_and_move(self._path(key), source)

    def _put_object(self, path: str, source: BinaryIO) -> None:
        out = self.fs.open(path, "wb", block_size=self.upload_block_size)
        try:
            while chunk := source.read(1 << 20):
                out.write(chunk)
        except BaseException:
            # Never close(): it would publish what was written so far. Abort the multipart upload, if any.
            with contextlib.suppress(Exception):
                out.discard()
            out.closed = True
            raise
        out.close()

    def _put_and_move(self, path: str, source: BinaryIO) -> None:
        tmp = f"{self.root}/{TEMP}/{uuid.uuid4().hex}"
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        self.fs.makedirs(tmp.rsplit("/", 1)[0], exist_ok=True)
        try:
            with self.fs.open(tmp, "wb") as out:
                while chunk := source.read(1 << 20):
                    out.write(chunk)
            self.fs.mv(tmp, path)
        except BaseException:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)
            raise

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        with self._reaching():
            if not self._is_file(path):
                raise FileNotFoundError(path)
            return self.fs.open(path, "rb")

    def exists(self, key: str) -> bool:
        with self._reaching():
            return self._is_file(self._path(key))

    def _is_file(self, path: str) -> bool:
        # Not fs.isfile(): it answers False for any error, so a store that cannot be reached would read as
        # "no such blob" (a model "missing" while S3 restarts). Only a missing object is False here.
        try:
            return bool(self.fs.info(path)["type"] == "file")
        except FileNotFoundError:
            return False

    def delete(self, key: str) -> None:
        if self.object_store and key.startswith(f"{UPLOADS}/"):
            _, upload_id, blob = key.split("/", 2)
            bucket, prefix = self._split(self._path(blob))
            with self._reaching():
                self.fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=prefix, UploadId=upload_id)
            return
        if self.exists(key):
            with self._reaching():
                self.fs.rm(self._path(key))

    def keys(self, prefix: str = "") -> Iterator[str]:
        base = self._path(prefix).rstrip("/") if prefix else self.root
        with self._reaching():
            if not self.fs.exists(base):
                return
            found = sorted(self.fs.find(base))
        for path in found:
            key = path[len(self.root) + 1 :] if path.startswith(self.root) else path
            if not key.startswith(f"{TEMP}/") and not key.rsplit("/", 1)[-1].startswith("."):
                yield key

    def temps(self) -> Iterator[TempBlob]:
        if self.object_store:
            yield from self._incomplete_uploads()
            return
        folder = f"{self.root}/{TEMP}"
        if not self.fs.exists(folder):
            return
        for path, info in sorted(self.fs.find(folder, detail=True).items()):
            key = path[len(self.root) + 1 :] if path.startswith(self.root) else path
            yield TempBlob(key, int(info.get("size") or 0), _modified(info))

    def _incomplete_uploads(self) -> Iterator[TempBlob]:
        bucket, prefix = self._split(f"{self.root}/")
        with self._reaching():
            listing = self.fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=prefix)
        for upload in sorted(listing.get("Uploads", []), key=lambda u: (u["Key"], u["UploadId"])):
            blob = upload["Key"][len(prefix) :]
            # The size of the parts sent so far is one more request per upload; 0 says "unknown".
            yield TempBlob(f"{UPLOADS}/{upload['UploadId']}/{blob}", 0, _modified(upload))

    def _split(self, path: str) -> tuple[str, str]:
        bucket, _, rest = path.partition("/")
        return bucket, rest


def _retries(env: Mapping[str, str]) -> dict[str, Any]:
    """botocore's retries for the artifact store: the standard mode (3 attempts, as the AWS SDKs and
    pyarrow's S3 filesystem for data_url), unless ``AWS_RETRY_MODE`` chooses. botocore's own default (legacy,
    5 attempts) sleeps up to 1 + 2 + 4 + 8 s between tries of a refused connection: a command learnt that S3
    is down after 7.5 s on average, and a server retried a version's load as late."""
    return {} if env.get("AWS_RETRY_MODE") else {"retries": {"mode": "standard"}}


def _unreachable(exc: BaseException) -> str | None:
    """Why the store could not be used, if ``exc`` says it cannot be reached or let in; else None."""
    name = type(exc).__name__
    if isinstance(exc, PermissionError):
        return f"access denied ({exc})"
    if name in {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "NoCredentialsError"}:
        return str(exc)
    if isinstance(exc, ConnectionError | TimeoutError):
        return f"cannot connect ({exc})"
    code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
    if code in {"NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"}:
        return f"{code} ({exc})"
    return None


def _modified(info: dict[str, Any]) -> datetime:
    """When a file was last written, from what its filesystem reports (each names it its own way)."""
    for name in ("mtime", "LastModified", "last_modified", "updated", "created", "Initiated"):
        value = info.get(name)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)  # unknown: counts as new, so a clean never deletes it by mistake
