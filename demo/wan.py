"""A cuttable 'WAN' between a site's broker and the region: a TCP relay on loopback.

The demo and the tests put it between a site broker's bridge and the regional broker, then
cut it (every connection dropped, new ones closed at once) and restore it, as a WAN outage.

    wan = WanLink(regional_bridge_port).restore()   # bridge to 127.0.0.1:wan.port
    wan.cut(); ...; wan.restore()
"""

from __future__ import annotations

import contextlib
import socket
import threading

from protocol.brokers import free_port


class WanLink:
    """A TCP relay standing for the WAN between a site and the region: `cut()` drops every
    connection and refuses new ones until `restore()`."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.up = False

    def restore(self) -> WanLink:
        """Relay connections (again)."""
        if self._listener is None:
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(16)
            self._listener = listener
            threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        self.up = True
        return self

    def cut(self) -> None:
        """Drop every connection; new ones are accepted and closed at once (a middlebox that
        resets) until `restore()`; `close()` refuses them instead (a host unreachable)."""
        self.up = False
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def close(self) -> None:
        """Cut and stop listening."""
        self.cut()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                inside, _ = listener.accept()
            except OSError:
                return
            if not self.up:
                inside.close()
                continue
            try:
                outside = socket.create_connection(self.target, timeout=5)
                outside.settimeout(None)
            except OSError:
                inside.close()
                continue
            with self._lock:
                self._conns += [inside, outside]
            for a, b in ((inside, outside), (outside, inside)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
