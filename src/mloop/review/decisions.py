"""Architecture decisions as data (``mloop decisions``, ``project.decisions``): what was chosen among which
options, what it gave up, who owns it and when it is looked at again. Every write is audited, so the review
can cite the trail.

>>> adr = project.decisions.add(                                                  # doctest: +SKIP
...     "Online features in Redis", context="p99 under 20 ms at 2k rps", options=["SQLite", "Redis"],
...     choice="Redis", tradeoff="one more server to run", owner="alice", review_by="2027-03-01",
...     links=["endpoint:fraud"])
>>> adr.id                                                                         # doctest: +SKIP
'ADR-1'
>>> project.decisions.supersede("ADR-1", by="ADR-3")                               # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mloop._service import Service
from mloop._time import utcnow
from mloop.access import queries
from mloop.errors import MloopError, NotFound
from mloop.store import MetadataStore
from mloop.store.schema import DecisionRow

#: The kinds of object a decision may link to (the review's reference kinds).
LINK_KINDS = (
    "endpoint",
    "model",
    "run",
    "dataset",
    "feature_view",
    "event",
    "setting",
    "key",
    "user",
    "decision",
)
_LINK = re.compile(r"^([a-z_]+):(\S.{0,198})$")
_ID = re.compile(r"^(?:ADR-)?([1-9][0-9]{0,8})$", re.IGNORECASE)


@dataclass(frozen=True)
class Decision:
    """One architecture decision record, ``ADR-<number>`` within its project."""

    number: int
    title: str
    context: str
    options: tuple[str, ...]
    choice: str
    tradeoff: str
    owner: str
    status: str  # accepted | superseded
    superseded_by: int | None
    review_by: date
    links: tuple[str, ...]
    created_at: datetime
    created_by: str

    @property
    def id(self) -> str:
        return f"ADR-{self.number}"

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    @property
    def state(self) -> str:
        """``accepted``, or ``superseded by ADR-n``."""
        return "accepted" if self.accepted else f"superseded by ADR-{self.superseded_by}"

    def due(self, today: date) -> bool:
        """An accepted decision whose review date has passed: it should be looked at again."""
        return self.accepted and self.review_by < today

    @classmethod
    def from_row(cls, row: DecisionRow) -> Decision:
        return cls(
            row.number, row.title, row.context, tuple(row.options), row.choice, row.tradeoff, row.owner,
            row.status, row.superseded_by, row.review_by.date(), tuple(row.links), row.created_at, row.created_by,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "context": self.context,
            "options": list(self.options),
            "choice": self.choice,
            "tradeoff": self.tradeoff,
            "owner": self.owner,
            "status": self.state,
            "superseded_by": f"ADR-{self.superseded_by}" if self.superseded_by else None,
            "review_by": self.review_by.isoformat(),
            "links": list(self.links),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


def recorded(store: MetadataStore, project_id: int) -> list[Decision]:
    """Every decision of the project, oldest first: what the review reads (its actor holds
    ``review.read``, which covers the decisions every role may read)."""
    with store.read() as session:
        rows = session.scalars(
            select(DecisionRow).where(DecisionRow.project_id == project_id).order_by(DecisionRow.number)
        ).all()
    return [Decision.from_row(r) for r in rows]


def parse_id(text: str) -> int:
    """``ADR-3`` (or ``3``) as 3."""
    found = _ID.match(text.strip())
    if found is None:
        raise MloopError(
            f"{text!r} is not a decision id: write ADR-<number> (ADR-3); `mloop decisions list` shows them."
        )
    return int(found.group(1))


def parse_date(value: date | str, *, what: str = "review date") -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise MloopError(
            f"The {what} {value!r} is not a date: write it as YYYY-MM-DD (2027-03-01)."
        ) from None


class Decisions(Service):
    """``project.decisions``: record, list and supersede architecture decisions (``decisions.write`` to
    record, ``decisions.read``, which every role holds, to read)."""

    def add(
        self,
        title: str,
        *,
        context: str,
        options: Iterable[str],
        choice: str,
        tradeoff: str,
        owner: str,
        review_by: date | str,
        links: Iterable[str] = (),
    ) -> Decision:
        """Record a decision as accepted; it is ADR-<n+1> of the project."""
        self._authorize("decisions.write", "decisions")  # before validating: refuse a reader first
        title, context, choice, tradeoff = title.strip(), context.strip(), choice.strip(), tradeoff.strip()
        options = [o.strip() for o in options if o.strip()]
        links = [_link(link) for link in links]
        review = parse_date(review_by)
        _validate(title, choice, options, tradeoff, review)
        with self._mutate(
            "decisions.write", "decisions", action="decisions.add",
            title=title, choice=choice, owner=owner, review_by=review.isoformat(), links=links,
        ) as change:  # fmt: skip
            _check_owner(change.session, owner)
            number = (
                change.session.scalar(
                    select(func.max(DecisionRow.number)).where(DecisionRow.project_id == self._ctx.project_id)
                )
                or 0
            ) + 1
            row = DecisionRow(
                project_id=self._ctx.project_id, number=number, title=title, context=context, options=options,
                choice=choice, tradeoff=tradeoff, owner=owner, status="accepted", superseded_by=None,
                review_by=datetime.combine(review, time(), UTC), links=links, created_at=utcnow(),
                created_by=self.actor.name, superseded_at=None,
            )  # fmt: skip
            change.session.add(row)
            change.session.flush()
            change.resource = f"decision:ADR-{number}"
            return Decision.from_row(row)

    def list(self, *, due: bool = False, today: date | None = None) -> builtins.list[Decision]:
        """Every decision, oldest first; with ``due``, only accepted ones whose review date has passed."""
        self._authorize("decisions.read", "decisions")
        found = recorded(self._ctx.store, self._ctx.project_id)
        if due:
            day = today or utcnow().date()
            found = [d for d in found if d.due(day)]
        return found

    def get(self, id: str) -> Decision:
        self._authorize("decisions.read", "decisions")
        with self._ctx.store.read() as session:
            return Decision.from_row(self._row(session, parse_id(id)))

    def supersede(self, id: str, *, by: str) -> Decision:
        """Mark decision ``id`` superseded by the accepted decision ``by`` (record that one first with
        :meth:`add`); the old record stays, with a pointer to its replacement."""
        old, new = parse_id(id), parse_id(by)
        if old == new:
            raise MloopError(
                f"ADR-{old} cannot supersede itself: record the new decision first (`mloop decisions add`)."
            )
        with self._mutate(
            "decisions.write", f"decision:ADR-{old}", action="decisions.supersede", by=f"ADR-{new}"
        ) as change:
            row, replacement = self._row(change.session, old), self._row(change.session, new)
            if row.status != "accepted":
                raise MloopError(
                    f"ADR-{old} is superseded by ADR-{row.superseded_by} already; supersede ADR-{row.superseded_by} instead."
                )
            if replacement.status != "accepted":
                raise MloopError(
                    f"ADR-{new} is itself superseded by ADR-{replacement.superseded_by}; "
                    f"supersede ADR-{old} with ADR-{replacement.superseded_by}."
                )
            row.status, row.superseded_by, row.superseded_at = "superseded", new, utcnow()
            return Decision.from_row(row)

    def _row(self, session: Session, number: int) -> DecisionRow:
        row = session.scalar(
            select(DecisionRow).where(
                DecisionRow.project_id == self._ctx.project_id, DecisionRow.number == number
            )
        )
        if row is None:
            raise NotFound(f"No decision ADR-{number} in this project; `mloop decisions list` shows them.")
        return row


def _validate(title: str, choice: str, options: builtins.list[str], tradeoff: str, review: date) -> None:
    if not title:
        raise MloopError("A decision needs a title: what was decided, in a few words (--title).")
    if not choice:
        raise MloopError("The choice is empty: say which option was chosen (--choice).")
    if options and choice not in options:
        raise MloopError(
            f"The choice {choice!r} is not one of the options ({', '.join(options)}): pass it as an --option "
            "too, or choose one of them."
        )
    if not tradeoff:
        raise MloopError("The trade-off is empty: say what the choice gives up (--tradeoff).")
    today = utcnow().date()
    if review < today:
        raise MloopError(
            f"The review date {review.isoformat()} is in the past (today is {today.isoformat()}): "
            "give a date from today on when the decision should be looked at again (--review-by)."
        )


def _check_owner(session: Session, owner: str) -> None:
    row = queries.user(session, owner)
    if row is None:
        raise NotFound(f"The owner {owner!r} is not a user of this project; `mloop users list` shows them, "
                       "`mloop users add` adds one.")  # fmt: skip
    if row.disabled:
        raise MloopError(f"The owner {owner!r} is disabled: give the decision to an active user, or "
                         f"`mloop users enable {owner}`.")  # fmt: skip


def _link(text: str) -> str:
    found = _LINK.match(text.strip())
    if found is None or found.group(1) not in LINK_KINDS:
        raise MloopError(
            f"The link {text!r} is not a reference: write kind:name (endpoint:fraud, model:fraud/2) with kind one "
            f"of {', '.join(LINK_KINDS)}."
        )
    return text.strip()
