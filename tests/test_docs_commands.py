"""Every shell command in README.md and docs/*.md, run as written in a fresh demo project.

The commands of one page run in order, in their own copy of a demo project built once (``mloop demo
--fast``), with the venv's ``bin`` first on PATH (as after ``source .venv/bin/activate``). A ``mloop
serve`` line starts a real server in the background for the page's later ``curl`` lines. A command
fails the test on a non-zero exit, and a ``curl`` on an error body. Names the reader must substitute
(a run id, a request id, a key) are filled in from the project: ``PLACEHOLDERS`` lists them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.demo_run import DemoRun
from tests.services import free_port

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELLS = ("sh", "bash", "shell", "console")
# Lines that are not run here, with the reason: the make targets are what CI itself runs.
NOT_RUN = {
    "make demo": "CI does not run the full demo; the demo test runs `mloop demo --fast`, which it calls",
    "make test": "this is the test suite itself",
    "make test-fast": "a subset of this test suite",
    "make lint": "the first step of `make test`",
}

# Pages for people who work on mloop itself: their commands run in the repository.
DEVELOPER_PAGES = {"architecture.md"}


@dataclass
class Command:
    page: str
    line: int
    text: str


@dataclass
class Session:
    """The state a page's commands share: the folder they run in, the server they started."""

    root: Path
    cwd: Path
    port: int
    env: dict[str, str]
    values: dict[str, Callable[[Session], str]]
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)


def commands(page: Path) -> list[Command]:
    """The commands of a page's shell blocks: continuation lines, quotes open across lines and
    here-documents joined; comments and output lines (``# ...``) dropped."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
        if match.group(1) not in SHELLS:
            continue
        first = text[: match.start()].count("\n") + 2
        pending, start, heredoc, quote = "", first, None, None
        for offset, raw in enumerate(match.group(2).splitlines()):
            if heredoc is not None:  # a here-document's lines belong to its command, comments and all
                pending += raw + "\n"
                if raw.strip() == heredoc:
                    found.append(Command(page.name, start, pending.rstrip()))
                    pending, heredoc = "", None
                continue
            if not pending:
                start = first + offset
            code, quote = _strip_comment(raw, quote)
            line = code.rstrip()
            opened = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
            if opened and quote is None:
                pending, heredoc = pending + line + "\n", opened.group(1)
            elif quote is not None:  # a quoted string goes on to the next line
                pending += code + "\n"
            elif line.endswith("\\"):
                pending += line[:-1] + " "
            else:
                whole, pending = (pending + line).strip(), ""
                if whole:
                    found.append(Command(page.name, start, whole))
    return found


def _strip_comment(line: str, quote: str | None = None) -> tuple[str, str | None]:
    """The line without its shell comment (a ``#`` outside quotes that starts a word), and the quote
    still open at its end; ``quote`` is the one open at its start."""
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i], None
    return line, quote


def test_every_page_has_its_commands_found() -> None:
    found = {c.page for page in PAGES for c in commands(page)}
    assert {"README.md", "data.md", "serving.md", "security.md"} <= found


def test_a_here_document_is_one_command(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```sh\ncat > a.py <<'EOF'\nx = 1  # kept\nEOF\nmloop a   # note\n```\n")
    found = [c.text for c in commands(page)]
    assert found == ["cat > a.py <<'EOF'\nx = 1  # kept\nEOF", "mloop a"]


def test_comments_are_dropped_outside_quotes_only() -> None:
    assert _strip_comment("mloop a   # why") == ("mloop a   ", None)
    assert _strip_comment('curl -d \'{"a": "#1"}\' # x') == ('curl -d \'{"a": "#1"}\' ', None)
    assert _strip_comment("# only a comment") == ("", None)
    assert _strip_comment('curl -d \'{"a": 1,') == ('curl -d \'{"a": 1,', "'")
    assert _strip_comment('  "b": "#2"}\'  # done', "'") == ('  "b": "#2"}\'  ', None)


def test_a_quote_open_at_the_end_of_a_line_joins_the_next(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text('```sh\ncurl -d \'{"a": 1,\n  "b": 2}\'   # note\nmloop b\n```\n')
    assert [c.text for c in commands(page)] == ['curl -d \'{"a": 1,\n  "b": 2}\'', "mloop b"]


@pytest.fixture(scope="session")
def demo_project(fast_demo: DemoRun) -> Path:
    return fast_demo.folder


@pytest.fixture
def session(demo_project: Path, tmp_path: Path) -> Iterator[Session]:
    root = tmp_path / "clone"
    root.mkdir()
    shutil.copytree(demo_project, root / "mloop-demo")
    (root / ".venv").symlink_to(Path(sys.executable).parent.parent)  # README's `../.venv/bin/mloop`
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for name in ("MLOOP_PROJECT_DIR", "MLOOP_API_KEY", "NO_COLOR"):
        env.pop(name, None)
    env.update(COLUMNS="120", TERM="dumb")
    state = Session(root, root / "mloop-demo", free_port(), env, dict(PLACEHOLDERS))
    try:
        yield state
    finally:
        for server in state.servers:
            server.terminate()
            server.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_shell_command_of_the_page_runs_as_written(page: Path, session: Session) -> None:
    if page.name == "README.md":
        session.cwd = session.root  # the README's commands start next to the demo folder
    if page.name in DEVELOPER_PAGES:
        session.cwd = REPO
    failures = []
    for command in commands(page):
        if command.text in NOT_RUN:
            continue
        problem = run(command, session)
        if problem:
            failures.append(f"{command.page}:{command.line}: {command.text}\n{problem}")
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


def run(command: Command, session: Session) -> str | None:
    """Run one command; what went wrong, or None."""
    text = _fill(command.text.replace("8700", str(session.port)), session)
    if text.startswith("cd "):
        session.cwd = (session.cwd / text[3:].strip()).resolve()
        return None
    if re.match(r"(\S*/)?mloop (-C \S+ )?serve\b", text):
        return _serve(text, session)
    assigned = re.fullmatch(r"([A-Za-z_]\w*)=(\$\(.*\)|\S*)", text, re.S)  # not `NAME=value command`
    if assigned:  # `rid=$(curl ...)`: the page's later commands read $rid
        text = f'{text}\nprintf %s "${assigned.group(1)}"'
    done = subprocess.run(
        ["bash", "-c", text], cwd=session.cwd, env=session.env, capture_output=True, timeout=300, check=False
    )
    output = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
    if done.returncode != 0:
        return f"exit {done.returncode}\n{output[-3000:]}"
    if assigned:
        session.env[assigned.group(1)] = done.stdout.decode()
        return None if done.stdout.strip() else f"${assigned.group(1)} is empty"
    return _error_body(done.stdout) if text.startswith("curl") else None


def _error_body(body: bytes) -> str | None:
    try:
        value = json.loads(body)
    except ValueError:
        return f"the answer is not JSON: {body[:500]!r}"
    if isinstance(value, dict) and {"error", "detail"} & value.keys():
        return f"an error body: {value}"
    return None


def _serve(text: str, session: Session) -> str | None:
    log = session.root / f"server-{len(session.servers)}.log"
    with log.open("wb") as sink:  # a file, not a pipe: a pipe nobody reads would block the server
        server = subprocess.Popen(
            ["bash", "-c", f"exec {text}"], cwd=session.cwd, env=session.env, stdout=sink, stderr=sink
        )
    session.servers.append(server)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return f"the server exited {server.returncode}: {log.read_text(errors='replace')[-3000:]}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{session.port}/v2/health/ready", timeout=2):
                return None
        except OSError:
            time.sleep(0.3)
    return "the server did not become ready in 90 s"


def _fill(text: str, session: Session) -> str:
    for name, value in session.values.items():
        if name in text:
            text = text.replace(name, value(session))
    return text


def _mloop_json(session: Session, *args: str) -> object:
    done = subprocess.run(
        ["mloop", *args, "--json"], cwd=session.cwd, env=session.env, capture_output=True, check=True
    )
    return json.loads(done.stdout)


def _run_id(session: Session, index: int = 0) -> str:
    runs = _mloop_json(session, "runs", "list")
    assert isinstance(runs, list) and len(runs) > index
    return str(runs[index]["id"])


def _key(session: Session) -> str:
    done = subprocess.run(
        ["mloop", "keys", "issue", "alice", "--description", "docs test"], cwd=session.cwd, env=session.env,
        capture_output=True, check=True,
    )  # fmt: skip
    return done.stdout.decode().split()[0]


def _key_id(session: Session) -> str:
    keys = _mloop_json(session, "keys", "list")
    assert isinstance(keys, list) and keys
    return str(keys[0]["key_id"])


# What the reader substitutes, and where this test finds a real value for it.
PLACEHOLDERS: dict[str, Callable[[Session], str]] = {
    "OTHER_RUN_ID": lambda session: _run_id(session, 1),
    "RUN_ID": _run_id,
    "mlk_...": _key,
    "KEY_ID": _key_id,
}
