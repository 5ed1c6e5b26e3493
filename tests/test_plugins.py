"""The plugin loader: a table of ``name -> "module:Class [extra]"``, imported only on lookup."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import mloop
from mloop.errors import BackendNotInstalled, ConfigError, MloopError
from mloop.plugins import Plugins


@pytest.fixture
def make_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Writes a module with the given source under a fresh name on sys.path; returns its name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    made: list[str] = []

    def make(source: str) -> str:
        name = f"fake_backend_{uuid.uuid4().hex}"
        (tmp_path / f"{name}.py").write_text(source)
        made.append(name)
        return name

    yield make
    for name in made:
        sys.modules.pop(name, None)


def test_an_unknown_name_lists_the_choices() -> None:
    table = Plugins("executor", {"inprocess": "a:B", "process": "a:C"})
    with pytest.raises(ConfigError, match=r"^Unknown executor 'ray'; choose one of inprocess, process\.$"):
        table.load("ray")


def test_the_caller_words_the_unknown_name_error_and_chooses_its_class() -> None:
    table = Plugins(
        "model flavour",
        {"sklearn": "a:B"},
        unknown="{where}: no {kind} {name!r} ({choices})",
        error=MloopError,
    )
    with pytest.raises(MloopError, match=r"^model.yaml: no model flavour 'onnx' \(sklearn\)$") as caught:
        table.load("onnx", where="model.yaml")
    assert not isinstance(caught.value, ConfigError)


def test_lookup_returns_the_class_and_imports_it_only_then(make_module: Callable[[str], str]) -> None:
    module = make_module("class Backend:\n    kind = 'fake'\n")
    table = Plugins("store", {"fake": f"{module}:Backend"})
    assert module not in sys.modules
    with pytest.raises(ConfigError):
        table.load("other")
    assert module not in sys.modules
    assert table.load("fake").kind == "fake"
    assert module in sys.modules


def test_a_missing_package_names_the_extra_to_install(make_module: Callable[[str], str]) -> None:
    module = make_module("import mloop_tests_no_such_package\n\nclass Backend:\n    pass\n")
    table = Plugins("online store", {"sqlite": "x:Y", "fake": f"{module}:Backend [redis]"})
    with pytest.raises(BackendNotInstalled, match="online store 'fake'") as caught:
        table.load("fake")
    message = str(caught.value)
    assert "'mloop_tests_no_such_package', which is not installed" in message
    assert message.endswith("pip install 'mloop[redis]'.")


def test_without_an_extra_the_error_offers_the_other_choices(make_module: Callable[[str], str]) -> None:
    module = make_module("import mloop_tests_no_such_package\n")
    table = Plugins("executor", {"inprocess": "x:Y", "ray": f"{module}:RayExecutor", "process": "x:Z"})
    with pytest.raises(BackendNotInstalled, match=r"install the package that provides it, or choose another "
                       r"executor \(inprocess, process\)\."):  # fmt: skip
        table.load("ray")


def test_a_missing_module_of_mloop_itself_is_a_bug_not_an_extra(make_module: Callable[[str], str]) -> None:
    module = make_module("import mloop.no_such_module\n")
    with pytest.raises(ModuleNotFoundError) as caught:
        Plugins("store", {"fake": f"{module}:Backend [redis]"}).load("fake")
    assert not isinstance(caught.value, BackendNotInstalled)


def test_a_malformed_entry_says_how_to_write_one() -> None:
    with pytest.raises(
        ConfigError, match=r"entry 'fake' is 'mloop\.store'; write it as 'package\.module:Class'"
    ):
        Plugins("store", {"fake": "mloop.store"}).load("fake")


def test_a_table_is_a_mapping_one_entry_extends() -> None:
    table = Plugins("executor", {"inprocess": "mloop.training.executors:InProcessExecutor"})
    table["mine"] = "mloop.training.executors:LocalProcessExecutor"
    assert list(table) == ["inprocess", "mine"]
    assert table.load("mine").__name__ == "LocalProcessExecutor"


# mloop's own tables


def tables() -> list[Plugins]:
    from mloop.artifacts import BACKENDS as artifact_stores
    from mloop.features.online import BACKENDS as online_stores
    from mloop.models.flavours import FLAVOURS
    from mloop.monitoring.alerts import SINKS
    from mloop.store import BACKENDS as metadata_stores
    from mloop.training.executors import EXECUTORS

    return [metadata_stores, online_stores, artifact_stores, EXECUTORS, FLAVOURS, SINKS]


@pytest.mark.parametrize("table", tables(), ids=lambda table: table.kind)
def test_every_entry_of_mloops_tables_loads_a_class(table: Plugins) -> None:
    for name in table:
        assert isinstance(table.load(name), type), name


@pytest.mark.slow
def test_importing_mloops_tables_imports_no_backend() -> None:
    owners = ["mloop.store", "mloop.features.online", "mloop.artifacts", "mloop.training.executors",
              "mloop.models.flavours", "mloop.monitoring.alerts"]  # fmt: skip
    backends = ["mloop.store.postgres", "mloop.features.online.redis", "mloop.artifacts.fsspec",
                "mloop.models.lightgbm", "mloop.models.sklearn", "mloop.monitoring.sinks"]  # fmt: skip
    code = (
        f"import importlib, sys\nfor m in {owners!r}: importlib.import_module(m)\n"
        f"print([m for m in {backends!r} if m in sys.modules])"
    )
    src = str(Path(mloop.__file__).parent.parent)  # this checkout's mloop, not another installed one
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"
