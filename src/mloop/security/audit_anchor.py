"""The audit key and the anchor: what makes the audit chain hold against someone who can write the database.

A plain hash chain proves that nobody edited the log *unless* the editor recomputed the hashes from the
edit onwards and the head with them: anyone who can write the database can do that. With a key
(``MLOOP_AUDIT_KEY``, a secret outside the database), every event's hash is an HMAC-SHA256, which nobody
without the key can recompute, so an edit shows however much is rewritten after it. What a key alone cannot
show is the *deletion* of the newest events together with the head row; the anchor does: after each
committed event, one line ``{"seq", "hash", "keyed_since", "mac"}`` is appended to a file outside the
database (``audit_anchor``), authenticated with the same key. :func:`mloop.security.audit_chain.verify`
checks the chain against the newest anchored event.

The anchor file must live where the database's writer cannot truncate it (another host's mount, a file
with the append-only attribute, or shipped to a log collector as it grows): docs/security.md draws that
boundary. A line is short and written with one ``O_APPEND`` write, so processes appending together do not
interleave inside a line.

>>> keying = Keying(b"k" * 32, Path(".mloop/audit-anchor.log"))   # doctest: +SKIP
>>> keying.record(seq=12, digest="ab12...")                       # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from mloop.errors import ConfigError

MIN_KEY_LENGTH = 32


@dataclass
class AnchorState:
    """What the anchor file says: the newest anchored event, since when events are keyed, what is wrong."""

    seq: int = 0
    hash: str | None = None
    keyed_since: int | None = None
    hashes: dict[int, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    lines: int = 0


class Keying:
    """The audit key and the anchor file it authenticates."""

    def __init__(self, key: bytes, anchor: Path) -> None:
        if len(key) < MIN_KEY_LENGTH:
            raise ConfigError(
                f"MLOOP_AUDIT_KEY holds {len(key)} bytes; use at least {MIN_KEY_LENGTH}, for example "
                "the output of: python -c 'import secrets; print(secrets.token_hex(32))'"
            )
        self.key = key
        self.anchor = anchor
        self._lock = threading.Lock()
        self._keyed_since: int | None = None

    def digest(self, body: bytes) -> str:
        return hmac.new(self.key, body, hashlib.sha256).hexdigest()

    def record(self, seq: int, digest: str) -> None:
        """Append the anchor line of a committed event (after its transaction committed)."""
        with self._lock:
            if self._keyed_since is None:
                self._keyed_since = self.read().keyed_since or seq
            line = {"seq": seq, "hash": digest, "keyed_since": self._keyed_since}
            line["mac"] = self._mac(line)
            self.anchor.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.anchor, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (json.dumps(line, sort_keys=True) + "\n").encode())
            finally:
                os.close(fd)

    def read(self) -> AnchorState:
        """The anchor file's state; lines whose MAC does not verify are problems, not evidence."""
        state = AnchorState()
        try:
            text = self.anchor.read_text(encoding="utf-8")
        except FileNotFoundError:
            return state
        bad = 0
        for number, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            state.lines += 1
            try:
                line = json.loads(raw)
                mac = line.pop("mac")
                good = hmac.compare_digest(mac, self._mac(line))
            except (ValueError, KeyError, TypeError, AttributeError):
                good = False
            if not good:
                bad += 1
                state.problems.append(f"line {number} of the anchor {self.anchor} was edited or forged")
                continue
            seq = int(line["seq"])
            state.hashes[seq] = str(line["hash"])
            if seq >= state.seq:
                state.seq, state.hash = seq, str(line["hash"])
            since = int(line["keyed_since"])
            state.keyed_since = since if state.keyed_since is None else min(state.keyed_since, since)
        if state.lines and bad == state.lines:
            raise ConfigError(
                f"No line of the audit anchor {self.anchor} verifies with this MLOOP_AUDIT_KEY: the key is "
                "not the one the log was written with. Set the right key to verify the log."
            )
        return state

    def _mac(self, line: dict[str, object]) -> str:
        return self.digest(json.dumps(line, sort_keys=True).encode())
