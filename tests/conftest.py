from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from mloop import Project
from mloop.store import MetadataStore, open_metadata_store
from tests.demo_run import DemoRun, run_demo
from tests.ray_cluster import RayCluster
from tests.seaweedfs import SeaweedFSServer
from tests.services import PostgresServer, RedisServer

# No per-example deadline: tests assert behaviour, not time, and this machine is shared and noisy (a
# 200 ms deadline failed a regex test that took 390 ms once under load).
settings.register_profile("mloop", deadline=None)
settings.load_profile("mloop")


# Tests whose figure depends on having the machine to themselves: a count of event-loop stalls, kill -9
# and failover under load with deadlines, the Ray cluster's nodes, and the chaos suite (faults injected
# under load). `make test` runs them after the rest, which runs on both cores (pytest-xdist).
SERIAL = ("serving/http/test_loop_lag.py", "serving/http/test_kill.py", "serving/http/test_workers.py",
          "serving/test_replicas.py", "loop/test_lease.py")  # fmt: skip


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = item.path.as_posix()
        if item.get_closest_marker("ray") or path.endswith(SERIAL) or "/tests/chaos/" in path:
            item.add_marker(pytest.mark.serial)
        if "fast_demo" in getattr(item, "fixturenames", ()):  # one worker runs the demo once for all of them
            item.add_marker(pytest.mark.xdist_group("demo"))
    if getattr(config.option, "loadgroup", False):  # set by xdist on its workers
        _group_ids(items)


def _group_ids(items: list[pytest.Item]) -> None:
    """Send each ``xdist_group`` to one worker (``--dist loadgroup``), so a module's fixtures are built once.

    pytest-xdist 3.8 marks a grouped test by appending ``@group`` to ``Item._nodeid``; pytest 9.2 reads a
    node's id from ``Item._id`` instead, so the groups were silently ignored and the fraud demo, the
    federation and the agriculture demo were each built on both workers. This sets the id pytest reads
    (xdist's own hook, running after this one, then changes nothing)."""
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # an older pytest: xdist's own hook works there
        return
    for item in items:
        marks = item.iter_markers("xdist_group")
        groups = {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in marks}
        if groups and isinstance(getattr(item, "_id", None), NodeId) and "@" not in item.nodeid:
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(sorted(groups))}")  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def fast_demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """``mloop demo --fast`` run once for the session (tests/demo_run.py); its folder is read-only."""
    return run_demo(tmp_path_factory.mktemp("demo") / "mloop-demo")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        from tests.services import unavailable

        unavailable("psycopg is not installed (pip install 'mloop[postgres]')")
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty metadata store, once for each backend: the conformance parameter."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta' / 'mloop.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        with server.database() as url:
            yield url


@pytest.fixture
def store(metadata_url: str) -> Iterator[MetadataStore]:
    opened = open_metadata_store(metadata_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def project(tmp_path: Path, metadata_url: str) -> Iterator[Project]:
    """A fresh project acting as the local admin, on each metadata backend."""
    root = tmp_path / "project"
    root.mkdir()
    opened = Project.open(root, env={}, metadata_url=metadata_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def sqlite_project(tmp_path: Path) -> Iterator[Project]:
    """A fresh project on the embedded defaults only (for tests that are not about the metadata backend)."""
    root = tmp_path / "project"
    root.mkdir()
    opened = Project.open(root, env={})
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of an empty Redis database (flushed before each test)."""
    reply = redis_server.command("FLUSHDB")
    assert reply == b"+OK\r\n", reply
    return redis_server.url(0)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[SeaweedFSServer]:
    try:
        import s3fs  # noqa: F401
    except ImportError:
        from tests.services import unavailable

        unavailable("s3fs is not installed (pip install 'mloop[s3]')")
    server = SeaweedFSServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def s3_url(s3_server: SeaweedFSServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """``s3://<a fresh bucket>/mloop``, with the endpoint and credentials in the environment as in production."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return f"s3://{s3_server.bucket()}/mloop"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def data_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a project keeps its data files, once for each backend: a folder, and a fresh bucket of the
    real S3 server (the conformance parameter of datasets, offline features and the prediction log)."""
    if request.param == "local":
        return str(tmp_path / "data")
    url: str = request.getfixturevalue("s3_url")
    return url


@pytest.fixture
def data_project(tmp_path: Path, data_url: str) -> Iterator[Project]:
    """A fresh project on the embedded metadata store whose data_url is each data backend in turn."""
    yield from _project_on(tmp_path, data_url)


@pytest.fixture
def s3_project(tmp_path: Path, s3_url: str) -> Iterator[Project]:
    """A fresh project on the embedded metadata store with its data in a fresh bucket of the real S3 server."""
    yield from _project_on(tmp_path, s3_url)


def _project_on(tmp_path: Path, data_url: str) -> Iterator[Project]:
    root = tmp_path / "project"
    root.mkdir()
    opened = Project.open(root, env={}, data_url=data_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """A real Ray cluster on loopback (a head and a worker node, 1 CPU each), this process its driver."""
    try:
        import ray
    except ImportError:
        from tests.services import unavailable

        unavailable("ray is not installed (pip install 'mloop[ray]')")
    cluster = RayCluster()
    os.environ["RAY_AUTH_MODE"] = cluster.env["RAY_AUTH_MODE"]  # this process joins as a driver
    try:
        cluster.start()
        ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
        cluster.wait_for_nodes(2)
        yield cluster
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.stop()
