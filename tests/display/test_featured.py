"""Featured products from the web admin on the Pi displays: the image download (a real HTTP
server on loopback), and end to end: admin upload (Flask test client, CSRF) -> the real hub
publishes over the real broker -> a real DisplayApp downloads the image from the hub's web app
and shows it (SDL dummy video, PNG checked)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from demo.webserver import WebServer
from display.app import DisplayApp
from display.errors import ImageRefused
from display.featured import FeaturedImages
from display.renderer import BACKGROUNDS
from hub.service import HubService
from protocol import messages as m
from protocol.brokers import Mosquitto
from protocol.mqtt import Bus
from protocol.site import Site
from tests.conftest import make_site
from tests.display.conftest import Factory, png_pixels
from tests.timing import wait_until
from tests.web.conftest import PASSWORD, form, login
from tests.web.conftest import web_app as make_web_app

PRODUCT_RGB = (200, 30, 160)
CAPTION = "Kerupuk Haruan Bu Sari"


def png(size: tuple[int, int] = (160, 120), color: tuple[int, int, int] = PRODUCT_RGB) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a small real HTTP server standing in for the hub's web app ---------------------------------
Route = tuple[int, dict[str, str], bytes, float]  # status, headers, body, delay before answering


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        status, headers, body, delay = self.server.routes.get(self.path, (404, {}, b"", 0.0))
        if callable(body):
            status, headers, body, delay = body()
        time.sleep(delay)
        self.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **headers}.items():
            if value is not None:  # None: no such header (a body that ends with the connection)
                self.send_header(key, value)
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up (the tests of limits make it)
            self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Route]
    hits: list[str]


@pytest.fixture
def http() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.routes, server.hits = {}, []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def base_of(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def serve(server: _Server, data: bytes, **route: object) -> tuple[str, str]:
    """Serve `data` as a featured image; its (url, sha256)."""
    sha = hashlib.sha256(data).hexdigest()
    path = f"/media/featured/{sha}.png"
    server.routes[path] = (
        int(route.get("status", 200)),  # type: ignore[call-overload]
        route.get("headers", {"Content-Type": "image/png"}),  # type: ignore[dict-item]
        route.get("body", data),  # type: ignore[dict-item]
        float(route.get("delay", 0.0)),  # type: ignore[arg-type]
    )
    return base_of(server) + path, sha


def slide(url: str, sha: str, caption: str = CAPTION) -> m.FeaturedSlide:
    return m.FeaturedSlide(
        order=0, caption=m.SlideCaption(id=caption), image_url=url, image_sha256=sha
    )


# -- the download ------------------------------------------------------------------------------
def test_an_image_is_downloaded_once_checked_and_kept_by_its_hash(
    http: _Server, tmp_path: Path
) -> None:
    data = png()
    url, sha = serve(http, data)
    ready: list[str] = []
    images = FeaturedImages(tmp_path / "featured", base_of(http), on_ready=ready.append).start()
    try:
        assert images.path(sha) is None
        images.want([slide(url, sha)])
        assert wait_until(lambda: ready == [sha])
        stored = images.path(sha)
        assert stored == tmp_path / "featured" / f"{sha}.png" and stored.read_bytes() == data
        images.want([slide(url, sha)])  # the same slides again (a republish): nothing fetched
        time.sleep(0.2)
        assert http.hits == [f"/media/featured/{sha}.png"] and images.downloads == 1
    finally:
        images.close()
    again = FeaturedImages(tmp_path / "featured", base_of(http)).start()  # after a restart
    try:
        again.want([slide(url, sha)])
        assert again.path(sha) == stored
        time.sleep(0.2)
        assert len(http.hits) == 1 and again.downloads == 0
    finally:
        again.close()


@pytest.mark.parametrize(
    ("route", "fragment"),
    [
        ({"status": 404, "body": b""}, "HTTP 404"),
        ({"status": 302, "headers": {"Location": "http://192.0.2.1/x.png"}, "body": b""}, "302"),
        ({"body": png(color=(1, 2, 3))}, "sent an image with SHA-256"),
        ({"body": b"<html>not an image</html>"}, "did not send a PNG"),
        (
            {"body": b"\x89PNG\r\n\x1a\n" + b"x" * 5000, "headers": {"Content-Length": None}},
            "over 4096 bytes",
        ),
        ({"headers": {"Content-Length": "999999999"}}, "the limit is 4096"),
        ({"delay": 1.0}, "cannot reach"),
    ],
    ids=["404", "redirect", "wrong-hash", "not-png", "too-large", "announced-too-large", "slow"],
)
def test_an_image_that_is_not_what_the_hub_announced_is_refused(
    http: _Server, tmp_path: Path, route: dict, fragment: str
) -> None:
    url, sha = serve(http, png((8, 8)), **route)
    images = FeaturedImages(tmp_path / "featured", base_of(http), timeout_s=0.3, max_bytes=4096)
    with pytest.raises(ImageRefused) as refused:
        images.fetch(url, sha)
    assert fragment in str(refused.value)
    assert not (tmp_path / "featured").exists()  # nothing stored


def test_images_are_fetched_only_from_the_hubs_address(http: _Server, tmp_path: Path) -> None:
    url, sha = serve(http, png())
    images = FeaturedImages(tmp_path / "featured", "http://127.0.0.1:1")  # the inventory's hub
    for foreign in (url, "http://127.0.0.1:1.evil.example/x.png", "file:///etc/passwd"):
        with pytest.raises(ImageRefused, match=r"not on the hub's address http://127\.0\.0\.1:1/"):
            images.fetch(foreign, sha)
    assert http.hits == []


def test_a_failed_download_is_retried_and_logged_once(
    http: _Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = png()
    answers = iter([(503, {}, b"", 0.0), (503, {}, b"", 0.0)])
    url, sha = serve(http, data)
    path = url[len(base_of(http)) :]
    http.routes[path] = (0, {}, lambda: next(answers, (200, {}, data, 0.0)), 0.0)  # type: ignore[assignment]
    ready: list[str] = []
    images = FeaturedImages(
        tmp_path / "featured", base_of(http), retry_s=0.1, on_ready=ready.append
    )
    with caplog.at_level(logging.DEBUG, logger="mpp.display"):
        images.start()
        try:
            images.want([slide(url, sha)])
            assert wait_until(lambda: ready == [sha])
        finally:
            images.close()
    assert len(http.hits) == 3 and images.failures == {}
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warned] == [
        "featured image not downloaded; its slide shows the caption"
    ]
    assert "HTTP 503" in warned[0].error


def test_images_no_longer_shown_are_pruned_beyond_keep(http: _Server, tmp_path: Path) -> None:
    ready: list[str] = []
    images = FeaturedImages(
        tmp_path / "featured", base_of(http), keep=1, on_ready=ready.append
    ).start()
    try:
        shas = []
        for i in range(3):
            url, sha = serve(http, png((10 + i, 10)))
            shas.append(sha)
            images.want([slide(url, sha)])
            assert wait_until(lambda n=i: len(ready) == n + 1)
            time.sleep(0.02)  # distinct modification times
        on_disk = {p.stem for p in (tmp_path / "featured").glob("*.png")}
        assert on_disk == {shas[1], shas[2]}  # shown now + the most recent other
        assert images.path(shas[0]) is None
    finally:
        images.close()


# -- end to end: web admin -> hub -> broker -> display ------------------------------------------
@pytest.fixture
def web_port() -> int:
    return free_port()


@pytest.fixture
def site(broker: Mosquitto, tmp_path: Path, web_port: int) -> Site:
    """The example site whose displays fetch images from the web app on `web_port`."""
    return make_site(
        broker.port,
        always_open=True,
        database=tmp_path / "hub.sqlite",
        media_url=f"http://127.0.0.1:{web_port}",
    )


@pytest.fixture
def web_app(hub: HubService) -> Iterator[Flask]:
    """The web app with an admin account, a client of the hub over MQTT (not listening: see
    `web_server`)."""
    with make_web_app(hub.site, hub) as app:
        app.extensions["mpp_users"].add("admin", "Ani Admin", "admin", PASSWORD)
        yield app


@pytest.fixture
def web_server(web_app: Flask, web_port: int) -> Iterator[WebServer]:
    """The web app listening on the inventory's media_url, as on the site server."""
    server = WebServer(web_app, "127.0.0.1", web_port).start()
    yield server
    server.stop()


@pytest.fixture
def entrance_tv(tmp_path: Path, display_app: Factory) -> Callable[[Site], DisplayApp]:
    """Factory: the entrance TV, with its featured-image cache in tmp_path."""

    def make(site: Site) -> DisplayApp:
        images = FeaturedImages(tmp_path / "tv-cache" / "featured", site.media_url())
        return display_app(site, "tv-entrance", images=images)

    return make


def upload(admin: FlaskClient, caption: str = CAPTION, data: bytes | None = None) -> None:
    response = admin.post(
        "/admin/featured",
        data={
            **form(admin, "/admin/featured"),
            "zone": "entrance",
            "caption_id": caption,
            "caption_en": "Snakehead fish crackers",
            "image": (io.BytesIO(data or png()), "kerupuk.png"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def admin_client(app: Flask) -> FlaskClient:
    client = app.test_client()
    login(client, "admin")
    return client


def slide_shows(app: DisplayApp, caption: str, with_image: bool) -> Callable[[], bool]:
    def check() -> bool:
        shown = app.renderer.shown("slide")  # type: ignore[attr-defined]
        if shown is None or shown.text("caption") != caption:
            return False
        image = next(i for i in shown.items if i.part == "image")
        return (image.image is not None) == with_image

    return check


def test_a_product_the_admin_uploads_shows_on_the_entrance_tv_without_a_restart(
    hub: HubService, web_app: Flask, web_server: WebServer, entrance_tv, tmp_path: Path
) -> None:
    site = hub.site
    tv = entrance_tv(site)
    inventory = {f.caption.id for f in site.zones["entrance"].featured}
    tv.run(until=lambda: "entrance" in tv.model.featured, timeout=10)  # the hub's (empty) list
    assert tv.model.featured["entrance"].slides == ()
    assert tv.renderer.shown("slide").text("caption") in inventory

    upload(admin_client(web_app))
    link = web_app.extensions["mpp_hub"]
    published = link.retained[link.topics.featured("entrance")]
    assert isinstance(published, m.FeaturedState) and len(published.slides) == 1
    assert published.slides[0].image_url.startswith(f"http://127.0.0.1:{web_server.port}/")
    tv.run(until=slide_shows(tv, CAPTION, with_image=True), timeout=10)

    renderer = tv.renderer
    image = png_pixels(renderer.save_png(tmp_path / "entrance.png"))
    box = renderer.layout["slide"].part("image").box
    scale = min(box.w / 160, box.h / 120)
    w, h = int(160 * scale), int(120 * scale)
    left, top = box.x + (box.w - w) // 2, box.y + (box.h - h) // 2
    for fx, fy in ((0.5, 0.5), (0.05, 0.05), (0.95, 0.05), (0.05, 0.95), (0.95, 0.95)):
        assert image.getpixel((left + int(w * fx), top + int(h * fy))) == PRODUCT_RGB
    # Scaled to fit, proportions kept: beside (or above) the 4:3 picture is the panel.
    outside = (left - 3, box.y + box.h // 2) if w < box.w - 6 else (box.x + box.w // 2, top - 3)
    assert image.getpixel(outside) != PRODUCT_RGB
    assert [t.text for t in renderer.drawn["slide"]] == [CAPTION]
    assert tv.images is not None and tv.images.downloads == 1 and tv.ignored == 0

    # The admin removes it: back to the inventory's products, still without a restart.
    admin = admin_client(web_app)
    product = web_app.extensions["mpp_featured"].all("entrance")[0]
    assert admin.post(f"/admin/featured/{product.id}/remove", data=form(admin, "/admin/featured")).status_code == 302  # fmt: skip
    tv.run(until=lambda: tv.renderer.shown("slide").text("caption") in inventory, timeout=10)
    assert tv.model.featured["entrance"].seq > published.seq


def test_an_image_that_cannot_be_downloaded_shows_the_caption_panel(
    hub: HubService, web_app: Flask, entrance_tv, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The web app is not listening on the inventory's media_url (a wrong port, a stopped
    server): the display shows the caption on a plain panel, logs why, and keeps running."""
    tv = entrance_tv(hub.site)
    tv.run(until=lambda: "entrance" in tv.model.featured, timeout=10)
    with caplog.at_level(logging.WARNING, logger="mpp.display"):
        upload(admin_client(web_app))
        tv.run(until=slide_shows(tv, CAPTION, with_image=False), timeout=10)
        sha = tv.model.featured["entrance"].slides[0].image_sha256
        assert tv.images is not None
        assert wait_until(lambda: sha in tv.images.failures)  # type: ignore[union-attr]
        tv.run(timeout=0.3)
    assert "cannot reach the hub's web app" in tv.images.failures[sha]
    assert any(r.getMessage().startswith("featured image not downloaded") for r in caplog.records)
    renderer = tv.renderer
    image = png_pixels(renderer.save_png(tmp_path / "entrance-missing.png"))
    box = renderer.layout["slide"].part("image").box
    assert image.getpixel((box.x + box.w // 2, box.y + 4)) == BACKGROUNDS["missing"]
    assert not any(
        image.getpixel((x, box.y + box.h // 2)) == PRODUCT_RGB for x in range(box.x, box.right)
    )
    assert [t.text for t in renderer.drawn["slide"]] == [CAPTION, CAPTION]  # panel + caption


def test_bad_featured_payloads_are_ignored_with_a_log(
    site: Site, entrance_tv, caplog: pytest.LogCaptureFixture
) -> None:
    hub_bus = Bus.for_device(site, "hub")
    assert hub_bus.start(wait=10)
    topics = hub_bus.topics
    # What the hub publishes when no admin has uploaded anything; once the display has it,
    # it has subscribed (the garbage below is not retained: it would be lost before that).
    hub_bus.publish(
        topics.featured("entrance"), m.FeaturedState(seq=1, zone="entrance"), retain=True
    )
    tv = entrance_tv(site)
    tv.run(until=lambda: "entrance" in tv.model.featured, timeout=10)
    good_slide = {
        "order": 0,
        "caption": {"id": "Amplang"},
        "image_url": site.media_url() + "/media/featured/" + "b" * 64 + ".png",
        "image_sha256": "b" * 64,
    }
    garbage = [
        b"",  # a cleared retained message
        b"\xff not json",
        json.dumps({"v": 1, "seq": 5, "zone": "lobby", "slides": []}).encode(),  # other zone
        json.dumps(
            {"v": 1, "seq": 5, "zone": "entrance", "slides": [{**good_slide, "image_sha256": "x"}]}
        ).encode(),
        json.dumps({"v": 1, "seq": 5, "zone": "entrance", "slides": [good_slide] * 11}).encode(),
        json.dumps({"v": 1, "seq": "5", "zone": "entrance"}).encode(),
    ]
    try:
        with caplog.at_level(logging.WARNING, logger="mpp.display"):
            for payload in garbage:
                hub_bus.publish(topics.featured("entrance"), payload)
            assert hub_bus.flush(5)
            tv.run(until=lambda: tv.ignored == len(garbage), timeout=10)
        warnings = [r for r in caplog.records if r.getMessage() == "state message ignored"]
        assert len(warnings) == len(garbage)
        assert tv.model.featured == {"entrance": m.FeaturedState(seq=1, zone="entrance")}
        inventory = {f.caption.id for f in site.zones["entrance"].featured}
        assert tv.renderer.shown("slide").text("caption") in inventory
        # A good one after the garbage is shown (its image cannot be fetched: caption panel).
        good = json.dumps({"v": 1, "seq": 6, "zone": "entrance", "slides": [good_slide]})
        hub_bus.publish(topics.featured("entrance"), good.encode())
        tv.run(until=slide_shows(tv, "Amplang", with_image=False), timeout=10)
        # An older one after it changes nothing.
        hub_bus.publish(topics.featured("entrance"), m.FeaturedState(seq=2, zone="entrance"))
        tv.run(until=lambda: tv.replayed == 1, timeout=10)
        assert tv.renderer.shown("slide").text("caption") == "Amplang"
    finally:
        hub_bus.publish(topics.featured("entrance"), b"", retain=True)
        hub_bus.stop()
