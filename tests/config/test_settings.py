"""Settings: defaults, mloop.yaml, MLOOP_* variables, secrets only from the environment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import hypothesis
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from mloop import Project
from mloop.config import CONFIG_FILE, Settings, load_settings
from mloop.errors import ConfigError


def write_config(root: Path, text: str) -> Path:
    path = root / CONFIG_FILE
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_need_no_file_and_no_server(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, env={})
    assert settings.model_dump() == {
        "project": None,
        "metadata_url": "sqlite:///.mloop/mloop.db",
        "metadata_retry_seconds": 30.0,
        "artifact_url": ".mloop/artifacts",
        "data_url": ".mloop/data",
        "prediction_spool": ".mloop/predictions",
        "scratch_dir": ".mloop/tmp",
        "online_url": ".mloop/online.db",
        "online_timeout_ms": 200,
        "require_approval": False,
        "local_user": "local-admin",
        "local_admin": True,
        "log_level": "INFO",
        "log_format": "auto",
        "api_key": None,
        "audit_key": None,
        "audit_anchor": ".mloop/audit-anchor.log",
        "data_key": None,
        "oidc": None,
        "serving": {
            "max_concurrency": 64,
            "max_queue_ms": 10.0,
            "max_body_bytes": 1_048_576,
            "rate_limit": None,
            "rate_burst": None,
            "rate_limits": {},
            "rate_limit_url": None,
            "max_batch_size": 1,
            "max_wait_ms": 2.0,
            "cache_size": 0,
            "timeout_ms": None,
            "metrics_auth": None,
            "log_segment_seconds": 60.0,
            "explain_priority": "idle",
        },
        "monitoring": {
            "window": timedelta(hours=1),
            "label_horizon": timedelta(days=7),
            "sinks": [],
            "endpoints": {},
        },
        "loop": {"policies": [], "jobs": [], "interval_seconds": 30.0, "lease_seconds": 60.0},
        "pii": {"prediction_log": "hash", "key_file": ".mloop/pii.key"},
        "retention": {"prediction_log_days": None, "quarantine_days": None},
        "encryption": {"enabled": False, "key_file": None},
        "compute": {
            "executor": "inprocess",
            "cpus_per_task": 1.0,
            "memory_per_task": None,
            "gpus_per_task": 0.0,
            "max_retries": 2,
            "local_cpus": None,
        },
        "ui": {"session_secret": None},
        "review": {
            "requirements": {},
            "prices": {
                "currency": "USD",
                "core_hour": 0.04,
                "gb_hour": 0.005,
                "gpu_hour": 2.5,
                "storage_gb_month": 0.023,
            },
            "energy": {
                "watts_per_core": 12.0,
                "watts_per_gb": 0.375,
                "gpu_watts": 300.0,
                "pue": 1.4,
                "grams_co2e_per_kwh": 400.0,
            },
            "thresholds": {
                "quarantine_share": 0.05,
                "key_age_days": 90,
                "idle_days": 7,
                "stale_model_days": 90,
                "sqlite_writes_per_second": 50.0,
                "local_log_rows_per_second": 2000.0,
            },
            "evidence": {},
        },
        "explain": {"counterfactuals": {}},
        "pipelines": {},
    }


def test_values_come_from_mloop_yaml(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        "project: fraud\nartifact_url: s3://models/fraud\nlocal_admin: false\nlog_level: DEBUG\n",
    )
    settings = load_settings(tmp_path, env={})
    assert (settings.project, settings.artifact_url, settings.local_admin, settings.log_level) == (
        "fraud",
        "s3://models/fraud",
        False,
        "DEBUG",
    )
    assert settings.log_format == "auto"  # what the file leaves out keeps its default


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    write_config(tmp_path, "# nothing set yet\n")
    assert load_settings(tmp_path, env={}) == load_settings(tmp_path / "..", env={})


def test_the_environment_beats_the_file_and_arguments_beat_both(tmp_path: Path) -> None:
    write_config(tmp_path, "log_level: DEBUG\nlocal_user: alice\nlocal_admin: true\n")
    env = {"MLOOP_LOG_LEVEL": "ERROR", "MLOOP_LOCAL_ADMIN": "false", "MLOOP_REQUIRE_SERVICES": "1"}
    settings = load_settings(tmp_path, env=env, local_user="bob")
    assert (settings.log_level, settings.local_admin, settings.local_user) == ("ERROR", False, "bob")


def test_only_the_given_environment_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOOP_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("MLOOP_API_KEY", "mlk_from_the_process")
    isolated = load_settings(tmp_path, env={})
    assert (isolated.log_level, isolated.api_key) == ("INFO", None)
    from_process = load_settings(tmp_path)
    assert from_process.log_level == "DEBUG"
    assert from_process.api_key is not None
    assert from_process.api_key.get_secret_value() == "mlk_from_the_process"


def test_the_api_key_comes_from_the_environment_and_is_not_shown(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, env={"MLOOP_API_KEY": "mlk_0123456789ab_hushhush"})
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "mlk_0123456789ab_hushhush"
    assert "hushhush" not in repr(settings) and "hushhush" not in str(settings.model_dump())


# ---- mistakes in the file ------------------------------------------------------------------------------


def test_an_unknown_setting_lists_the_known_ones(tmp_path: Path) -> None:
    write_config(tmp_path, "metadata_uri: sqlite:///x.db\n")
    with pytest.raises(ConfigError) as error:
        load_settings(tmp_path, env={})
    assert "unknown setting(s) metadata_uri" in str(error.value)
    assert ", ".join(sorted(Settings.model_fields)) in str(error.value)


def test_a_secret_in_the_file_is_refused_with_the_variable_to_use(tmp_path: Path) -> None:
    write_config(tmp_path, "api_key: mlk_0123456789ab_topsecretvalue\n")
    with pytest.raises(ConfigError, match=r"holds the secret 'api_key'.*set MLOOP_API_KEY instead") as error:
        load_settings(tmp_path, env={})
    assert "topsecretvalue" not in str(error.value)


def test_a_literal_password_in_a_url_is_refused(tmp_path: Path) -> None:
    write_config(tmp_path, "metadata_url: postgresql+psycopg://mloop:hunter2@db/mloop\n")
    with pytest.raises(
        ConfigError, match=r"metadata_url contains a password. Write it as \$\{VARIABLE\}"
    ) as error:
        load_settings(tmp_path, env={"PGPASSWORD": "hunter2"})
    assert "hunter2" not in str(error.value)


def test_a_password_may_come_from_a_variable(tmp_path: Path) -> None:
    write_config(tmp_path, "metadata_url: postgresql+psycopg://mloop:${PGPASSWORD}@db:5432/mloop\n")
    settings = load_settings(tmp_path, env={"PGPASSWORD": "hunter2"})
    assert settings.metadata_url == "postgresql+psycopg://mloop:hunter2@db:5432/mloop"


@hypothesis.settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(password=st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=30))
def test_any_password_from_a_variable_survives_in_the_url(tmp_path: Path, password: str) -> None:
    write_config(tmp_path, "metadata_url: postgresql+psycopg://mloop:${PGPASSWORD}@db:5432/mloop\n")
    url = make_url(load_settings(tmp_path, env={"PGPASSWORD": password}).metadata_url)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "mloop",
        password,
        "db",
        5432,
        "mloop",
    )


def test_other_settings_may_refer_to_variables(tmp_path: Path) -> None:
    write_config(tmp_path, "artifact_url: s3://${BUCKET}/mloop\nlocal_user: ${USER}\n")
    settings = load_settings(tmp_path, env={"BUCKET": "models", "USER": "alice"})
    assert (settings.artifact_url, settings.local_user) == ("s3://models/mloop", "alice")


def test_a_missing_variable_names_it_and_the_setting(tmp_path: Path) -> None:
    write_config(tmp_path, "metadata_url: postgresql+psycopg://mloop:${PGPASSWORD}@db/mloop\n")
    with pytest.raises(
        ConfigError, match=r"metadata_url refers to \$\{PGPASSWORD\}, but the variable PGPASSWORD is not set"
    ):
        load_settings(tmp_path, env={})


@pytest.mark.parametrize(
    ("text", "env", "setting", "value"),
    [
        ("log_level: LOUD\n", {}, "log_level", "'LOUD'"),
        ("local_admin: maybe\n", {}, "local_admin", "'maybe'"),
        ("log_format: xml\n", {}, "log_format", "'xml'"),
        ("", {"MLOOP_LOCAL_ADMIN": "sometimes"}, "local_admin", "'sometimes'"),
        ("metadata_url: [a, b]\n", {}, "metadata_url", "['a', 'b']"),
    ],
)
def test_an_invalid_value_names_the_setting_and_the_value(
    tmp_path: Path, text: str, env: dict[str, str], setting: str, value: str
) -> None:
    write_config(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_settings(tmp_path, env=env)
    message = str(error.value)
    assert f"{setting}: " in message
    assert f"(got {value})" in message
    assert str(tmp_path / CONFIG_FILE) in message
    assert "Fix the value" in message


def test_an_invalid_argument_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="metadata_uri: Extra inputs are not permitted"):
        load_settings(tmp_path, env={}, metadata_uri="sqlite://")


@pytest.mark.parametrize(
    ("text", "problem"),
    [("log_level: [unclosed\n", "is not valid YAML"), ("- a\n- list\n", "must hold a mapping of settings")],
)
def test_a_file_that_is_not_a_mapping_of_settings_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    write_config(tmp_path, text)
    with pytest.raises(ConfigError, match=problem):
        load_settings(tmp_path, env={})


# ---- paths ---------------------------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_project_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, elsewhere = tmp_path / "fraud", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    write_config(root, "metadata_url: sqlite:///state/meta.db\nartifact_url: blobs\ndata_url: file://lake\n")
    monkeypatch.chdir(elsewhere)
    settings = load_settings(root, env={}).resolved(root)
    assert settings.project == "fraud"
    assert settings.metadata_url == f"sqlite:///{root / 'state' / 'meta.db'}"
    assert settings.artifact_url == str(root / "blobs")
    assert settings.data_url == str(root / "lake")


def test_absolute_paths_and_remote_urls_are_kept(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "metadata_url": "postgresql+psycopg://mloop@db/mloop",
            "artifact_url": "s3://models/mloop",
            "data_url": str(tmp_path / "lake"),
        }
    ).resolved(tmp_path / "project")
    assert settings.metadata_url == "postgresql+psycopg://mloop@db/mloop"
    assert settings.artifact_url == "s3://models/mloop"
    assert settings.data_url == str(tmp_path / "lake")
    in_memory = Settings.model_validate({"metadata_url": "sqlite:///:memory:"}).resolved(tmp_path)
    assert in_memory.metadata_url == "sqlite:///:memory:"


# ---- the template written by `mloop init` --------------------------------------------------------------


@pytest.mark.parametrize("name", ["fraud", "yes", "123", "null", "a: b", "#hash", "it's", 'say "hi"', "ünï"])
def test_the_init_template_loads_and_equals_the_defaults(tmp_path: Path, name: str) -> None:
    root = tmp_path / name
    path = Project.init(root)
    from_template = load_settings(root, env={}).resolved(root)
    path.unlink()
    assert from_template == load_settings(root, env={}).resolved(root)
    assert from_template.project == name


def test_online_url_resolves_a_path_against_the_root_and_keeps_a_redis_url(tmp_path: Path) -> None:
    assert load_settings(tmp_path, env={}).resolved(tmp_path).online_url == str(
        tmp_path.resolve() / ".mloop/online.db"
    )
    redis = load_settings(tmp_path, env={"MLOOP_ONLINE_URL": "redis://127.0.0.1:6379/2"}).resolved(tmp_path)
    assert redis.online_url == "redis://127.0.0.1:6379/2"


def test_compute_names_an_executor_and_takes_sizes_with_units(tmp_path: Path) -> None:
    (tmp_path / "mloop.yaml").write_text("compute:\n  executor: ray:10.0.0.5:6379\n  memory_per_task: 2GiB\n")
    compute = load_settings(tmp_path, env={}).compute
    assert (compute.executor, compute.memory_per_task) == ("ray:10.0.0.5:6379", 2 * 2**30)
    (tmp_path / "mloop.yaml").write_text("compute:\n  executor: dask\n")
    with pytest.raises(ConfigError, match=r"compute: executor 'dask' is not one of inprocess, process, ray"):
        load_settings(tmp_path, env={})
