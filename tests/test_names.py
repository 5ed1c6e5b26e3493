"""Names are checked as whole strings: a trailing newline (which ``re.match`` with ``$`` let through) is
refused at every entry point that takes a name, so no folder, user or endpoint can be named ``x\\n``
(issue 17, item 4)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mloop as ml
from mloop import Project
from mloop._names import valid
from mloop.artifacts.store import _check_digest
from mloop.data.schema import name_problem
from mloop.deployments.revision import check_endpoint
from mloop.errors import MloopError
from mloop.registry.queries import check_alias, check_name


def _refuses(check: Callable[[str], Any], name: str) -> bool:
    try:
        result = check(name)
    except (MloopError, ValueError):
        return True
    return isinstance(result, str) and check is name_problem  # name_problem answers the problem


CHECKS: dict[str, tuple[Callable[[str], Any], str]] = {
    "dataset": (name_problem, "transactions"),
    "model": (check_name, "fraud-gbm"),
    "alias": (check_alias, "champion"),
    "endpoint": (check_endpoint, "fraud"),
    "entity": (lambda n: ml.Entity(n, join_keys=["customer_id"]), "customer"),
    "artifact digest": (_check_digest, "a" * 64),
}


@pytest.mark.parametrize("kind", sorted(CHECKS))
@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\t"])
def test_a_name_with_trailing_whitespace_is_refused(kind: str, suffix: str) -> None:
    check, good = CHECKS[kind]
    assert not _refuses(check, good)
    assert _refuses(check, good + suffix), f"{kind} {good + suffix!r} was accepted"


def test_a_user_name_with_a_newline_is_refused(tmp_path: Path) -> None:
    with Project.open(tmp_path, env={}) as project:
        with pytest.raises(MloopError, match="not allowed"):
            project.users.add("u_admin\n", ["admin"])
        assert [u.name for u in project.users.list() if u.name.startswith("u_admin")] == []
        project.users.add("u_admin", ["auditor"])


@given(st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True), st.sampled_from(["\n", "\x0b", "\x00"]))
def test_valid_is_a_full_match(name: str, tail: str) -> None:
    pattern = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
    assert valid(pattern, name) and not valid(pattern, name + tail)
    assert not valid(pattern, None) and not valid(pattern, 3)
