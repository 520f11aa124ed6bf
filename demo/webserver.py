"""A threaded development server on a background thread, for the demo's control page and for
tests that drive a web app in the same process (a site runs `mpp web`, see web/server.py).

    server = WebServer(app, "127.0.0.1", 0).start()
    ...
    server.stop()
"""

from __future__ import annotations

import logging
import threading

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from protocol.errors import MppError

log = logging.getLogger("mpp.web")


class WebServerError(MppError, OSError):
    """The web server cannot listen on its address."""


class WebServer:
    """The app on a background thread until `stop()`."""

    def __init__(self, app: Flask, host: str, port: int) -> None:
        self.app = app
        self.host, self.port = host, port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> WebServer:
        """Listen (port 0 picks a free one, see `.port`) and serve on a thread."""
        # One access-log line per request (and per live stream) would drown the hub's own log.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        try:
            self._server = make_server(self.host, self.port, self.app, threaded=True)
        except (OSError, SystemExit) as exc:
            raise WebServerError(
                f"cannot serve the web app on {self.host}:{self.port} ({exc}); "
                "is another demo running? Choose a free port"
            ) from None
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="dev-web", kwargs={"poll_interval": 0.2}
        )
        self._thread.daemon = True
        self._thread.start()
        log.info("web app listening", extra={"host": self.host, "port": self.port})
        return self

    @property
    def url(self) -> str:
        """The base URL (loopback when listening on every address)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        """Stop accepting, end open live streams, wait for the thread."""
        feed = self.app.extensions.get("mpp_live")
        if feed is not None:
            feed.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
