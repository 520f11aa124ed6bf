"""The featured products' store: hashes, limits, captions, and what the displays are sent."""

from __future__ import annotations

import hashlib
import io
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from protocol import messages as m
from web.featured import FeaturedError, FeaturedStore, clean_caption, image_path


def png(color: tuple[int, int, int] = (10, 120, 60)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def store(tmp_path: Path):
    featured = FeaturedStore(tmp_path / "hub.sqlite", tmp_path / "media")
    yield featured
    featured.close()


def test_an_upload_is_kept_with_the_hash_of_the_served_file(store: FeaturedStore) -> None:
    product = store.add("entrance", png(), "  Kopi Liberika ", "Liberica coffee")
    served = (store.media / product.image).read_bytes()
    assert product.sha256 == hashlib.sha256(served).hexdigest()
    assert store.image_by_hash(product.sha256) == product.image
    assert store.image_by_hash("0" * 64) is None and store.image_by_hash("../x") is None
    assert store.all() == [product] and product.caption_id == "Kopi Liberika"


def test_slides_per_zone_in_upload_order_with_urls_on_the_base(store: FeaturedStore) -> None:
    a = store.add("entrance", png((1, 1, 1)), "Amplang")
    b = store.add("entrance", png((2, 2, 2)), "Sasirangan", "Sasirangan cloth")
    c = store.add("canteen", png((3, 3, 3)), "Es kelapa")
    slides = store.slides_by_zone("http://192.168.10.2:8080/")
    assert set(slides) == {"entrance", "canteen"}
    assert [(s.order, s.caption.id, s.image_sha256) for s in slides["entrance"]] == [
        (0, "Amplang", a.sha256),
        (1, "Sasirangan", b.sha256),
    ]
    assert slides["entrance"][1].caption.get("en") == "Sasirangan cloth"
    assert slides["canteen"][0].image_url == "http://192.168.10.2:8080" + image_path(c.sha256)
    state = m.FeaturedState(seq=1, zone="entrance", slides=slides["entrance"])
    assert m.decode(m.FeaturedState, m.encode(state)) == state


def test_a_zone_takes_at_most_the_slides_a_message_carries(store: FeaturedStore) -> None:
    for i in range(m.MAX_FEATURED_SLIDES):
        store.add("entrance", png((i, 0, 0)), f"Produk {i}")
    with pytest.raises(FeaturedError, match=f"at most {m.MAX_FEATURED_SLIDES} products"):
        store.add("entrance", png(), "Satu lagi")
    assert len(store.all("entrance")) == m.MAX_FEATURED_SLIDES
    store.add("canteen", png(), "Zona lain")  # the limit is per zone


def test_captions_are_one_line_and_bounded(store: FeaturedStore) -> None:
    assert clean_caption(" Kopi\nLiberika\t\x00 khas\u200b Banjar ") == "Kopi Liberika khas Banjar"
    product = store.add("entrance", png(), "Kain\r\nSasirangan", "\x1b[31mcloth")
    assert (product.caption_id, product.caption_en) == ("Kain Sasirangan", "[31mcloth")
    for caption_id, caption_en in (("\n\t", ""), ("x" * 121, ""), ("ok", "y" * 121)):
        with pytest.raises(FeaturedError, match="1-120 characters"):
            store.add("entrance", png(), caption_id, caption_en)


def test_a_url_base_too_long_for_the_message_leaves_the_product_out(
    store: FeaturedStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.add("entrance", png(), "Amplang")
    assert store.slides_by_zone("http://hub.example/" + "p" * 200) == {"entrance": ()}
    assert any("is hub.media_url too long?" in r.getMessage() for r in caplog.records)


def test_products_stored_before_hashes_get_theirs(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "0123456789abcdef.png").write_bytes(png())
    with sqlite3.connect(tmp_path / "hub.sqlite") as conn:
        conn.execute(
            "CREATE TABLE web_featured (id INTEGER PRIMARY KEY, zone TEXT NOT NULL, "
            "image TEXT NOT NULL, caption_id TEXT NOT NULL, caption_en TEXT NOT NULL DEFAULT '')"
        )
        conn.execute(
            "INSERT INTO web_featured (zone, image, caption_id) VALUES "
            "('entrance', '0123456789abcdef.png', 'Amplang'), ('entrance', 'lost.png', 'Hilang')"
        )
    conn.close()
    store = FeaturedStore(tmp_path / "hub.sqlite", media)
    try:
        first, lost = store.all()
        assert first.sha256 == hashlib.sha256(png()).hexdigest() and lost.sha256 == ""
        assert store.image_by_hash(first.sha256) == "0123456789abcdef.png"
        assert [s.caption.id for s in store.slides_by_zone("http://h")["entrance"]] == ["Amplang"]
    finally:
        store.close()
