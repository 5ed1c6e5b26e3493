"""The sections of ``mloop.yaml`` that are plain option groups (``serving:``, ``oidc:``, ``loop:``, ``pii:``,
``ui:``, ``retention:``, ``encryption:``, ``compute:``): each a pydantic model that refuses unknown keys.
:class:`~mloop.config.settings.Settings` holds one of each."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from mloop.errors import SchemaError

STATE_DIR = ".mloop"  # the project's state folder, beside mloop.yaml


class ServingSettings(BaseModel):
    """How ``mloop serve`` protects itself and batches (the ``serving:`` block of mloop.yaml)."""

    model_config = ConfigDict(extra="forbid")

    max_concurrency: int = Field(
        64, ge=1, description="Requests in flight per worker; more are shed at once with 503 + Retry-After."
    )
    max_queue_ms: float | None = Field(
        10.0,
        gt=0,
        description="Shed requests with 503 once the event loop has been this far behind for 100 ms; none: off.",
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body; larger ones get 413.")
    rate_limit: float | None = Field(
        None, gt=0, description="Requests per second per API key (a token bucket); none: no limit."
    )
    rate_burst: int | None = Field(
        None, ge=1, description="Bucket size; default twice the rate (at least 1)."
    )
    rate_limits: dict[str, float] = Field(
        default_factory=dict, description="Per-user rates that replace rate_limit, by user name."
    )
    rate_limit_url: str | None = Field(
        None,
        description="Where the rate limit budgets live: redis://host:6379/0 shares one budget per API key "
        "across every replica; none: each server process keeps its own.",
    )
    max_batch_size: int = Field(
        1, ge=1, le=10_000, description="Rows grouped into one model call per version; 1 turns batching off."
    )
    max_wait_ms: float = Field(
        2.0, ge=0, le=1_000, description="Longest a request waits for a batch to fill."
    )
    cache_size: int = Field(
        0, ge=0, description="Answers cached per endpoint (keyed on the full input); 0: off."
    )
    timeout_ms: float | None = Field(
        None,
        ge=1,
        le=600_000,
        description="A model call past this many ms answers 504 (run off the event loop, unbatched); an "
        "endpoint's timeout_ms deployment option replaces it; none: no limit.",
    )
    metrics_auth: bool | None = Field(
        None,
        description="Whether GET /metrics needs an API key with monitoring.read (it names the endpoints, "
        "models and feature views); default: when local_admin is false.",
    )
    log_segment_seconds: float = Field(
        60.0,
        ge=0.1,
        le=3600,
        description="How long the prediction log's current segment is written before it is sealed and "
        "compacted into Parquet: with data_url on S3, how far behind the Parquet there (what other servers "
        "and monitoring read) may be.",
    )
    explain_priority: Literal["idle", "normal"] = Field(
        "idle",
        description="The priority of the child process that explains an endpoint's sampled answers "
        "(explain_sample): idle runs only on CPU time nothing else wants (samples are dropped while the server "
        "is saturated, so answers keep their throughput); normal explains every sample, at a cost to it.",
    )


class OidcSettings(BaseModel):
    """Single sign-on: bearer tokens (JWTs) from an OpenID Connect issuer, mapped to mloop roles (the
    ``oidc:`` block of mloop.yaml). API keys keep working beside them, for services."""

    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(
        description="The tokens' iss claim must equal this (https://login.example.com/realm)."
    )
    audience: str = Field(description="The tokens' aud claim must hold this (the client id of mloop).")
    jwks: str = Field(description="The issuer's signing keys: a JWKS file path, or its https:// URL.")
    username_claim: str = Field("preferred_username", description="The claim that names the user.")
    roles_claim: str = Field(
        "roles", description="The claim (dotted path, e.g. realm_access.roles) that lists the user's groups."
    )
    role_map: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Group -> mloop grants (data_scientist, ml_engineer@endpoint:fraud); a group named like "
        "an mloop role maps to it when not listed.",
    )
    algorithms: list[str] = Field(["RS256", "ES256"], description="Accepted signature algorithms.")
    leeway_seconds: float = Field(30.0, ge=0, le=300, description="Clock skew allowed on exp and nbf.")


class LoopSettings(BaseModel):
    """The ``loop:`` block: the continuous-training policies ``mloop loop run`` acts on."""

    model_config = ConfigDict(extra="forbid")

    policies: list[dict[str, Any]] = Field(default_factory=list, description="See docs/loop.md.")
    jobs: list[dict[str, Any]] = Field(
        default_factory=list, description="Scheduled scoring jobs the controller runs beside the policies."
    )
    interval_seconds: float = Field(
        30.0, gt=0, description="How often mloop loop run evaluates the policies."
    )
    lease_seconds: float = Field(60.0, gt=0, description="How long a silent controller keeps the lease.")


class PiiSettings(BaseModel):
    """The ``pii:`` block: how values tagged ``pii`` are written to the prediction log (docs/security.md)."""

    model_config = ConfigDict(extra="forbid")

    prediction_log: Literal["hash", "mask", "keep"] = Field(
        "hash", description="hash: a keyed HMAC (erasure still finds it); mask: ***; keep: the value."
    )
    key_file: str = Field(
        f"{STATE_DIR}/pii.key", description="The secret key of the hashes, created 0600 on first use."
    )


class UISettings(BaseModel):
    """The dashboard at ``/ui`` (the ``ui:`` block of mloop.yaml; docs/ui.md)."""

    model_config = ConfigDict(extra="forbid")

    session_secret: SecretStr | None = Field(
        None,
        description="Seals the dashboard's login cookies; set the same one on every replica behind a load "
        "balancer. Unset: a random one kept in .mloop/ui.secret, shared by the workers of one server.",
    )


class RetentionSettings(BaseModel):
    """The ``retention:`` block: days to keep before ``mloop retention purge`` (and ``mloop serve``,
    hourly) deletes; null keeps forever."""

    model_config = ConfigDict(extra="forbid")

    prediction_log_days: int | None = Field(None, ge=1, description="Prediction-log days to keep.")
    quarantine_days: int | None = Field(None, ge=1, description="Days to keep quarantined rows.")


class EncryptionSettings(BaseModel):
    """The ``encryption:`` block: encryption at rest of datasets, the prediction log and artifacts. The
    master key comes from ``MLOOP_DATA_KEY`` or ``key_file``, never from this block (docs/security.md)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="Encrypt new Parquet files and artifact blobs.")
    key_file: str | None = Field(
        None,
        description="File holding the 32-byte master key (hex or base64, mode 0600); relative to the "
        "project folder. MLOOP_DATA_KEY wins over it.",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_key_literal(cls, data: Any) -> Any:
        if isinstance(data, dict) and {"key", "data_key", "master_key"} & set(data):
            raise ValueError(
                "the encryption key is a secret and never goes in mloop.yaml: remove it, and set "
                "MLOOP_DATA_KEY or point encryption.key_file at a file holding it"
            )
        return data


class ComputeSettings(BaseModel):
    """The ``compute:`` block: where training runs, search trials, batch scoring and materialization run,
    and what each task may use (docs/deploy.md#ray)."""

    model_config = ConfigDict(extra="forbid")

    executor: str = Field(
        "inprocess",
        description="inprocess (default), process (a local process pool), ray (a local Ray started on demand, "
        "or the one this process is connected to), ray:HOST:PORT (join a cluster at its GCS address) or "
        "ray://HOST:PORT (Ray Client).",
    )
    cpus_per_task: float = Field(1.0, gt=0, description="CPUs Ray reserves for each task.")
    memory_per_task: int | None = Field(
        None,
        ge=1,
        description="Bytes of memory Ray reserves for each task, or a size like 2GiB; none: no reservation.",
    )
    gpus_per_task: float = Field(0.0, ge=0, description="GPUs Ray reserves for each task (0: none).")
    max_retries: int = Field(
        2, ge=0, description="Times Ray reruns a task whose worker or node died before reporting it lost."
    )
    local_cpus: int | None = Field(
        None, ge=1, description="CPUs of a local Ray started on demand (executor: ray); default min(CPUs, 8)."
    )

    @model_validator(mode="before")
    @classmethod
    def _sizes(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("memory_per_task"), str):
            data = {**data, "memory_per_task": _bytes(data["memory_per_task"])}
        return data

    def with_executor(self, executor: str | None) -> ComputeSettings:
        """These settings with ``executor`` instead of the configured one (a command's ``--executor``);
        an unknown name is a :class:`SchemaError` listing the choices, as in mloop.yaml."""
        if executor is None:
            return self
        try:
            return type(self).model_validate({**self.model_dump(), "executor": executor})
        except ValueError as exc:
            raise SchemaError(f"executor {executor!r} is not one of inprocess, process, ray, ray:HOST:PORT or "
                              "ray://HOST:PORT.") from exc  # fmt: skip

    @model_validator(mode="after")
    def _known_executor(self) -> ComputeSettings:
        name = self.executor
        if name in ("inprocess", "process", "ray") or name.startswith(("ray:", "ray://")):
            return self
        raise ValueError(
            f"executor {name!r} is not one of inprocess, process, ray, ray:HOST:PORT (a Ray cluster's GCS "
            "address) or ray://HOST:PORT (Ray Client)"
        )


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def _bytes(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if match is None or match.group(2).lower() not in _UNITS:
        raise ValueError(f"memory_per_task {text!r} is not a size; write bytes or a size like 512MiB or 2GiB")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])
