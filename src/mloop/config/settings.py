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
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mloop.config.explain import ExplainSettings
from mloop.config.monitoring import MonitoringSettings
from mloop.config.pipelines import Pipeline
from mloop.config.review import ReviewSettings
from mloop.config.sections import (
    STATE_DIR,
    ComputeSettings,
    EncryptionSettings,
    LoopSettings,
    OidcSettings,
    PiiSettings,
    RetentionSettings,
    ServingSettings,
    UISettings,
)
from mloop.errors import ConfigError

CONFIG_FILE = "mloop.yaml"
_SECRET_FIELDS = {"api_key", "audit_key", "data_key"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


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
