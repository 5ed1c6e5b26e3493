"""Cost and energy (``project.reviews.cost()``): the figures equal a hand computation from what mloop
recorded (runs' timing, serving processes' samples) and the prices in mloop.yaml; a real ``mloop serve``
records its own use; a budget overrun opens one incident per endpoint, sent to the sinks."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop import Project
from mloop._time import utcnow
from mloop.predictions.usage import Sample, UsageFile, read_usage, usage_folder
from tests.review.conftest import fraud_project, reopen
from tests.serving.http.load import fraud_rows
from tests.serving.http.running import mloop_serve

GiB = 1024**3
PRICES = {"core_hour": 0.5, "gb_hour": 0.25, "gpu_hour": 3.0, "storage_gb_month": 0.1}
ENERGY = {
    "watts_per_core": 10.0,
    "watts_per_gb": 0.5,
    "gpu_watts": 250.0,
    "pue": 1.5,
    "grams_co2e_per_kwh": 300.0,
}
ANSWERED = 30


pytestmark = pytest.mark.xdist_group("review-cost")  # the module's fixtures are built once, on one worker


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The fraud project after a real ``mloop serve`` answered :data:`ANSWERED` predictions on ``fraud``."""
    project = fraud_project(tmp_path_factory.mktemp("cost"))
    rows = fraud_rows(project.root, ANSWERED)
    with mloop_serve(project.root) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        for row in rows:
            answer = client.post("/v1/endpoints/fraud/predict", json={"rows": [row]})
            assert answer.status_code == 200, answer.text
    yield project
    project.close()


def test_a_real_server_records_its_cpu_memory_and_requests_per_endpoint(served: Project) -> None:
    samples = read_usage(usage_folder(served.settings))
    assert len({s.process for s in samples}) == 1 and len(samples) >= 2  # one at start, one at shutdown
    first, last = samples[0], samples[-1]
    assert first.requests.get("fraud", 0) == 0 and last.requests["fraud"] == ANSWERED
    assert last.cpu_seconds > first.cpu_seconds > 0 and last.rss_bytes > 50 * 2**20
    assert last.peak_rss_bytes >= last.rss_bytes


def test_runs_record_peak_memory_and_gpu_seconds(served: Project) -> None:
    for run in served.runs.list("fraud"):
        assert run.info["peak_rss_bytes"] > 50 * 2**20 and run.info["rss_growth_bytes"] >= 0
        assert run.info["gpu_devices"] == 0 and run.info["gpu_seconds"] == 0.0  # no torch CUDA here


def test_run_and_endpoint_cost_match_a_hand_computation(served: Project) -> None:
    priced = reopen(served, review={"prices": PRICES, "energy": ENERGY})
    try:
        found = priced.reviews.cost(since="1d")
        runs = {r.id: r for r in priced.runs.list("fraud")}
        assert {r.run for r in found.runs} == set(runs)
        for figure in found.runs:
            info = runs[figure.run].info
            core_h = info["cpu_seconds"] / 3600
            gb_h = info["peak_rss_bytes"] / GiB * info["wall_seconds"] / 3600
            money = core_h * 0.5 + gb_h * 0.25 + 0.0
            kwh = (core_h * 10 + gb_h * 0.5) * 1.5 / 1000
            assert math.isclose(figure.cost, money) and math.isclose(figure.kwh, kwh)
            assert math.isclose(figure.grams_co2e, kwh * 300)

        samples = read_usage(usage_folder(priced.settings))
        cpu = samples[-1].cpu_seconds  # the process started inside the window: from zero
        gb_h = sum(s.rss_bytes / GiB * (s.at - prev).total_seconds() / 3600
                   for prev, s in zip([samples[0].started, *[p.at for p in samples[:-1]]], samples, strict=True))  # fmt: skip
        cost = cpu / 3600 * 0.5 + gb_h * 0.25
        fraud = found.endpoints["fraud"]
        assert fraud.requests == ANSWERED and math.isclose(fraud.cpu_seconds, cpu)
        assert math.isclose(fraud.cost, cost) and math.isclose(fraud.per_1k or 0, cost / ANSWERED * 1000)
        kwh_1k = (cpu / 3600 * 10 + gb_h * 0.5) * 1.5 / 1000 / ANSWERED * 1000
        assert math.isclose(fraud.kwh_per_1k or 0, kwh_1k) and math.isclose(
            fraud.grams_co2e_per_1k or 0, kwh_1k * 300
        )

        log = next(s for s in found.storage if s.what == "prediction_log")
        on_disk = sum(
            f.stat().st_size for f in Path(priced.settings.data_url, "_predictions").rglob("*") if f.is_file()
        )
        assert log.bytes == on_disk > 0 and math.isclose(log.cost_per_month or 0, on_disk / GiB * 0.1)
        assert "retention.prediction_log_days unset" in log.retention
        datasets = {s.what for s in found.storage if s.what.startswith("dataset:")}
        assert datasets == {f"dataset:{d.name}" for d in priced.data.list()}
        assert found.to_dict()["endpoints"]["fraud"]["requests"] == ANSWERED  # JSON-ready
    finally:
        priced.close()
        reopen(served, review=None).close()


def test_a_process_is_shared_between_endpoints_by_requests_and_a_window_starts_at_the_sample_before(
    tmp_path: Path,
) -> None:
    project = Project.open(tmp_path, env={})
    try:
        now = utcnow()
        started = now - timedelta(hours=30)
        writer = UsageFile(usage_folder(project.settings), started)
        for hours_ago, cpu, rss, a, b in ((30, 1.0, GiB, 0, 0), (25, 10.0, GiB, 100, 0), (12, 100.0, 2 * GiB, 300, 100),
                                          (0, 190.0, 2 * GiB, 700, 200)):  # fmt: skip
            writer.append(Sample(writer.process, started, now - timedelta(hours=hours_ago), cpu, rss, rss,
                                 {"a": a, "b": b}))  # fmt: skip
        writer.close()
        found = project.reviews.cost(since="1d", now=now)
        # Window: from the sample 25 h ago; CPU 190 - 10 = 180 s; 600 + 200 requests; memory: each
        # sample's resident set held since the sample before, 2 GiB x 13 h + 2 GiB x 12 h = 50 GB-h.
        a, b = found.endpoints["a"], found.endpoints["b"]
        assert (a.requests, b.requests) == (600, 200)
        assert math.isclose(a.cpu_seconds, 180 * 600 / 800) and math.isclose(b.use.gb_hours, 50 * 200 / 800)
        hand = (180 / 3600 * 0.04 + 50 * 0.005) / 800 * 1000  # default prices; the same per request
        assert math.isclose(a.per_1k or 0, hand) and math.isclose(b.per_1k or 0, hand)
    finally:
        project.close()


@settings(max_examples=25, deadline=None)
@given(core=st.floats(0, 10), gb=st.floats(0, 10), gpu=st.floats(0, 10), pue=st.floats(1, 3))
def test_money_and_energy_are_the_documented_formulas(core: float, gb: float, gpu: float, pue: float) -> None:
    from mloop.config.review import Energy, Prices
    from mloop.review.energy import Use, kwh, money

    use = Use(1.5, 2.0, 0.25)
    prices = Prices(core_hour=core, gb_hour=gb, gpu_hour=gpu)
    assert math.isclose(money(use, prices), 1.5 * core + 2.0 * gb + 0.25 * gpu, abs_tol=1e-12)
    energy = Energy(pue=pue)
    assert math.isclose(kwh(use, energy), (1.5 * 12 + 2.0 * 0.375 + 0.25 * 300) * pue / 1000)


def test_over_budget_opens_one_incident_per_endpoint_sent_to_the_sinks_and_resolves_under_it(
    served: Project, caplog: pytest.LogCaptureFixture
) -> None:
    tight = reopen(served, review={"requirements": {"fraud": {"budget_per_1k": 0.0}}})
    try:
        with caplog.at_level("WARNING", logger="mloop.alerts"):
            first = tight.reviews.cost(since="1d", alert=True)
        assert [a["key"] for a in first.alerts] == ["fraud/cost/budget"]
        assert "over its budget" in caplog.text
        again = tight.reviews.cost(since="1d", alert=True)
        assert again.alerts == ()  # still over budget: the incident stays open, not sent again
        assert [a["key"] for a in tight.monitoring.alerts("fraud", open_only=True)] == ["fraud/cost/budget"]
        assert [e.payload["alert"]["key"] for e in tight.audit.events(action="monitoring.alert")] == [
            "fraud/cost/budget"
        ]
    finally:
        tight.close()
    loose = reopen(served, review={"requirements": {"fraud": {"budget_per_1k": 1000.0}}})
    try:
        resolved = loose.reviews.cost(since="1d", alert=True)
        assert [a["status"] for a in resolved.alerts] == ["resolved"]
        assert loose.monitoring.alerts("fraud", open_only=True) == []
    finally:
        loose.close()
        reopen(served, review=None).close()


def test_a_window_that_is_not_one_says_how_to_write_it(served: Project) -> None:
    from mloop.errors import MloopError

    with pytest.raises(MloopError, match="7d, 24h, 90m"):
        served.reviews.cost(since="week")
    assert json.dumps(served.reviews.cost().to_dict())


def test_a_run_that_used_a_cuda_device_records_its_gpu_seconds(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip(
            "no CUDA device here: the GPU figure is 0 and test_runs_record_peak_memory_and_gpu_seconds holds"
        )
    project = Project.open(tmp_path, env={})
    try:
        with project.run("gpu") as run:
            (torch.ones(1024, 1024, device="cuda") @ torch.ones(1024, 1024, device="cuda")).sum().item()
        info = project.runs.get(run.id).info
        assert info["gpu_devices"] == 1 and math.isclose(info["gpu_seconds"], info["wall_seconds"])
        spent = next(r for r in project.reviews.cost().runs if r.run == run.id)
        assert math.isclose(spent.use.gpu_hours, info["gpu_seconds"] / 3600)
    finally:
        project.close()


def test_the_meter_samples_at_its_interval_and_once_more_when_closed(tmp_path: Path) -> None:
    import time

    from mloop.serving.usage import UsageMeter

    meter = UsageMeter(tmp_path / "_usage", interval=0.05).start()
    time.sleep(0.4)
    meter.close()
    samples = read_usage(tmp_path / "_usage")
    assert 4 <= len(samples) <= 12 and len({s.process for s in samples}) == 1
    assert [s.at for s in samples] == sorted(s.at for s in samples)
    assert samples[-1].cpu_seconds >= samples[0].cpu_seconds
