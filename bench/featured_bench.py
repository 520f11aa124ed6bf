"""Featured products from the web admin to a Pi display, through the real stack: Mosquitto, the
hub, its web server on loopback, a DisplayApp on SDL's dummy driver (1920x1080).

Prints: the admin's upload request (re-encode, store, publish through the hub's worker), upload
-> the image on the display's glass (MQTT message, HTTP download, check, cache, redraw), one
image download by the display on its own, and the size of a zone's message with 10 products.

    .venv/bin/python bench/featured_bench.py [--rounds 10] [--width 1280 --height 720]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from bench.common import line, machine, site_text  # noqa: E402
from bench.figures import figure  # noqa: E402
from demo.webserver import WebServer  # noqa: E402
from display.announcer import RecordingAnnouncer  # noqa: E402
from display.app import DisplayApp, layout_factory  # noqa: E402
from display.featured import FeaturedImages  # noqa: E402
from display.renderer import Renderer  # noqa: E402
from display.video import VideoPlan  # noqa: E402
from hub.service import HubService  # noqa: E402
from protocol import messages as m  # noqa: E402
from protocol.brokers import Mosquitto, free_port  # noqa: E402
from protocol.mqtt import Bus  # noqa: E402
from protocol.site import parse_site  # noqa: E402
from web.app import close_app, create_app  # noqa: E402
from web.hub_link import HubLink  # noqa: E402

PASSWORD = "bench-password-1"


def photo(width: int, height: int, seed: int) -> bytes:
    """A photo-like PNG: smooth colour fields with noise (compresses like a product photo)."""
    from PIL import Image, ImageFilter

    rng = random.Random(seed)
    small = Image.new("RGB", (width // 16, height // 16))
    small.putdata(
        [tuple(rng.randrange(256) for _ in range(3)) for _ in range(small.width * small.height)]
    )
    image = small.resize((width, height), Image.Resampling.BICUBIC)
    image = image.filter(ImageFilter.GaussianBlur(2)).effect_spread(2)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def csrf(client, url: str) -> str:
    page = client.get(url).get_data(as_text=True)
    return page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def fields(client, url: str) -> dict[str, str]:
    """A form's hidden fields: CSRF token and a request id (each form is applied once)."""
    return {"csrf_token": csrf(client, url), "request_id": m.new_request_id()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp, Mosquitto() as broker:
        work = Path(tmp)
        web_port = free_port()
        text = site_text(broker.port, work / "hub.sqlite", "featured").replace(
            "[hub]\n", f'[hub]\nmedia_url = "http://127.0.0.1:{web_port}"\n', 1
        )
        site = parse_site(text, str(ROOT / "examples" / "bench-site.toml"))
        hub = HubService(site, first_start=True).start()
        link = HubLink(site, Bus.for_device(site, "web"))
        app = create_app(site, link)
        link.start(wait=10)
        app.extensions["mpp_users"].add("kepala", "Kepala MPP", "admin", PASSWORD)
        web = WebServer(app, "127.0.0.1", web_port).start()
        renderer = Renderer(
            layout_factory(site, "entrance"), (1920, 1080), VideoPlan(("dummy",), False)
        )
        tv = DisplayApp(
            site,
            "tv-entrance",
            bus=Bus.for_device(site, "tv-entrance"),
            renderer=renderer,
            announcer=RecordingAnnouncer(),
            images=FeaturedImages(work / "tv-cache", site.media_url()),
            base_dir=ROOT / "examples",
        )
        admin = app.test_client()
        admin.post(
            "/login",
            data={"username": "kepala", "password": PASSWORD, "csrf_token": csrf(admin, "/login")},
        )
        try:
            tv.start()
            tv.run(until=lambda: "entrance" in tv.model.featured, timeout=10)
            requests, to_glass, fetches, sizes = [], [], [], []
            for i in range(args.rounds):
                data = photo(args.width, args.height, seed=i)
                caption = f"Produk UMKM nomor {i + 1}"
                token = csrf(admin, "/admin/featured")
                started = time.perf_counter()
                response = admin.post(
                    "/admin/featured",
                    data={
                        "csrf_token": token,
                        "request_id": m.new_request_id(),
                        "zone": "entrance",
                        "caption_id": caption,
                        "image": (io.BytesIO(data), "produk.png"),
                    },
                    content_type="multipart/form-data",
                )
                requests.append(time.perf_counter() - started)
                assert response.status_code == 302, response.status_code

                def shown(caption: str = caption) -> bool:
                    content = renderer.shown("slide")
                    if content is None or content.text("caption") != caption:
                        return False
                    return any(item.image for item in content.items if item.part == "image")

                tv.run(until=shown, timeout=30)
                if not shown():
                    raise SystemExit(f"round {i}: the image never reached the screen")
                to_glass.append(time.perf_counter() - started)
                (slide,) = tv.model.featured["entrance"].slides
                sizes.append(len(data))
                # One download on its own (into another folder: the TV's cache has it already).
                fresh = FeaturedImages(work / f"fetch-{i}", site.media_url())
                began = time.perf_counter()
                fresh.fetch(slide.image_url, slide.image_sha256)
                fetches.append(time.perf_counter() - began)
                product = app.extensions["mpp_featured"].all("entrance")[0]
                admin.post(
                    f"/admin/featured/{product.id}/remove",
                    data=fields(admin, "/admin/featured"),
                )
                tv.run(until=lambda: not tv.model.featured["entrance"].slides, timeout=10)
            for i in range(m.MAX_FEATURED_SLIDES):
                app.extensions["mpp_featured"].add(
                    "entrance", photo(64, 48, i), f"Kerupuk, amplang dan kain sasirangan khas {i}"
                )
            full = app.extensions["mpp_featured_out"].publish(changed=True)
            entrance = next(s for s in full if s.zone == "entrance")
            payload = len(m.encode(entrance))
        finally:
            tv.close()
            web.stop()
            close_app(app)
            link.stop()
            hub.stop()
        print(
            f"images: {args.width}x{args.height} photo-like PNG, "
            f"{min(sizes) / 1e6:.2f}-{max(sizes) / 1e6:.2f} MB uploaded; "
            f"downloads by the TV: {tv.images.downloads if tv.images else 0}"
        )
        print(line("admin upload request (re-encode, store, publish)", requests))
        print(line("admin upload -> image on the TV's glass", to_glass))
        print(line("one image download by a display (HTTP, sha256, disk)", fetches))
        print(f"message of a zone with {m.MAX_FEATURED_SLIDES} products: {payload} bytes")
        upload_p50 = sorted(to_glass)[len(to_glass) // 2] * 1000
        figure("featured: upload -> on the TV, p50", round(upload_p50, 1), "ms")
        download_p50 = sorted(fetches)[len(fetches) // 2] * 1000
        figure("featured: image download, p50", round(download_p50, 1), "ms")


if __name__ == "__main__":
    main()
