"""Data files on S3 or an S3-compatible server, through pyarrow's native S3 filesystem (the one its
Parquet reader and datasets use, so DuckDB scans the objects in place: no download-then-read).

An object appears only when its upload completes (one PUT, or a multipart upload completed at the
end), so publishing a finished local file is the atomic step; there is no rename. A process killed
mid-upload leaves an incomplete multipart upload, invisible to reads and listings (a bucket lifecycle
rule such as AbortIncompleteMultipartUpload reclaims its parts).

Where S3 is and who mloop is there come from the environment, as for every AWS client, never from
mloop.yaml: ``AWS_ENDPOINT_URL`` (an S3-compatible server), ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION`` (else the SDK's own chain: a profile,
an instance role).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from mloop.errors import ConfigError, StorageUnavailable

SCHEME = "s3://"
_AWS_ERROR = re.compile(r"AWS Error (\w+)")
# What pyarrow's S3 errors say when the store cannot be reached or refuses mloop (not "no such object").
_UNREACHABLE = {
    "NETWORK_CONNECTION": "cannot connect",
    "ACCESS_DENIED": "access denied",
    "INVALID_ACCESS_KEY_ID": "the access key is not known",
    "SIGNATURE_DOES_NOT_MATCH": "the secret key does not match",
    "NO_SUCH_BUCKET": "the bucket does not exist",
    "UNRECOGNIZED_CLIENT": "the credentials are not recognised",
    "MISSING_AUTHENTICATION_TOKEN": "no credentials",
    "REQUEST_TIME_TOO_SKEWED": "the clock is too far from the server's",
}


class S3DataStorage:
    remote = True

    def __init__(
        self, url: str, scratch: str | Path | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        env = os.environ if env is None else env
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ConfigError(f"data_url {url!r} is not an S3 URL; write it as s3://BUCKET/PREFIX.")
        self.url = url
        self.bucket = parts.netloc
        self.root = SCHEME + f"{parts.netloc}/{parts.path.strip('/')}".rstrip("/")
        self.endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        self.scratch = Path(scratch) if scratch else Path(tempfile.gettempdir()) / "mloop-scratch"
        options: dict[str, object] = {"connect_timeout": 5.0}
        if self.endpoint:
            endpoint = urlsplit(self.endpoint)
            options["endpoint_override"] = endpoint.netloc or self.endpoint
            options["scheme"] = endpoint.scheme or "https"
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if region or self.endpoint:
            options["region"] = region or "us-east-1"  # an S3-compatible server ignores it; AWS needs one
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            options["access_key"] = env["AWS_ACCESS_KEY_ID"]
            options["secret_key"] = env["AWS_SECRET_ACCESS_KEY"]
            if env.get("AWS_SESSION_TOKEN"):
                options["session_token"] = env["AWS_SESSION_TOKEN"]
        self.filesystem = pafs.S3FileSystem(**options)
        self._local = pafs.LocalFileSystem()

    def join(self, location: str, *parts: str) -> str:
        return "/".join([location.rstrip("/"), *(p.strip("/") for p in parts)])

    def path(self, location: str) -> str:
        return location[len(SCHEME) :] if location.startswith(SCHEME) else location

    def list(self, location: str, suffix: str = ".parquet") -> list[str]:
        selector = pafs.FileSelector(self.path(location), recursive=True, allow_not_found=True)
        with self.reaching():
            infos = self.filesystem.get_file_info(selector)
        return sorted(
            SCHEME + i.path for i in infos if i.type == pafs.FileType.File and i.path.endswith(suffix)
        )

    def exists(self, location: str) -> bool:
        with self.reaching():
            return bool(self.filesystem.get_file_info(self.path(location)).type == pafs.FileType.File)

    def size(self, location: str) -> int:
        with self.reaching():
            return int(self.filesystem.get_file_info(self.path(location)).size or 0)

    def delete(self, location: str) -> None:
        with self.reaching(), contextlib.suppress(FileNotFoundError):
            self.filesystem.delete_file(self.path(location))

    def publish(self, local: Path, location: str) -> None:
        with self.reaching():
            pafs.copy_files(
                str(local), self.path(location), source_filesystem=self._local,
                destination_filesystem=self.filesystem,
            )  # fmt: skip
        local.unlink()

    def staging(self, location: str) -> Path:
        return self.scratch / "staging" / hashlib.sha256(location.encode()).hexdigest()[:16]

    @contextlib.contextmanager
    def reaching(self) -> Iterator[None]:
        try:
            yield
        except StorageUnavailable:
            raise
        except Exception as exc:
            reason = unreachable(exc)
            if reason is None:
                raise
            raise StorageUnavailable(
                f"The data store {self.url} cannot be used: {reason} (endpoint {self.endpoint or 'AWS default'}, "
                f"bucket '{self.bucket}'). Check that the server is up, that the bucket exists, and the "
                "credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (the endpoint: AWS_ENDPOINT_URL)."
            ) from exc


def unreachable(exc: BaseException) -> str | None:
    """Why S3 could not be used, if ``exc`` (from pyarrow, or DuckDB scanning through it) says it
    cannot be reached or let in; None for anything else (a missing object, a corrupt file)."""
    found = _AWS_ERROR.search(str(exc))
    if found is None:
        return None
    code = found.group(1)
    if code not in _UNREACHABLE:
        return None
    return f"{_UNREACHABLE[code]} ({code})"
