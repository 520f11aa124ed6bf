"""Featured local products (UMKM) for the entrance screens: images and captions the admin
uploads. Stored in the web's own table and a media folder next to the database; images are
re-encoded (PNG, at most 1920 px) so nothing but pixels from an upload is ever served."""

from __future__ import annotations

import io
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from hub.store import connect
from protocol.errors import MppError

SCHEMA = """
CREATE TABLE IF NOT EXISTS web_featured (
    id INTEGER PRIMARY KEY,
    zone TEXT NOT NULL,
    image TEXT NOT NULL,
    caption_id TEXT NOT NULL,
    caption_en TEXT NOT NULL DEFAULT ''
);
"""
MAX_SIDE = 1920
MAX_BYTES = 5 * 1024 * 1024
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


class FeaturedError(MppError, ValueError):
    """An upload that is not a usable image, or a caption that is missing or too long."""


@dataclass(frozen=True)
class Product:
    """One featured product slide."""

    id: int
    zone: str
    image: str  # file name in the media folder
    caption_id: str
    caption_en: str

    def caption(self, lang: str) -> str:
        """The caption in `lang`, Indonesian when there is no English one."""
        return self.caption_en if lang == "en" and self.caption_en else self.caption_id


def clean_image(data: bytes) -> bytes:
    """The upload as a PNG of at most MAX_SIDE px, or FeaturedError."""
    from PIL import Image, UnidentifiedImageError

    if not data or len(data) > MAX_BYTES:
        raise FeaturedError(f"an image is 1 byte to {MAX_BYTES // (1024 * 1024)} MB")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ("PNG", "JPEG", "WEBP", "GIF"):
                raise FeaturedError(f"{image.format} images are not accepted; use PNG or JPEG")
            image.thumbnail((MAX_SIDE, MAX_SIDE))
            out = io.BytesIO()
            image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB").save(out, "PNG")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, FeaturedError):
            raise
        raise FeaturedError("the file is not a readable image; upload a PNG or JPEG") from None
    return out.getvalue()


class FeaturedStore:
    """Featured products per zone."""

    def __init__(self, database: str | Path, media: str | Path) -> None:
        self.conn = connect(database)
        self.conn.executescript(SCHEMA)
        self.media = Path(media)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def all(self, zone: str | None = None) -> list[Product]:
        """Products (of one zone), oldest first."""
        sql = "SELECT id, zone, image, caption_id, caption_en FROM web_featured"
        args: tuple[object, ...] = ()
        if zone is not None:
            sql, args = sql + " WHERE zone = ?", (zone,)
        with self._lock:
            rows = self.conn.execute(sql + " ORDER BY id", args).fetchall()
        return [Product(*row) for row in rows]

    def add(self, zone: str, data: bytes, caption_id: str, caption_en: str = "") -> Product:
        """Store a cleaned image and its captions."""
        caption_id, caption_en = caption_id.strip(), caption_en.strip()
        if not caption_id or len(caption_id) > 120 or len(caption_en) > 120:
            raise FeaturedError("a caption is 1-120 characters (Indonesian required)")
        png = clean_image(data)
        self.media.mkdir(parents=True, exist_ok=True)
        name = f"{secrets.token_hex(8)}.png"
        (self.media / name).write_bytes(png)
        with self._lock:
            cursor = self.conn.execute(
                "INSERT INTO web_featured (zone, image, caption_id, caption_en) "
                "VALUES (?, ?, ?, ?)",
                (zone, name, caption_id, caption_en),
            )
        return Product(int(cursor.lastrowid or 0), zone, name, caption_id, caption_en)

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


def media_name_ok(name: str) -> bool:
    """Whether `name` looks like a stored image name (no paths)."""
    stem, _, ext = name.partition(".")
    return ext == "png" and 0 < len(stem) <= 32 and set(stem) <= NAME_CHARS
