"""Which processes of this machine serve a TCP port, read from ``/proc`` (Linux): the listening socket's
inode in ``/proc/net/tcp`` and ``tcp6``, then the processes whose ``/proc/PID/fd`` hold it.

``mloop serve --workers N`` binds the port in its supervisor and its workers inherit the socket, so every
process of the server holds the same listening inode: the supervisor is the holder whose parent does not
hold it, the workers are the holders whose parent does. Only processes this user may inspect are seen.

>>> server_on(8700)                                         # doctest: +SKIP
ServerProcesses(port=8700, supervisor=4120, workers=(4131, 4132), argv=('…/mloop', 'serve', …))
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
LISTEN, ESTABLISHED = "0A", "01"  # the TCP states in /proc/net/tcp


@dataclass(frozen=True)
class ServerProcesses:
    """The processes holding a port's listening socket."""

    port: int
    supervisor: int  # the process that holds the socket and whose parent does not
    workers: tuple[int, ...]  # its children holding it too; empty for a single-process server
    argv: tuple[str, ...]  # the supervisor's command line
    others: tuple[int, ...] = ()  # its other children (multiprocessing's resource tracker)

    @property
    def is_mloop_serve(self) -> bool:
        """Whether the supervisor was started as ``mloop … serve`` (the console script or ``-m mloop``)."""
        return "serve" in self.argv and any(
            Path(a).name == "mloop" or a.startswith("mloop") for a in self.argv
        )


def _sockets(table: str, port: int, state: str) -> Iterator[str]:
    """The inodes of the sockets in ``/proc/net/<table>`` on local ``port`` in ``state``."""
    try:
        lines = (PROC / "net" / table).read_text().splitlines()[1:]
    except OSError:
        return
    for line in lines:
        cols = line.split()
        if len(cols) > 9 and cols[3] == state and int(cols[1].rsplit(":", 1)[1], 16) == port:
            yield cols[9]


def sockets_held(pid: int) -> set[str]:
    """The socket inodes process ``pid`` holds open (empty when it is gone or not ours to read)."""
    inodes: set[str] = set()
    try:
        fds = list((PROC / str(pid) / "fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            name = fd.readlink().name
        except OSError:
            continue
        if name.startswith("socket:["):
            inodes.add(name[8:-1])
    return inodes


def _parent(pid: int) -> int | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return int(text.rsplit(")", 1)[1].split()[1])  # after the command name, which may hold spaces


def _argv(pid: int) -> tuple[str, ...]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def _pids() -> Iterator[int]:
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def _listening(port: int) -> set[str]:
    return {inode for table in ("tcp", "tcp6") for inode in _sockets(table, port, LISTEN)}


def server_on(port: int) -> ServerProcesses | None:
    """The processes of this machine that listen on TCP ``port`` (that this user can see), or None."""
    listening = _listening(port)
    if not listening:
        return None
    holders = sorted(pid for pid in _pids() if sockets_held(pid) & listening)
    if not holders:
        return None
    parents = {pid: _parent(pid) for pid in holders}
    roots = [pid for pid in holders if parents[pid] not in parents]
    supervisor = roots[0]
    workers = tuple(pid for pid in holders if parents[pid] == supervisor)
    others = tuple(pid for pid in children(supervisor) if pid not in workers)
    return ServerProcesses(port, supervisor, workers, _argv(supervisor), others)


def connections(pid: int, port: int) -> int:
    """Established TCP connections on local ``port`` that process ``pid`` holds: its clients."""
    established = {inode for table in ("tcp", "tcp6") for inode in _sockets(table, port, ESTABLISHED)}
    return len(sockets_held(pid) & established)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return text.rsplit(")", 1)[1].split()[0] != "Z"


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    return [child for child in _pids() if _parent(child) == pid and alive(child)]


def new_workers(server: ServerProcesses) -> list[int]:
    """The children of ``server``'s supervisor started since it was read: replacements of its workers (a
    new one holds the port's socket only once its interpreter has started, seconds later on a busy
    machine; the process is there at once)."""
    known = {*server.workers, *server.others}
    return [pid for pid in children(server.supervisor) if pid not in known]
