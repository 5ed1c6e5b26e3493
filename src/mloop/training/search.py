"""Run search: the filter language of :mod:`mloop.training.search_filter`, compiled to one SQL query.

>>> where = parse_filter("metrics.auc > 0.9 and (params.num_leaves = 31 or tags.team = 'risk')")
>>> orders = parse_order_by(["metrics.auc desc"])
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Select, and_, case, cast, func, not_, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from mloop.store.schema import LatestMetricRow, RunParamRow, RunRow, RunTagRow
from mloop.training.search_filter import (
    NUMBER,
    TIMES,
    BoolOp,
    Comparison,
    Expr,
    FilterError,
    Order,
    parse_filter,
    parse_order_by,
)

COLUMNS = {
    "id": RunRow.id,
    "run_id": RunRow.id,
    "name": RunRow.name,
    "status": RunRow.status,
    "started_at": RunRow.started_at,
    "ended_at": RunRow.ended_at,
    "parent_id": RunRow.parent_id,
}

# ---- compiling to SQL -----------------------------------------------------------------------------------


def build_query(
    experiment_ids: list[int] | None,
    where: Expr | None,
    orders: list[Order],
    limit: int | None,
    dialect: str,
    *,
    drive: bool = True,
    offset: int = 0,
) -> Select[Any]:
    """One query for the ids of the matching runs, ordered, at most ``limit`` after skipping ``offset``
    (``limit`` None: every match, unordered, for :func:`count_query`).

    When the filter requires a metric comparison (a top-level ``and`` term) and ``drive`` is true, that
    comparison is an inner join on the ``run_latest_metrics(key, value)`` index and the other terms are
    checked per joined run: the database starts from the runs in the index range instead of every run of
    the experiment, and when the first order is that metric it walks the index in order and stops at
    ``limit``. With ``drive`` false every term is checked per run while the runs are read newest first
    (the ``runs(experiment_id, started_at)`` index), which stops at ``limit`` too: the better plan when the
    metric range holds many runs (see :func:`should_drive`).
    """
    terms = _terms(where)
    driver = _driver(terms, orders) if drive else None
    query = select(RunRow.id)
    if driver is not None:
        driving = aliased(LatestMetricRow, name="drive")
        query = query.join(
            driving,
            and_(
                driving.run_id == RunRow.id,
                driving.key == driver.key,
                _compare(driving.value, driver.op, driver.value, dialect),
            ),
        )
        terms = [t for t in terms if t is not driver]
    if experiment_ids is not None:
        query = query.where(RunRow.experiment_id.in_(experiment_ids))
    if terms:
        per_run = driver is not None or not drive
        query = query.where(and_(*[_compile(t, dialect, per_run=per_run) for t in terms]))
    if limit is None:
        return query
    order_by: list[Any] = []
    for i, order in enumerate(orders):
        if order.kind == "attributes":
            column = COLUMNS[order.key]
            if order.key not in TIMES:
                column = _text_order(column, dialect)
            order_by.append((column.desc() if order.descending else column.asc()).nulls_last())
            continue
        if i == 0 and driver is not None and order.kind == "metrics" and order.key == driver.key:
            # The joined value is never NULL: no NULLS LAST, so the index order serves the ORDER BY.
            order_by.append(driving.value.desc() if order.descending else driving.value.asc())
            continue
        table = {"metrics": LatestMetricRow, "params": RunParamRow, "tags": RunTagRow}[order.kind]
        joined: Any = aliased(table, name=f"order_{i}")  # one of three tables, each with run_id, key, value
        query = query.outerjoin(joined, and_(joined.run_id == RunRow.id, joined.key == order.key))
        if order.kind == "metrics":
            order_by.append((joined.value.desc() if order.descending else joined.value.asc()).nulls_last())
            continue
        number = _number(joined.value, dialect)
        text = _text_order(joined.value, dialect)
        order_by.append(case((joined.value.is_(None), 2), (number.is_(None), 1), else_=0))
        order_by.append(number.desc() if order.descending else number.asc())
        order_by.append(text.desc() if order.descending else text.asc())
    order_by += [RunRow.started_at.desc(), RunRow.id.asc()]
    return query.order_by(*order_by).limit(limit).offset(offset or None)


def count_query(
    experiment_ids: list[int] | None, where: Expr | None, dialect: str, at_most: int | None = None
) -> Select[Any]:
    """The number of runs matching ``where``, up to ``at_most``: the same plan as :func:`build_query` (a
    metric term drives from its index), without the order."""
    matches = build_query(experiment_ids, where, [], None, dialect).limit(at_most).subquery()
    return select(func.count()).select_from(matches)


def should_drive(session: Session, where: Expr | None, orders: list[Order], limit: int) -> bool:
    """Whether to start from the metric index (see :func:`build_query`), for SQLite, whose planner has no
    statistics on values. Starting from the index costs in proportion to the runs in the metric's range;
    reading runs newest first (the default order only) costs ``limit`` divided by the share that matches.
    So: count the range, stopping at ``max(1000, 10 * limit)`` (an index walk of at most that many entries).
    """
    driver = _driver(_terms(where), orders)
    if driver is None or orders:
        return True
    cap = max(1000, 10 * limit)
    inner = (
        select(LatestMetricRow.run_id)
        .where(
            LatestMetricRow.key == driver.key, _compare(LatestMetricRow.value, driver.op, driver.value, "")
        )
        .limit(cap)
        .subquery()
    )
    return int(session.scalar(select(func.count()).select_from(inner)) or 0) < cap


def with_order_metric(where: Expr | None, orders: list[Order]) -> Expr | None:
    """For a search ordered by a metric with no metric comparison to start from: ``where`` and "that
    metric has a value", so the query walks the metric's index in order and stops at ``limit``. Its result
    is the head of the full result (runs without the metric sort last); when it holds fewer than
    ``limit`` runs the caller runs the full query. None when this does not apply."""
    if not orders or orders[0].kind != "metrics" or _driver(_terms(where), orders) is not None:
        return None
    present = Comparison("metrics", orders[0].key, ">=", float("-inf"))
    return present if where is None else BoolOp("and", (*_terms(where), present))


def _terms(where: Expr | None) -> list[Expr]:
    if where is None:
        return []
    return list(where.items) if isinstance(where, BoolOp) and where.op == "and" else [where]


def _driver(terms: list[Expr], orders: list[Order]) -> Comparison | None:
    """The metric comparison to start from: the one on the first order's metric, else the first."""
    usable = [t for t in terms if isinstance(t, Comparison) and t.kind == "metrics" and t.op != "!="]
    first = orders[0] if orders else None
    for term in usable:
        if first is not None and first.kind == "metrics" and first.key == term.key:
            return term
    return usable[0] if usable else None


def _compile(expr: Expr, dialect: str, *, per_run: bool = False) -> ColumnElement[bool]:
    """``expr`` as SQL. A metric, param or tag term is either the set of run ids whose row matches, or,
    with ``per_run``, a lookup of the run's own row by primary key, ``(run_id, key)``: a scalar subquery,
    which PostgreSQL runs per run found rather than turning it into a join over every row of the key
    (a missing row is NULL, and NULL matches no comparison)."""
    if isinstance(expr, BoolOp):
        parts = [_compile(item, dialect, per_run=per_run) for item in expr.items]
        return and_(*parts) if expr.op == "and" else or_(*parts)
    if expr.kind == "attributes":
        return _compare(COLUMNS[expr.key], expr.op, expr.value, dialect)
    table: Any = {"metrics": LatestMetricRow, "params": RunParamRow, "tags": RunTagRow}[expr.kind]
    numeric = expr.kind != "metrics" and isinstance(expr.value, float)
    value = _number(table.value, dialect) if numeric else table.value
    if per_run:
        own = select(value).where(table.run_id == RunRow.id, table.key == expr.key).scalar_subquery()
        return _compare(own, expr.op, expr.value, dialect)
    condition = and_(table.key == expr.key, _compare(value, expr.op, expr.value, dialect))
    return RunRow.id.in_(select(table.run_id).where(condition))


def _compare(column: Any, op: str, value: Any, dialect: str) -> ColumnElement[bool]:
    if op == "like":
        return column.like(value, escape="\\")
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if isinstance(value, str):
        column = _text_order(column, dialect)
    return {"<": column < value, "<=": column <= value, ">": column > value, ">=": column >= value}[op]


def _text_order(column: Any, dialect: str) -> Any:
    # Code-point order everywhere: SQLite's default; PostgreSQL's "C" collation (its default follows
    # the server's locale).
    return column.collate("C") if dialect == "postgresql" else column


def _number(column: Any, dialect: str) -> Any:
    """The text ``column`` as a float where it is a :data:`NUMBER`, else NULL."""
    if dialect == "postgresql":
        return case(
            (column.op("~", is_comparison=True)(f"^{NUMBER.pattern}$"), cast(column, Float)), else_=None
        )
    # SQLite has no regular expressions: JSON's number grammar, plus the two length limits, as GLOBs.
    # json_extract reads the text exactly (CAST(text AS REAL) is off in the last bit for some values).
    is_number = and_(
        column != "",
        not_(column.op("GLOB", is_comparison=True)("*[^0-9eE.+-]*")),
        not_(column.op("GLOB", is_comparison=True)("*" + "[0-9]" * 26 + "*")),
        not_(column.op("GLOB", is_comparison=True)("*[eE]*[0-9][0-9][0-9]*")),
        func.json_valid(column) == 1,
    )
    return case((is_number, cast(func.json_extract(column, "$"), Float)), else_=None)


__all__ = [
    "FilterError",
    "build_query",
    "count_query",
    "parse_filter",
    "parse_order_by",
    "should_drive",
    "with_order_metric",
]
