"""The production WSGI server of the web process: gevent, one greenlet per connection.

Thousands of phones hold a live stream (server-sent events) open for minutes while doing
nothing; a greenlet costs a few kilobytes where a thread costs a stack, so one process serves
them all (see docs/web.md, "Server", for the candidates measured). Around gevent's own WSGI
server this adds what a crowd on a LAN needs:

- one bounded pool of connections shared by every listener (a full pool stops accepting, it
  never grows without limit);
- a deadline for the request head: a connection that sends its headers slowly (or nothing)
  is closed after `head_timeout_s` and never holds others up;
- a timeout on every socket operation, TCP keepalive and TCP_USER_TIMEOUT, so a phone that
  left the Wi-Fi is dropped within a minute even while its stream only sends keep-alives;
- listeners with or without TLS in the same process (https for staff, http for the QR page).

The process must be monkey-patched by gevent before anything else imports socket, ssl or
threading users (`mpp web` does it first thing): the app's blocking calls (MQTT, SQLite
waits, sleeps) then yield to other connections.

    server = WebServer(app, [Listener("0.0.0.0", 8080), Listener("0.0.0.0", 8443, cert, key)])
    server.start()
    ...
    server.stop()
"""

from __future__ import annotations

import logging
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from protocol.errors import MppError

log = logging.getLogger("mpp.web")


class WebServerError(MppError, OSError):
    """The web server cannot listen on an address, or its TLS files are unusable."""


@dataclass(frozen=True)
class Listener:
    """One address to serve on; with `certfile` and `keyfile`, over TLS."""

    host: str
    port: int
    certfile: str | None = None
    keyfile: str | None = None

    @property
    def tls(self) -> bool:
        """Whether this listener speaks https."""
        return self.certfile is not None


@dataclass(frozen=True)
class Limits:
    """How much one web process holds, and how long it waits for a client."""

    max_connections: int = 6000
    head_timeout_s: float = 10.0  # the whole request head (line and headers)
    socket_timeout_s: float = 30.0  # any single read or write
    # Unacknowledged data for this long: the peer is gone. A live stream learns it at its next
    # keep-alive write, so a vanished phone's stream ends after at most keep-alive + this,
    # rounded up to a keep-alive: 45 s with 15 s keep-alives (tests/web/test_server_dead_phone).
    tcp_user_timeout_s: float = 20.0
    keepalive_idle_s: int = 20  # TCP keepalive probes on a quiet connection
    keepalive_interval_s: int = 10
    keepalive_count: int = 3


class _HeadTimeout(BaseException):
    """The client took too long to send its request head (a BaseException, like gevent's own
    Timeout, so the HTTP parser's error handling does not swallow it)."""


_REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


def tune(sock: Any, limits: Limits) -> None:
    """Socket options for a client connection: timeouts and dead-peer detection."""
    sock.settimeout(limits.socket_timeout_s)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, limits.keepalive_idle_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, limits.keepalive_interval_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, limits.keepalive_count)
        sock.setsockopt(
            socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(limits.tcp_user_timeout_s * 1000)
        )
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # not Linux, or a socket that closed meanwhile
        pass


def _server_classes() -> tuple[type, type]:
    """gevent's WSGI server and handler, with the head deadline and socket tuning added."""
    import gevent
    from gevent.pywsgi import WSGIHandler, WSGIServer

    class Handler(WSGIHandler):
        """Reads each request head under a deadline; an expired one closes the connection."""

        _head: Any = None

        def read_requestline(self) -> str:
            self._head = gevent.Timeout.start_new(self.server.limits.head_timeout_s, _HeadTimeout)
            return super().read_requestline()

        def read_request(self, raw_requestline: str) -> Any:
            try:
                return super().read_request(raw_requestline)
            finally:
                self._cancel_head()

        def handle_one_request(self) -> Any:
            try:
                return super().handle_one_request()
            except _HeadTimeout:
                return ("408", _REQUEST_TIMEOUT)  # sent, then the connection is closed
            finally:
                self._cancel_head()

        def _cancel_head(self) -> None:
            if self._head is not None:
                self._head.cancel()
                self._head = None

        def log_request(self) -> None:
            pass  # one line per request (and per live stream) would drown the log

    class Server(WSGIServer):
        """gevent's WSGI server; every client socket tuned before TLS and HTTP start."""

        handler_class = Handler
        limits = Limits()

        def wrap_socket_and_handle(self, client_socket: Any, address: Any) -> Any:
            tune(client_socket, self.limits)  # the TLS handshake runs under the timeout too
            return super().wrap_socket_and_handle(client_socket, address)

        def handle(self, sock: Any, address: Any) -> Any:
            tune(sock, self.limits)
            return super().handle(sock, address)

    return Server, Handler


class WebServer:
    """A WSGI app on one or more listeners until `stop()` (gevent; see the module doc)."""

    def __init__(self, app: Any, listeners: list[Listener], limits: Limits | None = None) -> None:
        if not listeners:
            raise WebServerError("the web server needs at least one address to listen on")
        self.app = app
        self.listeners = list(listeners)
        self.limits = limits or Limits()
        self._servers: list[Any] = []

    def start(self) -> WebServer:
        """Listen on every address (port 0 picks a free one; see `.listeners` after)."""
        from gevent.pool import Pool

        server_class, _handler = _server_classes()
        pool = Pool(self.limits.max_connections)
        bound = []
        for listener in self.listeners:
            tls = {}
            if listener.tls:
                tls = {"ssl_context": _tls_context(listener)}
            try:
                server = server_class(
                    (listener.host, listener.port),
                    self.app,
                    spawn=pool,
                    log=None,
                    error_log=logging.getLogger("mpp.web.server"),
                    backlog=1024,
                    **tls,
                )
                server.limits = self.limits
                server.start()
            except OSError as exc:
                self.stop()
                raise WebServerError(
                    f"cannot serve the web app on {listener.host}:{listener.port} ({exc}); "
                    "is another web process running? Set web.port / web.tls_port to free ports"
                ) from None
            self._servers.append(server)
            bound.append(
                Listener(listener.host, server.server_port, listener.certfile, listener.keyfile)
            )
            log.info(
                "web server listening",
                extra={"host": listener.host, "port": server.server_port, "tls": listener.tls},
            )
        self.listeners = bound
        return self

    def urls(self) -> list[str]:
        """The base URL of every listener (loopback when listening on every address)."""
        out = []
        for listener in self.listeners:
            host = "127.0.0.1" if listener.host in ("0.0.0.0", "") else listener.host
            out.append(f"{'https' if listener.tls else 'http'}://{host}:{listener.port}")
        return out

    def stop(self, timeout: float = 2.0) -> None:
        """Stop accepting and close every connection (live streams end; browsers reconnect)."""
        for server in self._servers:
            server.stop(timeout=timeout)
        self._servers.clear()


def _tls_context(listener: Listener) -> ssl.SSLContext:
    """A server TLS context from the listener's certificate chain and key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(listener.certfile, listener.keyfile)  # type: ignore[arg-type]
    except (OSError, ssl.SSLError) as exc:
        raise WebServerError(
            f"cannot use the web TLS certificate {listener.certfile} / key {listener.keyfile} "
            f"({exc}); check web.tls_cert and web.tls_key (made by `mpp-provision init`)"
        ) from None
    return context
