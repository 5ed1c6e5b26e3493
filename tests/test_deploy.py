"""The deployment recipes in deploy/ (docs/deploy.md) against the code they configure.

No container is built and no cluster is started here. What can drift without either is checked: every
setting and ``MLOOP_*`` variable the manifests use is one mloop reads, and their mloop.yaml loads with the
environment the manifests give; the health paths the probes and the image ask are routes that answer;
the commands' flags are options of those commands; the extras the images install exist; and the objects
refer to each other by names that exist.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from fastapi.testclient import TestClient
from typer.exceptions import TyperException

from mloop import Project
from mloop.cli.main import app as cli_app
from mloop.config.settings import CONFIG_FILE, Settings, load_settings
from mloop.serving.http.app import create_app

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
DOCKERFILES = [DEPLOY / "Dockerfile", DEPLOY / "Dockerfile.ray-worker"]
CLI_ENV = {"MLOOP_PROJECT_DIR"}  # read by the CLI's -C option, not a setting


def documents() -> list[dict[str, Any]]:
    """Every object of every manifest, the Secret template included."""
    paths = [*sorted(KUBERNETES.rglob("*.yaml")), KUBERNETES / "secret.yaml.template"]
    return [doc for path in paths for doc in yaml.safe_load_all(path.read_text()) if doc]


def find(kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in documents() if d["kind"] == kind and name in (None, d["metadata"]["name"])]


def pod_specs() -> Iterator[dict[str, Any]]:
    """The pod templates of the Deployment, the Job and the RayCluster's head and workers."""
    for doc in documents():
        spec = doc.get("spec", {})
        if "template" in spec:
            yield spec["template"]["spec"]
        if doc["kind"] == "RayCluster":
            yield spec["headGroupSpec"]["template"]["spec"]
            yield from (group["template"]["spec"] for group in spec["workerGroupSpecs"])


def containers() -> Iterator[dict[str, Any]]:
    for pod in pod_specs():
        yield from pod["containers"]


def secret_keys() -> set[str]:
    keys: set[str] = set()
    for secret in find("Secret"):
        keys |= set(secret.get("stringData", {})) | set(secret.get("data", {}))
    return keys


def environment(container: dict[str, Any]) -> dict[str, str]:
    """The variables a container gets: its ``env`` values and, with a placeholder value, its Secrets' keys."""
    env = {item["name"]: item["value"] for item in container.get("env", [])}
    for source in container.get("envFrom", []):
        secret = find("Secret", source["secretRef"]["name"])
        assert secret, (
            f"{container['name']} reads the Secret {source['secretRef']['name']}, which no manifest defines"
        )
        env |= dict.fromkeys(secret[0]["stringData"], "0123456789abcdef" * 4)
    return env


def mloop_yaml() -> str:
    return find("ConfigMap", "mloop-config")[0]["data"][CONFIG_FILE]


def dockerfile_cmd(path: Path) -> list[str]:
    found = re.search(r"^CMD (\[.*\])$", path.read_text(), re.M)
    assert found, f"{path} has no CMD in exec form"
    return list(json.loads(found.group(1)))


def test_every_mloop_variable_of_the_manifests_and_images_is_a_setting() -> None:
    names = {name for c in containers() for name in environment(c)} | secret_keys()
    for path in DOCKERFILES:
        names |= set(re.findall(r"\b(MLOOP_[A-Z_]+)=", path.read_text()))
    settings = {f"MLOOP_{field.upper()}" for field in Settings.model_fields}
    unknown = {n for n in names if n.startswith("MLOOP_")} - settings - CLI_ENV
    assert not unknown, f"not mloop settings: {sorted(unknown)}"


def test_the_configmap_loads_with_the_environment_of_every_container(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text(mloop_yaml())
    for container in containers():
        settings = load_settings(
            tmp_path, env=environment(container)
        )  # unknown keys, bad values: ConfigError
        assert settings.metadata_url.startswith("postgresql+psycopg://mloop:")
        assert settings.online_url.startswith("redis://")
        assert settings.artifact_url.startswith("s3://")
        assert settings.local_admin is False
        assert "REPLACE_ME" not in settings.metadata_url  # the password came from the Secret, ${PGPASSWORD}


def test_the_pii_key_file_is_where_the_secret_is_mounted() -> None:
    key_file = Path(yaml.safe_load(mloop_yaml())["pii"]["key_file"])
    deployment = find("Deployment", "mloop-serve")[0]["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in deployment["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["volumes"]}
    pii = next(
        name for name, volume in volumes.items() if volume.get("secret", {}).get("secretName") == "mloop-pii"
    )
    assert Path(mounts[pii]) / key_file.name == key_file
    assert key_file.name in find("Secret", "mloop-pii")[0]["data"]


def test_the_objects_refer_to_names_that_exist() -> None:
    deployment = find("Deployment", "mloop-serve")[0]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert find("Service", "mloop")[0]["spec"]["selector"].items() <= labels.items()
    assert find("HorizontalPodAutoscaler")[0]["spec"]["scaleTargetRef"]["name"] == "mloop-serve"
    for pod in pod_specs():
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                assert find("ConfigMap", volume["configMap"]["name"])
            if "persistentVolumeClaim" in volume:
                assert find("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
            if "secret" in volume:
                assert find("Secret", volume["secret"]["secretName"])


def test_probes_and_healthcheck_ask_routes_that_answer(sqlite_project: Project) -> None:
    paths = set(re.findall(r"http://127\.0\.0\.1:8700(/[\w/]+)", (DEPLOY / "Dockerfile").read_text()))
    deployment = find("Deployment", "mloop-serve")[0]["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in deployment["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        paths.add(deployment[probe]["httpGet"]["path"])
        assert ports[deployment[probe]["httpGet"]["port"]] == 8700
    assert paths == {"/v2/health/live", "/v2/health/ready"}
    with TestClient(create_app(sqlite_project)) as client:
        for path in sorted(paths):  # no API key: a probe sends none
            assert client.get(path).status_code == 200, path
    assert "EXPOSE 8700" in (DEPLOY / "Dockerfile").read_text()


def _parse(argv: list[str]) -> typer.Context:
    """``argv`` (``mloop SUBCOMMAND ...``) parsed by the CLI without running it: an unknown option or a
    bad value raises a usage error."""
    assert argv[0] == "mloop", argv
    group: Any = typer.main.get_command(cli_app)  # typer's own copy of click's Group
    with group.make_context("mloop", [], resilient_parsing=True) as parent:
        command = group.get_command(parent, argv[1])
        assert command is not None, f"no command mloop {argv[1]}"
        return command.make_context(argv[1], list(argv[2:]), parent=parent)


@pytest.mark.parametrize("source", ["Dockerfile", "manifests"])
def test_the_commands_flags_are_options_of_the_commands(source: str) -> None:
    if source == "Dockerfile":
        commands = [dockerfile_cmd(DEPLOY / "Dockerfile")]
    else:
        commands = [c["command"] for c in containers() if c.get("command", [""])[0] == "mloop"]
    assert commands
    for argv in commands:
        context = _parse(argv)
        if argv[1] == "serve":
            assert context.params["host"] == "0.0.0.0" and context.params["port"] == 8700


def test_a_misspelt_flag_is_caught() -> None:
    with pytest.raises(TyperException, match="No such option"):
        _parse(["mloop", "serve", "--hots", "0.0.0.0"])


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_the_extras_the_images_install_exist(path: Path) -> None:
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    installed = re.findall(r'pip install "\.\[([\w,]+)\]"', path.read_text())
    assert installed, f"{path.name} installs no extras"
    assert set(",".join(installed).split(",")) <= extras
