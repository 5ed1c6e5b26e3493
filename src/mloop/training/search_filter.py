"""Run search's filter language: parsed once into :data:`Expr` trees that :mod:`mloop.training.search`
compiles to one SQL query.

>>> where = parse_filter("metrics.auc > 0.9 and (params.num_leaves = 31 or tags.team = 'risk')")
>>> orders = parse_order_by(["metrics.auc desc"])

The language
------------
- A comparison is ``FIELD OP VALUE``. Fields are ``metrics.KEY``, ``params.KEY``, ``tags.KEY`` and
  ``attributes.NAME`` (``id``, ``name``, ``status``, ``started_at``, ``ended_at``, ``parent_id``). A key
  with other characters than letters, digits and ``_ - . / :`` is quoted with backticks or double
  quotes: ``metrics.`val auc```.
- OP is ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` or ``like`` (``%`` matches any run of characters, ``_``
  one character, ``\\`` escapes the next one; case-sensitive on every backend).
- VALUE is a number (``31``, ``-0.5``, ``1e-3``) or a string in single or double quotes (a doubled quote
  stands for itself: ``'it''s'``).
- Comparisons join with ``and`` and ``or`` (``and`` binds tighter) and group with parentheses. Keywords
  are case-insensitive.

What a comparison means
-----------------------
- Metrics are the run's latest value of the metric (highest step, then newest) and compare with numbers.
- Params and tags are text. Compared with a string they compare as text (code-point order). Compared with
  a number they compare as numbers, and only params whose text *is* a number take part: a JSON number
  (``31``, ``0.1``, ``-2e-05``; what ``json.dumps`` writes for a float) with at most 25 digits in a row
  and at most 2 exponent digits, so that every backend reads it as the same 64-bit float.
- A run without the metric, param or tag (or whose metric is NaN, or whose param is not a number when
  compared with one) matches no comparison on it, ``!=`` included, as in SQL.
- ``started_at`` and ``ended_at`` compare with an ISO date or time in quotes (``'2026-11-24'``,
  ``'2026-11-24T10:00:00+01:00'``); a time without a zone is UTC.

Ordering (``order_by``) takes ``FIELD [asc|desc]``; runs missing the value come last either way. Params
and tags order numbers first (numerically), then the other texts. Ties break on newest start, then id.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from mloop.errors import MloopError

KINDS = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
}
ATTRIBUTES = ("id", "run_id", "name", "status", "started_at", "ended_at", "parent_id")
TIMES = frozenset({"started_at", "ended_at"})
OPS = ("=", "!=", "<", "<=", ">", ">=", "like")
_OP_ALIASES = {"==": "=", "<>": "!="}

# What counts as a number in a param or tag; the SQLite form below must accept exactly the same texts.
NUMBER = re.compile(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,2})?")
_NUMBER_LITERAL = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_KEY = re.compile(r"[A-Za-z0-9_\-./:]+")
_WORD = re.compile(r"[A-Za-z_]+")


class FilterError(MloopError):
    """A search filter or order that does not parse; the message shows where and what was expected."""

    def __init__(self, text: str, position: int, message: str) -> None:
        self.text = text
        self.position = position
        super().__init__(f"{message}\n    {text}\n    {' ' * position}^")


@dataclass(frozen=True)
class Comparison:
    kind: str  # metrics | params | tags | attributes
    key: str
    op: str
    value: float | str | datetime


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    items: tuple[Expr, ...]


Expr = Comparison | BoolOp


@dataclass(frozen=True)
class Order:
    kind: str
    key: str
    descending: bool = False


# ---- parsing --------------------------------------------------------------------------------------------


MAX_FILTER = 10_000  # characters in a filter
MAX_DEPTH = 32  # nested parentheses
MAX_COMPARISONS = 200  # comparisons in a filter: each is a subquery; SQLite refuses deep expression trees


def parse_filter(text: str | None) -> Expr | None:
    """The filter's syntax tree, or None for an empty filter (every run). A filter is bounded: at most
    :data:`MAX_FILTER` characters, :data:`MAX_DEPTH` nested parentheses and :data:`MAX_COMPARISONS`
    comparisons (a clear :class:`FilterError`, not a crash of the parser or of the database)."""
    if text is None or not text.strip():
        return None
    if len(text) > MAX_FILTER:
        raise FilterError(text[:60], 60, f"A filter holds at most {MAX_FILTER:,} characters; this one has "
                          f"{len(text):,}. Narrow it, or search in steps.")  # fmt: skip
    parser = _Parser(text)
    expr = parser.expression()
    parser.skip()
    if not parser.at_end():
        parser.fail("the filter", "'and', 'or', ')' or the end of the filter")
    return expr


def parse_order_by(items: Sequence[str] | str | None) -> list[Order]:
    """``["metrics.auc desc", "params.lr"]`` as :class:`Order` items."""
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]
    orders = []
    for item in items:
        parser = _Parser(item)
        parser.skip()
        kind, key = parser.field()
        parser.skip()
        word = parser.word()
        descending = False
        if word is not None:
            if word.lower() not in ("asc", "desc"):
                parser.pos -= len(word)
                parser.fail("the order", "'asc', 'desc' or the end")
            descending = word.lower() == "desc"
            parser.skip()
        if not parser.at_end():
            parser.fail("the order", "'asc', 'desc' or the end")
        orders.append(Order(kind, key, descending))
    return orders


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0
        self.comparisons = 0

    def fail(self, what: str, expected: str, at: int | None = None) -> NoReturn:
        at = self.pos if at is None else at
        found = "the end" if at >= len(self.text) else repr(self.text[at : at + 12])
        raise FilterError(
            self.text, at, f"Cannot read {what} at position {at}: expected {expected}, found {found}."
        )

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def word(self) -> str | None:
        match = _WORD.match(self.text, self.pos)
        if match is None:
            return None
        self.pos = match.end()
        return match.group()

    def keyword(self, name: str) -> bool:
        self.skip()
        match = _WORD.match(self.text, self.pos)
        if match is not None and match.group().lower() == name:
            self.pos = match.end()
            return True
        return False

    def expression(self) -> Expr:
        items = [self.conjunction()]
        while self.keyword("or"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def conjunction(self) -> Expr:
        items = [self.term()]
        while self.keyword("and"):
            items.append(self.term())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def term(self) -> Expr:
        self.skip()
        if self.text.startswith("(", self.pos):
            start = self.pos
            self.depth += 1
            if self.depth > MAX_DEPTH:
                self.fail("the filter", f"at most {MAX_DEPTH} nested parentheses (remove the extra ones)")
            self.pos += 1
            expr = self.expression()
            self.depth -= 1
            self.skip()
            if not self.text.startswith(")", self.pos):
                self.fail("the filter", f"')' to close the '(' at position {start}")
            self.pos += 1
            return expr
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            self.fail("the filter", f"at most {MAX_COMPARISONS} comparisons (search in steps, or narrow it)")
        return self.comparison()

    def field(self) -> tuple[str, str]:
        start = self.pos
        word = self.word()
        if word is None or word.lower() not in KINDS or not self.text.startswith(".", self.pos):
            self.fail(
                "the filter",
                "a field: metrics.KEY, params.KEY, tags.KEY or attributes.NAME (or '(')",
                at=start,
            )
        kind = KINDS[word.lower()]
        self.pos += 1
        key_at = self.pos
        key = self.key()
        if kind == "attributes" and key not in ATTRIBUTES:
            self.fail("the filter", f"an attribute name, one of {', '.join(ATTRIBUTES)}", at=key_at)
        return kind, key

    def key(self) -> str:
        if self.pos < len(self.text) and self.text[self.pos] in '`"':
            return self.quoted(self.text[self.pos], "a key")
        match = _KEY.match(self.text, self.pos)
        if match is None:
            self.fail("the filter", "a key after the '.' (quote one with spaces in `backticks`)")
        self.pos = match.end()
        return match.group()

    def quoted(self, quote: str, what: str) -> str:
        start = self.pos
        self.pos += 1
        out = []
        while True:
            end = self.text.find(quote, self.pos)
            if end < 0:
                self.fail(
                    "the filter", f"a closing {quote} for the {what} opened at position {start}", at=start
                )
            out.append(self.text[self.pos : end])
            if self.text.startswith(quote * 2, end):  # a doubled quote stands for itself
                out.append(quote)
                self.pos = end + 2
                continue
            self.pos = end + 1
            return "".join(out)

    def operator(self) -> str:
        self.skip()
        for op in ("<=", ">=", "!=", "==", "<>", "=", "<", ">"):
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                return _OP_ALIASES.get(op, op)
        if self.keyword("like"):
            return "like"
        self.fail("the filter", "an operator: =, !=, <, <=, >, >= or like")

    def comparison(self) -> Comparison:
        kind, key = self.field()
        self.skip()
        op_at = self.pos
        op = self.operator()
        self.skip()
        value_at = self.pos
        value: float | str | datetime
        if self.pos < len(self.text) and self.text[self.pos] in "'\"":
            value = self.quoted(self.text[self.pos], "string")
        else:
            match = _NUMBER_LITERAL.match(self.text, self.pos)
            if match is None:
                self.fail("the filter", "a value: a number, or a string in quotes ('adam')")
            self.pos = match.end()
            value = float(match.group())
        self._check(kind, key, op, value, op_at, value_at)
        if kind == "attributes" and key in TIMES:
            value = _as_time(self, str(value), value_at)
        return Comparison(kind, "id" if key == "run_id" and kind == "attributes" else key, op, value)

    def _check(self, kind: str, key: str, op: str, value: Any, op_at: int, value_at: int) -> None:
        numeric = isinstance(value, float)
        if op == "like" and kind == "metrics":
            self.fail("the filter", "=, !=, <, <=, > or >= (like compares text; metrics are numbers)", op_at)
        if kind == "metrics" and not numeric:
            self.fail("the filter", f"a number to compare metrics.{key} with (metrics are numbers)", value_at)
        if op == "like" and numeric:
            self.fail("the filter", "a quoted pattern after like ('adam%')", value_at)
        if op == "like" and re.search(r"(?<!\\)(\\\\)*\\$", str(value)):
            self.fail("the filter", "a character after the escaping \\ at the end of the pattern", value_at)
        if kind == "attributes" and key in TIMES:
            if op == "like":
                self.fail("the filter", f"=, !=, <, <=, > or >= for attributes.{key} (a time)", op_at)
            if numeric:
                self.fail("the filter", f"a quoted ISO time for attributes.{key} ('2026-11-24')", value_at)
        elif kind == "attributes" and numeric:
            self.fail("the filter", f"a quoted string for attributes.{key}", value_at)


def _as_time(parser: _Parser, text: str, at: int) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        parser.fail("the filter", "an ISO date or time ('2026-11-24' or '2026-11-24T10:00:00Z')", at)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


__all__ = ["BoolOp", "Comparison", "Expr", "FilterError", "Order", "parse_filter", "parse_order_by"]
