"""The errors mloop raises.

Every error a user can cause is a :class:`MloopError`: its message says what is wrong and how to fix it.
The CLI prints the message and exits with code 1; anything else is a bug and exits with code 2.
"""

from __future__ import annotations


class MloopError(Exception):
    """Base class of every error caused by input, configuration or state that the user can fix."""


class ConfigError(MloopError):
    """``mloop.yaml`` or an ``MLOOP_*`` environment variable is invalid."""


class BackendNotInstalled(MloopError):
    """A backend named in the settings needs an optional dependency that is not installed."""


class NotFound(MloopError):
    """A named object (dataset, user, key, blob, ...) does not exist."""


class AlreadyExists(MloopError):
    """An object with that name exists already."""


class PermissionDenied(MloopError):
    """The actor's roles do not grant the action on the resource."""


class AuthenticationError(MloopError):
    """An API key is unknown, revoked, expired or malformed."""


class StorageUnavailable(MloopError):
    """Object storage (S3, ...) cannot be reached, refuses the credentials, or lacks the bucket."""


class MetadataUnavailable(StorageUnavailable):
    """The metadata store (PostgreSQL) could not be reached within the retry window."""


class OnlineStoreUnavailable(StorageUnavailable):
    """The online feature store (Redis) did not answer within its timeout: a 503 while it lasts. A feature
    view that declares ``on_missing="default"`` answers with its defaults instead."""


class DiskFull(MloopError):
    """A disk mloop writes to is full: the message names the folder and the setting that points there.
    What was being written was not half-written; the same call succeeds once there is room."""


class ComputeUnavailable(MloopError):
    """The compute cluster (Ray) cannot be reached, or lost a task: its worker or node died."""


class IntegrityError(MloopError):
    """Stored data failed a check: a blob whose checksum does not match, a broken audit chain."""


class SchemaError(MloopError):
    """A dataset schema is invalid, or does not fit the data it is applied to."""


class MalformedInput(MloopError):
    """A file cannot be read as what it claims to be (truncated Parquet, wrong CSV delimiter, ...)."""


class TooManyRequests(MloopError):
    """A caller went over its rate limit; ``retry_after`` says in how many seconds a request would pass."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Overloaded(MloopError):
    """The server is at its concurrency cap and sheds the request instead of queueing it without bound."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PredictionTimeout(MloopError):
    """A model call ran past its endpoint's ``timeout_ms`` deployment option; the caller gets a 504."""


class PayloadTooLarge(MloopError):
    """A request body is over the server's size limit."""
