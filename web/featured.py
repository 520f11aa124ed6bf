"""Featured local products (UMKM) for the entrance screens: images and captions the admin
uploads. Stored in the web's own database and a media folder next to it; images are
re-encoded (PNG, at most 1920 px) so nothing but pixels from an upload is ever served.

The web publishes them to the Pi displays as retained `FeaturedState` messages (they are the
web's own data, not queue state; `FeaturedPublisher`); a display downloads each image once
from `image_path(sha256)` on the web app and keeps it by that hash.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import secrets
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from hub.store import connect
from protocol import messages as m
from protocol.errors import MppError
from protocol.site import Site
from web.hub_link import HubLink

log = logging.getLogger("mpp.web")

SCHEMA = """
CREATE TABLE IF NOT EXISTS web_featured (
    id INTEGER PRIMARY KEY,
    zone TEXT NOT NULL,
    image TEXT NOT NULL,
    caption_id TEXT NOT NULL,
    caption_en TEXT NOT NULL DEFAULT ''
);
"""
SHA256_RE = re.compile(r"[0-9a-f]{64}")
MAX_SIDE = 1920
MAX_BYTES = 5 * 1024 * 1024
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


class FeaturedError(MppError, ValueError):
    """An upload that is not a usable image, or a caption that is missing or too long: `key`
    names the rule (a text of web/i18n.py), `values` fill it in."""

    def __init__(self, key: str, english: str, **values: object) -> None:
        super().__init__(english)
        self.key, self.values = key, values


@dataclass(frozen=True)
class Product:
    """One featured product slide."""

    id: int
    zone: str
    image: str  # file name in the media folder
    caption_id: str
    caption_en: str
    sha256: str = ""  # of the image file's bytes: its name on the displays' route

    def caption(self, lang: str) -> str:
        """The caption in `lang`, Indonesian when there is no English one."""
        return self.caption_en if lang == "en" and self.caption_en else self.caption_id


def clean_image(data: bytes) -> bytes:
    """The upload as a PNG of at most MAX_SIDE px, or FeaturedError."""
    from PIL import Image, UnidentifiedImageError

    if not data or len(data) > MAX_BYTES:
        mb = MAX_BYTES // (1024 * 1024)
        raise FeaturedError("featured.size", f"an image is 1 byte to {mb} MB", mb=mb)
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ("PNG", "JPEG", "WEBP", "GIF"):
                raise FeaturedError(
                    "featured.format",
                    f"{image.format} images are not accepted; use PNG or JPEG",
                    format=image.format,
                )
            image.thumbnail((MAX_SIDE, MAX_SIDE))
            out = io.BytesIO()
            image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB").save(out, "PNG")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, FeaturedError):
            raise
        raise FeaturedError(
            "featured.unreadable", "the file is not a readable image; upload a PNG or JPEG"
        ) from None
    return out.getvalue()


class FeaturedStore:
    """Featured products per zone."""

    def __init__(self, database: str | Path, media: str | Path) -> None:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        self.conn = connect(database)
        self.conn.executescript(SCHEMA)
        self.media = Path(media)
        self._lock = threading.Lock()
        self._add_hashes()

    def _add_hashes(self) -> None:
        """Tables from before images were served by hash get the column and the hashes."""
        columns = {row[1] for row in self.conn.execute("PRAGMA table_info(web_featured)")}
        if "sha256" not in columns:
            self.conn.execute("ALTER TABLE web_featured ADD COLUMN sha256 TEXT NOT NULL DEFAULT ''")
        for product_id, image in self.conn.execute(
            "SELECT id, image FROM web_featured WHERE sha256 = ''"
        ).fetchall():
            try:
                digest = hashlib.sha256((self.media / image).read_bytes()).hexdigest()
            except OSError:
                continue  # an image file lost: the product is listed but never sent to screens
            self.conn.execute(
                "UPDATE web_featured SET sha256 = ? WHERE id = ?", (digest, product_id)
            )

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def all(self, zone: str | None = None) -> list[Product]:
        """Products (of one zone), oldest first."""
        sql = "SELECT id, zone, image, caption_id, caption_en, sha256 FROM web_featured"
        args: tuple[object, ...] = ()
        if zone is not None:
            sql, args = sql + " WHERE zone = ?", (zone,)
        with self._lock:
            rows = self.conn.execute(sql + " ORDER BY id", args).fetchall()
        return [Product(*row) for row in rows]

    def add(self, zone: str, data: bytes, caption_id: str, caption_en: str = "") -> Product:
        """Store a cleaned image and its captions."""
        caption_id, caption_en = clean_caption(caption_id), clean_caption(caption_en)
        limit = m.CAPTION_CHARS
        if not caption_id or len(caption_id) > limit or len(caption_en) > limit:
            raise FeaturedError(
                "featured.caption",
                f"a caption is 1-{limit} characters (Indonesian required)",
                n=limit,
            )
        if len(self.all(zone)) >= m.MAX_FEATURED_SLIDES:
            raise FeaturedError(
                "featured.full",
                f"a zone shows at most {m.MAX_FEATURED_SLIDES} products; remove one first",
                n=m.MAX_FEATURED_SLIDES,
            )
        png = clean_image(data)
        digest = hashlib.sha256(png).hexdigest()
        self.media.mkdir(parents=True, exist_ok=True)
        name = f"{secrets.token_hex(8)}.png"
        (self.media / name).write_bytes(png)
        with self._lock:
            cursor = self.conn.execute(
                "INSERT INTO web_featured (zone, image, caption_id, caption_en, sha256) "
                "VALUES (?, ?, ?, ?, ?)",
                (zone, name, caption_id, caption_en, digest),
            )
        return Product(int(cursor.lastrowid or 0), zone, name, caption_id, caption_en, digest)

    def remove(self, product_id: int) -> bool:
        """Delete a product and its image; False if there was none."""
        with self._lock:
            row = self.conn.execute(
                "SELECT image FROM web_featured WHERE id = ?", (product_id,)
            ).fetchone()
            if row is None:
                return False
            self.conn.execute("DELETE FROM web_featured WHERE id = ?", (product_id,))
        (self.media / row[0]).unlink(missing_ok=True)
        return True

    def image_by_hash(self, sha256: str) -> str | None:
        """The file name of a current product's image with that hash (None: no such product)."""
        if not SHA256_RE.fullmatch(sha256):
            return None
        with self._lock:
            row = self.conn.execute(
                "SELECT image FROM web_featured WHERE sha256 = ? ORDER BY id LIMIT 1", (sha256,)
            ).fetchone()
        return None if row is None else str(row[0])

    def slides_by_zone(self, base_url: str) -> dict[str, tuple[m.FeaturedSlide, ...]]:
        """Every zone's products as the displays get them, images on `base_url`."""
        slides: dict[str, list[m.FeaturedSlide]] = {}
        for product in self.all():
            if not product.sha256:
                continue
            zone = slides.setdefault(product.zone, [])
            if len(zone) >= m.MAX_FEATURED_SLIDES:
                log.error(
                    "featured product not sent to the screens: its zone has too many",
                    extra={"product": product.id, "zone": product.zone},
                )
                continue
            try:
                zone.append(
                    m.FeaturedSlide(
                        order=len(zone),
                        caption=m.SlideCaption(id=product.caption_id, en=product.caption_en),
                        image_url=base_url.rstrip("/") + image_path(product.sha256),
                        image_sha256=product.sha256,
                    )
                )
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                where = ".".join(str(part) for part in first["loc"])
                log.error(
                    "featured product not sent to the screens (is hub.media_url too long?)",
                    extra={"product": product.id, "error": f"{where}: {first['msg']}"},
                )
        return {zone: tuple(items) for zone, items in slides.items()}


def image_path(sha256: str) -> str:
    """Where the web app serves a featured image to the displays (the route in display.py)."""
    return f"/media/featured/{sha256}.png"


def clean_caption(text: str) -> str:
    """A caption on one line: line breaks, control and format characters become single spaces."""
    return " ".join(
        "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text).split()
    )


def media_name_ok(name: str) -> bool:
    """Whether `name` looks like a stored image name (no paths)."""
    stem, _, ext = name.partition(".")
    return ext == "png" and 0 < len(stem) <= 32 and set(stem) <= NAME_CHARS


class FeaturedPublisher:
    """Publishes every zone's featured products (retained), at once after a change and again
    on every connection to the broker (a broker that lost its retained messages, a restart).

    `seq` grows with the clock in milliseconds (and by one at least): newer than anything
    published before, by this process or another, and displays keep the newest."""

    def __init__(self, site: Site, link: HubLink, store: FeaturedStore) -> None:
        self.site, self.link, self.store = site, link, store
        self.seq = 0
        self._lock = threading.Lock()
        link.bus.on_connection_change(self._on_connection)

    def _on_connection(self, connected: bool) -> None:
        if connected:
            threading.Thread(target=self.publish, name="featured-republish", daemon=True).start()

    def publish(self, changed: bool = False) -> list[m.FeaturedState]:
        """Every zone's products with one seq (a new one when `changed` or never sent)."""
        with self._lock:
            if changed or not self.seq:
                self.seq = max(self.seq + 1, int(time.time() * 1000))
            slides = self.store.slides_by_zone(self.site.media_url())
            published = []
            for zone in self.site.zones:
                try:
                    state = m.FeaturedState(
                        seq=self.seq, zone=zone, slides=tuple(slides.get(zone, ()))
                    )
                except ValueError as exc:  # pydantic's ValidationError: e.g. too many slides
                    log.error(
                        "featured products of a zone not published",
                        extra={"zone": zone, "error": str(exc)},
                    )
                    continue
                self.link.publish(self.link.topics.featured(zone), state)
                published.append(state)
        log.info("featured products published", extra={"seq": self.seq, "changed": changed})
        return published
