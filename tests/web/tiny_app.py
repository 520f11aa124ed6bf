"""A tiny app on web/server.py in a process of its own (gevent patched first), for the
server's tests: `/events` sends an event every 0.2 s, `/healthz` answers at once.

    python -m tests.web.tiny_app PORT [TLS_PORT CERT KEY]
"""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402
import time  # noqa: E402

from web.server import Limits, Listener, WebServer  # noqa: E402


def app(environ, start_response):
    if environ["PATH_INFO"] == "/events":
        start_response("200 OK", [("Content-Type", "text/event-stream")])

        def body():
            for n in range(50):
                yield f"event: tick\ndata: {n} {time.time()}\n\n".encode()
                time.sleep(0.2)

        return body()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["wsgi.url_scheme"].encode()]


def main() -> None:
    listeners = [Listener("127.0.0.1", int(sys.argv[1]))]
    if len(sys.argv) > 2:
        listeners.append(Listener("127.0.0.1", int(sys.argv[2]), sys.argv[3], sys.argv[4]))
    server = WebServer(app, listeners, Limits(head_timeout_s=1.0, max_connections=500)).start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(1)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
