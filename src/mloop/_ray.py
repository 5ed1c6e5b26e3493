"""This process's connection to Ray, shared by everything mloop runs on it (search trials, training runs,
batch scoring, materialization chunks).

>>> address = parse_executor("ray:10.0.0.5:6379")            # join a running cluster's GCS address
>>> address
'10.0.0.5:6379'
>>> connect(ComputeSettings(executor="ray"))                  # doctest: +SKIP

``compute.executor`` names where the work runs:

- ``ray``: the cluster this process is already connected to, else a local Ray started on demand with
  ``compute.local_cpus`` CPUs (default min(CPUs, 8));
- ``ray:HOST:PORT``: join a running cluster as a driver, at its GCS address (``ray start --head
  --port=PORT``); the driver must reach every node, as a process inside the cluster's network does;
- ``ray://HOST:PORT``: Ray Client, for a driver outside the cluster's network (a laptop): only the client
  port (``--ray-client-server-port``, 10001 by default) needs to be reachable.

Ray lets a process hold one connection: it is opened on first use and kept until the process ends (a
local Ray takes seconds to start; a search, a training run and a scoring job in one script share it).
Ray itself is imported only here and only then, so the embedded defaults never need it.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

from mloop.config.sections import ComputeSettings
from mloop.errors import BackendNotInstalled, ComputeUnavailable, ConfigError

LOCAL_CPUS = 8
CONNECT_TIMEOUT = 5.0
_LOCK = threading.Lock()
_CONNECTED: dict[str, str] = {}  # "address": what this process connected to ("local" for a Ray it started)


def is_ray(executor: str) -> bool:
    """Whether ``executor`` (a ``compute.executor`` value) names Ray."""
    return executor == "ray" or executor.startswith(("ray:", "ray://"))


def parse_executor(executor: str) -> str | None:
    """The address in a Ray executor name: None for ``ray`` (local or already connected), ``HOST:PORT``
    for ``ray:HOST:PORT`` (a GCS address), ``ray://HOST:PORT`` as is (Ray Client)."""
    if executor == "ray":
        return None
    if executor.startswith("ray://"):
        address = executor
        host_port = executor[len("ray://") :]
    elif executor.startswith("ray:"):
        address = host_port = executor[len("ray:") :]
    else:
        raise ConfigError(f"{executor!r} is not a Ray executor; write ray, ray:HOST:PORT or ray://HOST:PORT.")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"The Ray executor {executor!r} has no HOST:PORT; write ray:HOST:PORT for a cluster's GCS address "
            "(ray start --head --port=6379 prints it) or ray://HOST:PORT for its Ray Client port (10001)."
        )
    return address


def import_ray() -> Any:
    try:
        import ray
    except ModuleNotFoundError as exc:
        raise BackendNotInstalled(
            f"The Ray executor needs the package {exc.name or 'ray'!r}, which is not installed: "
            "pip install 'mloop[ray]', or choose another executor (inprocess, process)."
        ) from exc
    return ray


def connect(compute: ComputeSettings) -> Any:
    """The ``ray`` module, connected to the cluster that ``compute.executor`` names (once per process).

    Raises :class:`~mloop.errors.ComputeUnavailable` naming the address when the head cannot be reached,
    before anything else happens (callers connect before they open a run)."""
    ray = import_ray()
    address = parse_executor(compute.executor)
    with _LOCK:
        if address is not None and not (ray.is_initialized() and _same(address, _address(ray))):
            _reachable(address, compute.executor)
        if ray.is_initialized():
            current = _address(ray)
            if address is not None and not _same(address, current):
                raise ConfigError(
                    f"This process is connected to the Ray cluster at {current} and Ray allows one connection "
                    f"per process, so it cannot also use {compute.executor!r}. Use one cluster per process "
                    "(compute.executor in mloop.yaml, or executor= in the call)."
                )
            return ray
        try:
            if address is None:
                cpus = compute.local_cpus or min(os.cpu_count() or 1, LOCAL_CPUS)
                ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)  # fmt: skip
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, TimeoutError) as exc:
            if ray.is_initialized():
                ray.shutdown()
            where = address or "a local Ray"
            raise ComputeUnavailable(
                f"Could not connect to the Ray cluster at {where} ({type(exc).__name__}: {exc}). {_fix(address)}"
            ) from None
        _CONNECTED["address"] = address or "local"
        return ray


def task_slots(ray: Any, compute: ComputeSettings) -> int:
    """How many tasks of ``compute``'s size the cluster's live nodes hold at once (a task runs on one
    node). A size that no node can hold is a :class:`~mloop.errors.ConfigError`: Ray would wait for such a
    node forever."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    wanted = {
        "CPU": compute.cpus_per_task,
        "GPU": compute.gpus_per_task,
        "memory": compute.memory_per_task or 0,
    }
    slots = 0
    for resources in nodes:
        fits = [resources.get(name, 0) // need for name, need in wanted.items() if need]
        slots += int(min(fits)) if fits else 1
    if slots == 0:
        largest = {name: max((r.get(name, 0) for r in nodes), default=0) for name in wanted}
        raise ConfigError(
            f"No node of the Ray cluster can hold one task of compute.cpus_per_task={compute.cpus_per_task}, "
            f"gpus_per_task={compute.gpus_per_task}, memory_per_task={compute.memory_per_task}: the largest "
            f"node has {largest['CPU']:g} CPUs, {largest['GPU']:g} GPUs and {largest['memory']:,.0f} bytes. "
            "Lower them in mloop.yaml, or add a node that large."
        )
    return slots


def task_options(compute: ComputeSettings) -> dict[str, Any]:
    """The resources each task asks for, and how often a task whose worker or node died is rerun."""
    options: dict[str, Any] = {
        "num_cpus": compute.cpus_per_task,
        "max_retries": compute.max_retries,
        "retry_exceptions": False,  # an exception is the task's answer (a failed trial), not a crash
    }
    if compute.gpus_per_task:
        options["num_gpus"] = compute.gpus_per_task
    if compute.memory_per_task:
        options["memory"] = compute.memory_per_task
    return options


def lost(exc: BaseException, what: str, retries: int) -> BaseException:
    """The error a task's result becomes: the task's own exception, or, when Ray lost the task (its worker
    or node died more often than ``retries`` allowed, or it was cancelled), an error that says so."""
    ray = import_ray()
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = exc.cause if isinstance(exc.cause, BaseException) else None
        return cause if cause is not None else ComputeUnavailable(f"{what} failed on Ray: {exc}")
    if isinstance(exc, ray.exceptions.TaskCancelledError):
        return ComputeUnavailable(f"{what} was cancelled on Ray.")
    if isinstance(exc, ray.exceptions.RayError):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ComputeUnavailable(
            f"{what} was lost on Ray after {retries} retr{'y' if retries == 1 else 'ies'}: its worker or node died "
            f"({type(exc).__name__}: {first}). Raise compute.max_retries, or look at the node's logs "
            "(ray logs, or /tmp/ray/session_latest/logs on the node)."
        )
    return exc


def _reachable(address: str, executor: str) -> None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        raise ComputeUnavailable(
            f"The Ray head at {host}:{port} (compute.executor {executor!r}) cannot be reached: {exc}. "
            f"{_fix(address)}"
        ) from None


def _fix(address: str | None) -> str:
    if address is None:
        return "Check that Ray starts here (ray start --head works), or pick another executor."
    if address.startswith("ray://"):
        return (
            "Start the cluster's head with a Ray Client server (ray start --head, port 10001 by default), check "
            "the host, port and firewall, or point compute.executor (mloop.yaml) or executor= at the right address."
        )
    return (
        "Start the head (ray start --head --port=PORT), check the host, port and firewall, or point "
        "compute.executor (mloop.yaml) or executor= at the right address (ray:HOST:PORT)."
    )


def _address(ray: Any) -> str:
    if _CONNECTED.get("address"):
        return _CONNECTED["address"]
    try:
        return str(ray.get_runtime_context().gcs_address)
    except Exception:  # Ray Client has no GCS address to report
        return "an existing connection"


def _same(wanted: str, current: str) -> bool:
    """Whether two addresses name the same head: Ray reports a local head by this host's IP address
    however it was reached (127.0.0.1, localhost), so a local host matches any local address."""
    wanted_host, _, wanted_port = wanted.removeprefix("ray://").rpartition(":")
    current_host, _, current_port = current.removeprefix("ray://").rpartition(":")
    if wanted_port != current_port:
        return False
    return wanted_host == current_host or (_local(wanted_host) and _local(current_host))


def _local(host: str) -> bool:
    try:
        address = socket.gethostbyname(host)
    except OSError:
        return False
    if address.startswith("127."):
        return True
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((address, 0))  # only an address of this host can be bound
        return True
    except OSError:
        return False


__all__ = ["connect", "import_ray", "is_ray", "lost", "parse_executor", "task_options", "task_slots"]
