"""A TCP relay in front of a real server that can hang: while hung it accepts connections and answers
nothing on any of them, new or open, as a store stuck on a lock, or reached through a network black hole,
looks to its clients. Loopback only. Recovering drops the connections held meanwhile (the clients see a
reset and reconnect) and relays again."""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.services import free_port


class HungRelay:
    """``127.0.0.1:port`` relayed to ``127.0.0.1:target``; :meth:`hang` and :meth:`recover` switch it."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.held = 0  # connections opened or used while hung: each a client left waiting
        self._hung = threading.Event()
        self._recovered = threading.Condition()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._closed = False

    def start(self) -> HungRelay:
        threading.Thread(target=self._accept, name="hung-relay", daemon=True).start()
        return self

    def hang(self) -> None:
        self._hung.set()

    def recover(self) -> None:
        """Relay again; the connections held while hung are closed (their requests were never answered)."""
        with self._recovered:
            self._hung.clear()
            self._recovered.notify_all()

    def stop(self) -> None:
        self._closed = True
        self.recover()
        self._listener.close()
        with self._lock:
            for held in list(self._open):
                _close(held)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._track(client)
            if self._hung.is_set():  # a new connection while hung: accepted, never answered
                self._hold(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                self._drop(client)
                continue
            upstream.settimeout(None)
            self._track(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if self._hung.is_set():  # the bytes go nowhere until recovery, which drops the connection
                    self._wait_recovered()
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(source)
            self._drop(sink)

    def _hold(self, client: socket.socket) -> None:
        def held() -> None:
            self._wait_recovered()
            self._drop(client)

        threading.Thread(target=held, daemon=True).start()

    def _wait_recovered(self) -> None:
        with self._lock:
            self.held += 1
        with self._recovered:
            self._recovered.wait_for(lambda: not self._hung.is_set())

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._open.add(conn)

    def _drop(self, conn: socket.socket) -> None:
        with self._lock:
            self._open.discard(conn)
        _close(conn)


def _close(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        conn.close()
