"""The web display: lobby tiles, canteen calls, entrance products; what the browser says."""

from __future__ import annotations

from hub.service import HubService
from protocol import messages as m
from tests.conftest import EXAMPLE
from tests.web.conftest import issue, ok, web_app
from tests.web.sse import EventReader
from web.display import call_text


def test_call_text_in_indonesian_and_english(hub: HubService) -> None:
    assert (
        call_text(hub.site, "A012", 3, "id")
        == "Nomor antrian a dua belas, silakan menuju loket tiga."
    )
    assert (
        call_text(hub.site, "A012", 3, "en")
        == "Ticket number eigh twelve, please go to counter three."
    )
    assert call_text(hub.site, "B105", 21, "id", "digits").startswith(
        "Nomor antrian be satu nol lima"
    )


def test_lobby_shows_a_tile_per_counter(client, hub: HubService) -> None:
    issue(hub)
    ok(hub, m.OpenCounter(device="hub", counter=3, officer="Siti"))
    ok(hub, m.CallNext(device="hub", counter=3))
    body = client.get("/display/lobby").get_data(as_text=True)
    assert body.count('class="tile') == 30
    tile = body[body.index('id="tile-3"') : body.index("</div>\n</div>", body.index('id="tile-3"'))]
    assert "A001" in tile and "Loket 3" in tile
    assert "Siti" not in body


def test_canteen_stream_carries_the_call_and_its_words(client, hub: HubService) -> None:
    issue(hub, "pkb")
    ok(hub, m.OpenCounter(device="hub", counter=10, officer="Dewi"))
    stream = EventReader(client.get("/display/canteen/events", buffered=False))
    try:
        _, first = stream.until(lambda n, d: n == "calls")
        assert first["calls"] == []
        ok(hub, m.CallNext(device="hub", counter=10))
        _, data = stream.until(lambda n, d: n == "calls" and d["calls"])
        call = data["calls"][0]
        assert (call["ticket"], call["counter"], call["lang"]) == ("G001", 10, "id-ID")
        assert call["speak"] == "Nomor antrian ge satu, silakan menuju loket sepuluh."
        assert "G001" in data["html"] and "Dewi" not in str(data)
    finally:
        stream.close()


def test_entrance_shows_inventory_products(client, hub: HubService) -> None:
    body = client.get("/display/entrance").get_data(as_text=True)
    assert "Kopi Liberika Banjarbaru" in body
    assert client.get("/media/inventory/entrance/0").status_code == 404  # no such file here
    # images are found next to the inventory file they are named in
    with (
        web_app(hub.site.model_copy(update={"source": str(EXAMPLE)})) as app,
        app.test_client().get("/media/inventory/entrance/0") as image,
    ):
        assert image.status_code == 200 and image.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get("/media/inventory/entrance/9").status_code == 404
    assert client.get("/display/nowhere").status_code == 404
    canteen = client.get("/display/canteen?lang=en").get_data(as_text=True)
    assert "Soto Banjar" in canteen
    assert 'data-utc-offset="480"' in canteen  # the TV's clock shows WITA, the site's time
    assert client.get("/dashboard").status_code == 302  # a TV's ?lang= is not remembered:
    assert 'lang="id"' in client.get("/login").get_data(as_text=True)  # the next page is id

    assert "Soto Banjar" in client.get("/display/canteen").get_data(as_text=True)


def test_a_counter_on_a_break_shows_on_the_lobby_tv(client, hub: HubService) -> None:
    ok(hub, m.OpenCounter(device="hub", counter=3, officer="Siti"))
    ok(hub, m.StartBreak(device="hub", counter=3, reason="istirahat", minutes=15))
    body = client.get("/display/lobby").get_data(as_text=True)
    tile = body[body.index('id="tile-3"') : body.index("</div>\n</div>", body.index('id="tile-3"'))]
    state = hub.retained[hub.bus.topics.counter_state(3)]
    back = hub.site.local_now(state.on_break.until).strftime("%H:%M")
    assert "Loket 3 - istirahat" in tile and f"kembali {back}" in tile
    assert 'id="pause"' in body and "tv-pause empty" in body  # no pause in force
