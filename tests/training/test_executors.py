"""The executor conformance suite: every executor in the table maps, fails and closes the same way."""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Iterator

import pytest

from mloop.errors import BackendNotInstalled, ConfigError
from mloop.training.executors import EXECUTORS, Executor, InProcessExecutor, open_executor

JOBS = 2


# Every entry of the table; Ray's runs on the real cluster of the ray_cluster fixture.
NAMES = [pytest.param(n, marks=[pytest.mark.ray]) if n == "ray" else n for n in EXECUTORS]


def opened(request: pytest.FixtureRequest, name: str) -> Executor:
    if name == "ray":
        cluster = request.getfixturevalue("ray_cluster")
        return open_executor(cluster.executor, jobs=JOBS)
    return open_executor(name, jobs=JOBS)


@pytest.fixture(params=NAMES)
def executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    pool = opened(request, request.param)
    try:
        yield pool
    finally:
        pool.close()


# Module-level, so that worker processes can unpickle them.


def square_after_a_pause(n: int) -> int:
    time.sleep(0.02 * (5 - n))  # the first tasks finish last where tasks run at once
    return n * n


def fail_on_odd(n: int) -> int:
    if n % 2:
        raise ValueError(f"task {n} is odd")
    return n


@pytest.mark.slow
def test_results_come_back_in_task_order(executor: Executor) -> None:
    assert executor.map(square_after_a_pause, [0, 1, 2, 3, 4]) == [0, 1, 4, 9, 16]
    assert executor.map(square_after_a_pause, []) == []


@pytest.mark.slow
def test_an_exception_in_a_task_comes_back_as_its_result(executor: Executor) -> None:
    results = executor.map(fail_on_odd, [0, 1, 2, 3])
    assert [results[0], results[2]] == [0, 2]
    for index in (1, 3):
        assert isinstance(results[index], ValueError) and str(results[index]) == f"task {index} is odd"


def test_the_name_is_the_table_entry_and_parallel_is_at_most_jobs(executor: Executor) -> None:
    assert EXECUTORS[executor.name]  # tune records the name of the executor it ran on
    assert isinstance(executor.parallel, int) and 1 <= executor.parallel <= JOBS


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_close_ends_the_workers_and_a_second_close_does_nothing(
    request: pytest.FixtureRequest, name: str
) -> None:
    before = set(multiprocessing.active_children())
    executor = opened(request, name)
    assert executor.map(square_after_a_pause, [4, 4]) == [16, 16]
    workers = set(multiprocessing.active_children()) - before  # none for an executor without processes
    executor.close()
    assert not workers & set(multiprocessing.active_children())
    executor.close()


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_as_a_context_manager_it_closes_on_exit(request: pytest.FixtureRequest, name: str) -> None:
    before = set(multiprocessing.active_children())
    with opened(request, name) as executor:
        assert executor.map(square_after_a_pause, [3]) == [9]
        workers = set(multiprocessing.active_children()) - before
    assert not workers & set(multiprocessing.active_children())


def test_an_unknown_executor_lists_the_choices() -> None:
    with pytest.raises(
        ConfigError, match=r"Unknown executor 'dask'; choose one of inprocess, process, ray\."
    ):
        open_executor("dask")


def test_an_executor_passed_in_is_used_as_it_is() -> None:
    mine = InProcessExecutor()
    assert open_executor(mine) is mine


def test_ray_without_the_ray_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    with pytest.raises(BackendNotInstalled, match=r"pip install 'mloop\[ray\]'"):
        open_executor("ray")
