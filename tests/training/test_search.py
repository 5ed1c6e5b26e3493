"""Run search: the filter language against a Python oracle on random filters, orders and limits (on
SQLite and PostgreSQL), and its error messages."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop import Project
from mloop.errors import MloopError, NotFound
from mloop.training import FilterError, RunInfo
from mloop.training.search import parse_filter, parse_order_by

# The definition of a number in a param or tag, written out again so the oracle does not borrow it.
NUMBER = re.compile(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,2})?")
OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
METRIC_VALUES = [0.0, -0.0, 0.5, 0.91, 0.9100000000000001, 1e-300, -2.5, 1e300, math.inf, -math.inf, math.nan]
PARAM_VALUES = ["31", "31.0", "3.1e1", "0.1", "-0.5", "1e-05", "1E+2", "0", "-0", "007", "abc", "Abc", "31abc",
                "", " 31", "1e999", "1.", ".5", "12345678901234567890123456", "1234567890123456789012345",
                "a%b", "a_b", "x\\y", "Ünï", "ü", "adam", "adamw", "sgd"]  # fmt: skip
TAG_VALUES = ["risk", "Risk", "risky", "fraud-v2", "a'b", 'a"b', "日本", "", "10", "9"]
NAMES = ["alpha", "alpha-2", "beta", "Beta", "gamma_1", "δ"]

examples = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def corpus(project: Project) -> list[RunInfo]:
    """40 runs of experiment "exp" with missing, NaN and infinite metrics, numbers and non-numbers as
    params, every status; and 3 runs of another experiment that a search of "exp" must not see."""
    rng = random.Random(7)
    for i in range(40):
        params = {k: rng.choice(PARAM_VALUES) for k in ("p", "q") if rng.random() < 0.8}
        tags = {"t": rng.choice(TAG_VALUES)} if rng.random() < 0.7 else {}
        run = project.runs.start("exp", params=params, tags=tags, name=f"{rng.choice(NAMES)}-{i % 3}")
        for key in ("auc", "loss"):
            if rng.random() < 0.8:
                run.log_metric(key, rng.choice(METRIC_VALUES) if rng.random() < 0.7 else rng.uniform(-1, 1))
        if i % 7 == 3:
            continue  # left running
        run.end("failed" if i % 5 == 0 else "finished", ValueError("x") if i % 5 == 0 else None)
    for _ in range(3):
        with project.run("other", params={"p": "31"}) as other:
            other.log_metric("auc", 0.91)
    return project.runs.search("exp", limit=1000)


# ---- the oracle ------------------------------------------------------------------------------------------


def like(text: str, pattern: str) -> bool:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.fullmatch("".join(out), text, re.DOTALL) is not None


def holds(run: RunInfo, node: Any) -> bool:
    if node[0] in ("and", "or"):
        results = [holds(run, child) for child in node[1]]
        return all(results) if node[0] == "and" else any(results)
    _, kind, key, op, value = node
    if kind == "metrics":
        got = run.metrics.get(key)
        return got is not None and not math.isnan(got) and OPS[op](got, value)
    if kind == "attributes":
        got = {
            "status": run.status,
            "name": run.name,
            "started_at": run.started_at,
            "parent_id": run.parent_id,
        }[key]
    else:
        got = (run.params if kind == "params" else run.tags).get(key)
    if got is None:
        return False
    if isinstance(value, float):
        return NUMBER.fullmatch(got) is not None and OPS[op](float(got), value)
    return like(got, value) if op == "like" else OPS[op](got, value)


def oracle(runs: list[RunInfo], node: Any, orders: list[tuple[str, str, bool]], limit: int) -> list[str]:
    found = [r for r in runs if node is None or holds(r, node)]
    found.sort(key=lambda r: r.id)
    found.sort(key=lambda r: r.started_at, reverse=True)
    for kind, key, desc in reversed(orders):
        found = _sorted(found, kind, key, desc)
    return [r.id for r in found[:limit]]


def _sorted(runs: list[RunInfo], kind: str, key: str, desc: bool) -> list[RunInfo]:
    def value(run: RunInfo) -> Any:
        if kind == "metrics":
            got = run.metrics.get(key)
            return None if got is None or math.isnan(got) else got
        if kind == "attributes":
            return {"name": run.name, "status": run.status, "started_at": run.started_at}[key]
        return (run.params if kind == "params" else run.tags).get(key)

    if kind in ("params", "tags"):
        text = sorted(runs, key=lambda r: value(r) or "", reverse=desc)
        number = sorted(text, key=lambda r: float(value(r)) if _numeric(value(r)) else 0.0, reverse=desc)
        return sorted(number, key=lambda r: 2 if value(r) is None else 0 if _numeric(value(r)) else 1)
    present = sorted((r for r in runs if value(r) is not None), key=value, reverse=desc)
    return present + [r for r in runs if value(r) is None]


def _numeric(text: str | None) -> bool:
    return text is not None and NUMBER.fullmatch(text) is not None


# ---- random filters --------------------------------------------------------------------------------------


def quoted(text: str, quote: str) -> str:
    return quote + text.replace(quote, quote * 2) + quote


@st.composite
def comparisons(draw: st.DrawFn, starts: list[datetime]) -> tuple[str, Any]:
    """One comparison: its text and its tree."""
    kind = draw(st.sampled_from(["metrics", "params", "tags", "attributes"]))
    alias = draw(st.sampled_from({"metrics": ["metrics", "metric"], "params": ["params", "param"],
                                  "tags": ["tags", "tag"], "attributes": ["attributes", "attr"]}[kind]))  # fmt: skip
    numbers = st.one_of(
        st.sampled_from([v for v in METRIC_VALUES if math.isfinite(v)] + [31.0, 100.0, 1e-05, -0.5, 3.0]),
        st.floats(-2, 2, allow_nan=False),
    )
    texts = st.sampled_from(PARAM_VALUES + TAG_VALUES + NAMES + ["finished", "failed", "running"])
    if kind == "metrics":
        key, op, value = (
            draw(st.sampled_from(["auc", "loss", "nope"])),
            draw(st.sampled_from(list(OPS))),
            draw(numbers),
        )
    elif kind == "attributes":
        key = draw(st.sampled_from(["status", "name", "started_at", "parent_id"]))
        if key == "started_at":
            op = draw(st.sampled_from(list(OPS)))
            value = draw(st.sampled_from(starts)) + timedelta(microseconds=draw(st.sampled_from([-1, 0, 1])))
        else:
            op, value = draw(st.sampled_from([*OPS, "like"])), draw(texts)
    else:
        key = draw(st.sampled_from(["p", "q", "nope"] if kind == "params" else ["t"]))
        op = draw(st.sampled_from([*OPS, "like"]))
        value = draw(texts) if op == "like" or draw(st.booleans()) else draw(numbers)
    if op == "like":
        value = draw(patterns(value))
    spelled = {"=": ["=", "=="], "!=": ["!=", "<>"]}.get(
        op, [op if op != "like" else draw(st.sampled_from(["like", "LIKE", "Like"]))]
    )
    if isinstance(value, datetime):
        shown = quoted(draw(st.sampled_from([value.isoformat(), value.isoformat().replace("+00:00", "Z"),
                                             value.replace(tzinfo=None).isoformat()])), "'")  # fmt: skip
    elif isinstance(value, float):
        shown = (
            str(int(value))
            if value.is_integer() and abs(value) < 1e15 and draw(st.booleans())
            else repr(value)
        )
    else:
        shown = quoted(value, draw(st.sampled_from(["'", '"'])))
    space = draw(st.sampled_from(["", " ", "  "]))
    if op == "like":
        space = space or " "  # tags.tlike would name the tag "tlike"
    text = f"{alias}.{key}{space}{draw(st.sampled_from(spelled))}{space or ' '}{shown}"
    return text, ("cmp", kind, key, op, value)


@st.composite
def patterns(draw: st.DrawFn, text: str) -> str:
    out = []
    for c in text:
        roll = draw(st.integers(0, 9))
        out.append("%" if roll == 0 else "_" if roll == 1 else "\\" + c if c in "%_\\" else c)
    if draw(st.booleans()):
        out.insert(draw(st.integers(0, len(out))), "%")
    return "".join(out)


def filters(starts: list[datetime]) -> st.SearchStrategy[tuple[str, Any]]:
    def combine(children: st.SearchStrategy[tuple[str, Any]]) -> st.SearchStrategy[tuple[str, Any]]:
        @st.composite
        def node(draw: st.DrawFn) -> tuple[str, Any]:
            op = draw(st.sampled_from(["and", "or"]))
            items = draw(st.lists(children, min_size=2, max_size=3))
            word = draw(st.sampled_from([op, op.upper()]))
            return "(" + f" {word} ".join(t for t, _ in items) + ")", (op, [n for _, n in items])

        return node()

    return st.recursive(comparisons(starts), combine, max_leaves=6)


orders = st.lists(
    st.tuples(
        st.sampled_from(
            [
                ("metrics", "auc"),
                ("metrics", "loss"),
                ("params", "p"),
                ("params", "q"),
                ("tags", "t"),
                ("attributes", "name"),
                ("attributes", "status"),
                ("attributes", "started_at"),
            ]
        ),
        st.sampled_from(["", " asc", " desc", " DESC"]),
    ),
    max_size=2,
)


@pytest.mark.slow
def test_random_filters_orders_and_limits_match_the_oracle(project: Project, corpus: list[RunInfo]) -> None:
    starts = [r.started_at for r in corpus]

    @examples
    @given(filters(starts), orders, st.integers(1, 50))
    def check(spec: tuple[str, Any], order: list[tuple[tuple[str, str], str]], limit: int) -> None:
        text, node = spec
        order_by = [f"{kind}.{key}{direction}" for (kind, key), direction in order]
        wanted = oracle(corpus, node, [(k, key, d.strip().lower() == "desc") for (k, key), d in order], limit)
        got = [r.id for r in project.runs.search("exp", filter=text, order_by=order_by, limit=limit)]
        assert got == wanted, (text, order_by)

    check()


def test_each_kind_of_comparison_on_a_known_corpus(project: Project) -> None:
    ids = {}
    for name, p, auc in [("a", "31", 0.95), ("b", "31.0", 0.85), ("c", "abc", None), ("d", "100", 0.9)]:
        with project.run(
            "exp", params={"p": p}, tags={"team": "risk" if name < "c" else "growth"}, name=name
        ) as run:
            if auc is not None:
                run.log_metric("auc", auc)
        ids[name] = run.id

    def names(text: str, **kw: Any) -> list[str]:
        found = project.runs.search("exp", text, **kw)
        return [next(n for n, i in ids.items() if i == r.id) for r in found]

    assert set(names("params.p = 31")) == {"a", "b"}  # numerically: "31.0" is 31
    assert names("params.p = '31'") == ["a"]  # as text
    assert set(names("params.p > 50")) == {"d"}  # 100 > 50 as numbers ("100" < "50" as text)
    assert set(names("params.p > '50'")) == {"c"}  # as text: only "abc" sorts after "50"
    assert names("metrics.auc > 0.9 and tags.team = 'risk'") == ["a"]
    assert set(names("metrics.auc >= 0.9 or params.p like 'ab%'")) == {"a", "c", "d"}
    assert names("metrics.auc > 0", order_by=["metrics.auc desc"]) == ["a", "d", "b"]
    assert names("", order_by=["metrics.auc"]) == ["b", "d", "a", "c"]  # missing last
    assert names("", order_by=["params.p desc"]) == ["d", "b", "a", "c"]  # numbers first, then text
    assert names("attributes.name != 'a'", order_by=["attributes.name"], limit=2) == ["b", "c"]
    assert names("attributes.status = 'finished' and attributes.started_at > '2000-01-01'", limit=1) == ["d"]
    assert names("metrics.`auc` > 0.9") == ["a"]


def test_search_is_scoped_to_the_experiments_named(project: Project) -> None:
    for experiment in ("a", "b", "c"):
        project.runs.start(experiment).end()
    assert {r.experiment for r in project.runs.search(["a", "b"])} == {"a", "b"}
    assert {r.experiment for r in project.runs.list()} == {"a", "b", "c"}
    assert [r.experiment for r in project.runs.list("c")] == ["c"]
    with pytest.raises(NotFound, match="No experiment 'zzz'.*Experiments: a, b, c"):
        project.runs.search("zzz")
    with pytest.raises(MloopError, match="limit must be a whole number from 1 to 100,000"):
        project.runs.search("a", limit=0)


# ---- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("metrics.auc >", 13, "expected a value: a number, or a string in quotes"),
        ("metrics.auc is 0.9", 12, "expected an operator: =, !=, <, <=, >, >= or like, found 'is 0.9'"),
        ("auc > 0.9", 0, "expected a field: metrics.KEY, params.KEY, tags.KEY or attributes.NAME"),
        ("foo.auc > 0.9", 0, "expected a field"),
        ("metrics. > 1", 8, "expected a key after the '.'"),
        ("attributes.colour = 'red'", 11, "expected an attribute name, one of id, run_id, name, status"),
        ("metrics.auc = 'high'", 14, "expected a number to compare metrics.auc with"),
        ("metrics.auc like 'x%'", 12, "like compares text; metrics are numbers"),
        ("params.opt like 3", 16, "expected a quoted pattern after like"),
        ("params.opt = adam", 13, "expected a value"),
        ("params.opt = 'adam", 13, "expected a closing ' for the string opened at position 13"),
        ("(metrics.auc > 0.9", 18, "expected ')' to close the '(' at position 0"),
        ("metrics.auc > 0.9 metrics.f1 > 0.1", 18, "expected 'and', 'or', ')' or the end of the filter"),
        ("metrics.auc > 0.9 and", 21, "expected a field"),
        ("attributes.started_at > 5", 24, "expected a quoted ISO time for attributes.started_at"),
        ("attributes.started_at > 'last week'", 24, "expected an ISO date or time"),
        ("attributes.status = 1", 20, "expected a quoted string for attributes.status"),
        ("params.p like 'a\\'", 14, "a character after the escaping \\ at the end of the pattern"),
    ],
)
def test_syntax_errors_say_where_and_what_was_expected(text: str, position: int, message: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    assert caught.value.position == position
    assert message in str(caught.value)
    assert f"at position {position}" in str(caught.value)
    assert str(caught.value).endswith("\n    " + text + "\n    " + " " * position + "^")


def test_order_by_errors_and_forms() -> None:
    assert [(o.kind, o.key, o.descending) for o in parse_order_by(["metrics.auc DESC", "param.lr", "attr.name asc"])] == [
        ("metrics", "auc", True), ("params", "lr", False), ("attributes", "name", False)]  # fmt: skip
    with pytest.raises(FilterError, match="expected 'asc', 'desc' or the end"):
        parse_order_by(["metrics.auc downwards"])
    with pytest.raises(FilterError, match="expected a field"):
        parse_order_by("auc")


def test_an_empty_filter_matches_everything() -> None:
    assert parse_filter("") is None and parse_filter("   ") is None and parse_filter(None) is None


def test_and_binds_tighter_than_or() -> None:
    tree = parse_filter("metrics.a = 1 or metrics.b = 2 and metrics.c = 3")
    assert tree is not None and tree.op == "or"  # type: ignore[union-attr]
    assert [getattr(item, "op", None) for item in tree.items] == ["=", "and"]  # type: ignore[union-attr]


def test_a_filter_is_bounded_with_a_clear_error_not_a_crash(project: Project) -> None:
    """Issue 17, item 10: 2,000 nested parentheses raised RecursionError, 1,200 `or` terms made SQLite
    answer "Expression tree is too large"."""
    with project.run("bounded", params={"p": "1"}) as run:
        run.log_metric("auc", 0.5)
    deep = "(" * 2_000 + "metrics.auc > 0" + ")" * 2_000
    with pytest.raises(FilterError, match="at most 32 nested parentheses"):
        project.runs.search(["bounded"], filter=deep)
    wide = " or ".join(f"params.p = '{i}'" for i in range(300))
    with pytest.raises(FilterError, match="at most 200 comparisons"):
        project.runs.search(["bounded"], filter=wide)
    with pytest.raises(FilterError, match="at most 10,000 characters"):
        project.runs.search(["bounded"], filter="metrics.auc > 0 " + " " * 20_000)
    widest = " or ".join(f"params.p = '{i}'" for i in range(200))  # the most allowed still runs
    deepest = "(" * 32 + "metrics.auc > 0" + ")" * 32
    assert len(project.runs.search(["bounded"], filter=widest)) == 1
    assert len(project.runs.search(["bounded"], filter=deepest)) == 1
