"""Settings: ``mloop.yaml`` in the project folder, overridden by ``MLOOP_*`` environment variables.

Settings are typed and validated once, here; components receive a :class:`Settings` and never read the
environment themselves. Secrets (API keys, passwords) come only from the environment: ``mloop.yaml`` is
meant to be committed, so a secret written there is refused with the name of the variable to use instead.
Values in ``mloop.yaml`` may refer to the environment as ``${NAME}``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mloop.config.explain import ExplainSettings
from mloop.config.monitoring import MonitoringSettings
from mloop.config.pipelines import Pipeline
from mloop.config.review import ReviewSettings
from mloop.errors import ConfigError, SchemaError

CONFIG_FILE = "mloop.yaml"
STATE_DIR = ".mloop"
_SECRET_FIELDS = {"api_key", "audit_key", "data_key"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


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


class Settings(BaseSettings):
    """Every setting of a project, with the embedded defaults that need no server."""

    model_config = SettingsConfigDict(env_prefix="MLOOP_", extra="forbid", validate_default=True)

    project: str | None = Field(None, description="Project name; defaults to the folder name.")
    metadata_url: str = Field(
        f"sqlite:///{STATE_DIR}/mloop.db",
        description="SQLAlchemy URL of the metadata store: sqlite:///path or postgresql+psycopg://...",
    )
    metadata_retry_seconds: float = Field(
        30.0,
        ge=0,
        description="How long a write waits, retrying with back-off, for a metadata server that cannot be "
        "reached (PostgreSQL restarting) before it fails; 0 fails at once. Embedded SQLite never waits.",
    )
    artifact_url: str = Field(
        f"{STATE_DIR}/artifacts", description="Folder or fsspec URL (s3://, gs://, memory://) for artifacts."
    )
    data_url: str = Field(
        f"{STATE_DIR}/data",
        description="Folder or s3://bucket/prefix for datasets, quarantine and the other data files.",
    )
    prediction_spool: str = Field(
        f"{STATE_DIR}/predictions",
        description="Local folder of this server's prediction-log segments when data_url is on S3.",
    )
    scratch_dir: str = Field(
        f"{STATE_DIR}/tmp",
        description="Local folder for staging and spill when data_url is on object storage (s3://).",
    )
    online_url: str = Field(
        f"{STATE_DIR}/online.db",
        description="Online feature store: a SQLite file (default) or redis://host:6379/0.",
    )
    online_timeout_ms: int = Field(
        200, ge=1, le=60_000,
        description="Bound on one serving read of a Redis online store (connect, then answer); past it the "
        "read fails: 503, or the defaults of views that declare on_missing: default.",
    )  # fmt: skip
    require_approval: bool = Field(
        False, description="Production promotions wait for a second mlops user to approve them."
    )
    local_user: str = Field("local-admin", description="Who local CLI and Python use runs as.")
    local_admin: bool = Field(
        True, description="Run local use as an admin when no API key is given; false on shared servers."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: coloured on a terminal, JSON lines otherwise."
    )
    api_key: SecretStr | None = Field(
        None, description="API key to act as (MLOOP_API_KEY; never in the file)."
    )
    audit_key: SecretStr | None = Field(
        None,
        description="Key of the audit chain's HMACs (MLOOP_AUDIT_KEY, at least 32 bytes; never in the file).",
    )
    audit_anchor: str = Field(
        f"{STATE_DIR}/audit-anchor.log",
        description="File each keyed audit event is anchored in; keep it where the database's writer cannot "
        "truncate it.",
    )
    data_key: SecretStr | None = Field(
        None,
        description="Master key of encryption at rest (MLOOP_DATA_KEY, 32 bytes as hex or base64; never "
        "in the file).",
    )
    oidc: OidcSettings | None = Field(
        None, description="Accept single sign-on tokens (see docs/security.md)."
    )
    serving: ServingSettings = Field(default_factory=ServingSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    loop: LoopSettings = Field(default_factory=LoopSettings)
    pii: PiiSettings = Field(default_factory=PiiSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    encryption: EncryptionSettings = Field(default_factory=EncryptionSettings)
    compute: ComputeSettings = Field(default_factory=ComputeSettings)
    ui: UISettings = Field(default_factory=UISettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    explain: ExplainSettings = Field(default_factory=ExplainSettings)
    pipelines: dict[str, Pipeline] = Field(
        default_factory=dict, description="Multi-stage endpoints by name (docs/recsys.md)."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings reads the environment it is given (MLOOP_* beat mloop.yaml) and passes the merged
        # values in; reading os.environ here as well would let the process environment leak past env={}.
        return (init_settings,)

    def resolved(self, root: Path) -> Settings:
        """A copy whose relative paths and sqlite URLs are made absolute against the project ``root``."""
        return self.model_copy(
            update={
                "project": self.project or root.resolve().name,
                "metadata_url": _resolve_sqlite(self.metadata_url, root),
                "artifact_url": _resolve_location(self.artifact_url, root),
                "data_url": _resolve_location(self.data_url, root),
                "scratch_dir": _resolve_location(self.scratch_dir, root),
                "prediction_spool": _resolve_location(self.prediction_spool, root),
                "online_url": _resolve_online(self.online_url, root),
                "audit_anchor": str(root / self.audit_anchor),
                "pii": self.pii.model_copy(update={"key_file": str(root / self.pii.key_file)}),
                "encryption": self.encryption.model_copy(
                    update={"key_file": self.encryption.key_file and str(root / self.encryption.key_file)}
                ),
            }
        )


def find_project_root(path: Path) -> Path | None:
    """The nearest of ``path`` and its parents holding ``mloop.yaml`` or ``.mloop/``; None if none does."""
    start = path.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file() or (folder / STATE_DIR).is_dir():
            return folder
    return None


def existing_project_root(path: Path) -> Path:
    """:func:`find_project_root`, where there being none is an error that says where it looked."""
    found = find_project_root(path)
    if found is None:
        raise ConfigError(
            f"no mloop project here (looked for {CONFIG_FILE} / {STATE_DIR} in {path.resolve()} and its parents); "
            "run `mloop init` or pass -C DIR"
        )
    return found


def load_settings(root: Path, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read ``root/mloop.yaml`` (if any), apply ``MLOOP_*`` variables from ``env`` and ``overrides``."""
    env = os.environ if env is None else env
    file_values = _read_config_file(root / CONFIG_FILE, env)
    env_values = {
        name: env[f"MLOOP_{name.upper()}"] for name in Settings.model_fields if f"MLOOP_{name.upper()}" in env
    }
    values = {**file_values, **env_values, **overrides}
    try:
        # Validate through the model alone, so the process environment is read exactly once, above.
        return Settings.model_validate(values)
    except ValidationError as exc:
        from_env = set(env_values) - set(overrides)
        raise ConfigError(_describe(exc, root / CONFIG_FILE, from_env)) from None


def _read_config_file(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{path} is not valid YAML: {exc}. Fix the syntax or run `mloop init --force`."
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings (key: value), not {type(data).__name__}.")
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)}. Known settings: "
            f"{', '.join(sorted(Settings.model_fields))}."
        )
    secrets = sorted(set(data) & _SECRET_FIELDS)
    if secrets:
        raise ConfigError(
            f"{path} holds the secret {secrets[0]!r}; secrets come only from the environment. "
            f"Remove it from the file and set MLOOP_{secrets[0].upper()} instead."
        )
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, str):
            if _has_literal_password(value):
                raise ConfigError(
                    f"{path}: {key} contains a password. Write it as ${{VARIABLE}} "
                    f"(for example postgresql+psycopg://mloop:${{PGPASSWORD}}@db/mloop) and set the variable."
                )
            value = _interpolate(value, env, path, key)
        out[key] = value
    return out


def _interpolate(value: str, env: Mapping[str, str], path: Path, key: str) -> str:
    password = _url_password(value)

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(
                f"{path}: {key} refers to ${{{name}}}, but the variable {name} is not set. "
                f"Set it (export {name}=...) before running mloop, or change {key} in the file."
            )
        # A password such as 'p@ss/word' must be URL-quoted, or it would break the URL it is put into.
        return quote(env[name], safe="") if match.group(0) == password else env[name]

    return _VAR.sub(substitute, value)


def _has_literal_password(value: str) -> bool:
    password = _url_password(value)
    return password is not None and password != "" and not _VAR.fullmatch(password)


def _url_password(value: str) -> str | None:
    if "://" not in value:
        return None
    try:
        return urlsplit(value).password
    except ValueError:  # not a well-formed URL; whatever reads the setting will say so
        return None


def _resolve_sqlite(url: str, root: Path) -> str:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite:///:memory:":
        return url
    path = Path(url[len(prefix) :])
    if not path.is_absolute():
        path = root.resolve() / path
    return prefix + str(path)


def _resolve_online(url: str, root: Path) -> str:
    if url.startswith("sqlite:///"):
        return _resolve_sqlite(url, root)
    if "://" in url:
        return url
    return _resolve_location(url, root)


def _resolve_location(location: str, root: Path) -> str:
    if location.startswith("file://"):
        location = location[len("file://") :]
    elif "://" in location:
        return location
    path = Path(location).expanduser()
    return str(path if path.is_absolute() else root.resolve() / path)


def _describe(exc: ValidationError, path: Path, from_env: set[str]) -> str:
    """One line per problem, naming where the value came from (the file or the variable) and its key."""
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        top = str(error["loc"][0]) if error["loc"] else ""
        where = f"MLOOP_{top.upper()}" if top in from_env else str(path)
        if error["type"] == "value_error":  # our own validators: the message quotes the value and the fix
            problems.append(f"{where}: {name}: {error['msg'].removeprefix('Value error, ')}")
        else:
            problems.append(f"{where}: {name}: {error['msg']} (got {error.get('input')!r})")
    sources = f" (settings come from {path} and MLOOP_* variables)" if from_env else ""
    fix = f". Fix the value{sources}, or run `mloop init --force` to write a fresh mloop.yaml."
    return "; ".join(problems) + fix


CONFIG_TEMPLATE = """\
# mloop project settings. Every value can be overridden by an environment variable
# MLOOP_<NAME> (for example MLOOP_METADATA_URL). Secrets (MLOOP_API_KEY, passwords)
# come only from the environment; refer to one here as ${{NAME}}.

# Project name: every object is stored under it, so several projects can share one metadata store.
project: {project}

# Metadata store (experiments, runs, models, deployments, users, audit events).
#   embedded default: sqlite:///.mloop/mloop.db (WAL mode)
#   team server:      postgresql+psycopg://mloop:${{PGPASSWORD}}@db.internal:5432/mloop
metadata_url: sqlite:///.mloop/mloop.db

# Artifact store (models and other blobs, content-addressed by sha256):
# a folder, or any fsspec URL such as s3://bucket/mloop (pip install 'mloop[s3]').
artifact_url: .mloop/artifacts

# Ingested datasets (Parquet, partitioned by date) and their quarantine files: a folder, or
# s3://bucket/prefix (endpoint and credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...).
data_url: .mloop/data

# Online feature store, for serving: a SQLite file (default) or a Redis server
# (redis://redis.internal:6379/0, pip install 'mloop[redis]').
online_url: .mloop/online.db
# Redis only: how long a serving read may wait for it (connect, then answer) before the request is
# answered 503, or with the declared defaults of views with on_missing: default.
online_timeout_ms: 200

# Model registry: when true, promoting a model version to production waits until a second user
# with the mlops role approves it (mloop models approve NAME VERSION).
require_approval: false

# Local use (CLI and Python without an API key) runs as this user, with the admin role.
# On a shared server set local_admin: false and give everyone an API key (MLOOP_API_KEY).
local_user: local-admin
local_admin: true

# Logs: DEBUG, INFO, WARNING or ERROR; format auto (coloured on a terminal, JSON lines otherwise),
# json or console.
log_level: INFO
log_format: auto

# The inference service (mloop serve). Requests in flight per worker beyond max_concurrency, and new
# requests while the worker's event loop stays more than max_queue_ms behind, are shed with 503;
# rate_limit is requests per second per API key (429 + Retry-After), counted in each server process,
# or across every replica when rate_limit_url is redis://host:6379/0; max_batch_size > 1 groups
# concurrent requests into one model call, waiting at most max_wait_ms; cache_size > 0 caches answers.
# metrics_auth: whether GET /metrics needs an API key (null: when local_admin is false); explain_priority:
# idle or normal, for the child that explains sampled answers (docs/explain.md). timeout_ms: a model call
# past it answers 504 (a deployment's timeout_ms option replaces it per endpoint; null: no limit).
serving:
  max_concurrency: 64
  max_queue_ms: 10.0
  max_body_bytes: 1048576
  rate_limit: null
  rate_limit_url: null
  max_batch_size: 1
  max_wait_ms: 2.0
  cache_size: 0
  timeout_ms: null
  metrics_auth: null
  explain_priority: idle

# Monitoring (mloop monitor ...): drift and performance over tumbling windows of the prediction log,
# recomputed for label_horizon as late labels arrive; SLOs per endpoint; alert sinks (none: the log),
# e.g. [{{kind: webhook, url: "https://..."}}, {{kind: alertmanager, url: "http://am:9093"}}].
# See docs/monitoring.md.
monitoring:
  window: 1h
  label_horizon: 7d
  sinks: []
  endpoints: {{}}
  # endpoints:
  #   fraud:
  #     drift: {{thresholds: {{psi: 0.2}}}}
  #     performance: {{slices: [channel], metrics: {{roc_auc: 0.85}}}}
  #     slos:
  #       - {{kind: latency, target: 0.99, threshold_ms: 50}}
  #       - {{kind: availability, target: 0.999}}
  #       - {{kind: quality, metric: roc_auc, min: 0.85, window: 1d}}

# Where training runs, search trials, batch scoring and materialization run: inprocess (default),
# process (a local pool), ray (a local Ray started on demand; pip install 'mloop[ray]'), ray:HOST:PORT
# (join a Ray cluster at its GCS address) or ray://HOST:PORT (Ray Client). The rest is what each Ray
# task reserves, and how often a task whose node died is rerun. See docs/deploy.md.
compute:
  executor: inprocess
  cpus_per_task: 1.0
  memory_per_task: null
  gpus_per_task: 0.0
  max_retries: 2

# The continuous-training loop (mloop loop run | tick): per endpoint, a training pipeline (an import
# path), its triggers, the gate, the canary rollout. See docs/loop.md.
loop:
  interval_seconds: 30.0
  lease_seconds: 60.0
  policies: []
  # policies:
  #   - endpoint: fraud
  #     pipeline: my_project.pipelines:fraud
  #     triggers: [{{schedule: "0 3 * * *"}}, {{drift: {{psi: 0.2, features: "top:5"}}}}]
  #     gate: {{metric: auc, min_gain: 0.0, max_latency_ms: 20}}
  #     rollout: {{steps: [0.05, 0.25, 1.0], min_requests: 500, max_error_rate: 0.01}}
"""
