"""Scene contents per zone, pages and slides by the clock, and the blink of new calls."""

from __future__ import annotations

import pytest

from display.app import layout_factory
from display.scene import Highlights, SceneBuilder, zone_counters, zone_services
from display.state import ScreenModel
from protocol import messages as m
from tests.conftest import example_text, make_site
from tests.display.conftest import EXAMPLES, busy_model

site = make_site()
NOW = 1_795_420_800.0


def build(zone: str, size=(1920, 1080), lang: str = "id", the_site=site) -> SceneBuilder:
    return SceneBuilder(the_site, zone, layout_factory(the_site, zone)(*size), lang, EXAMPLES)


def test_zone_counters_and_services() -> None:
    assert zone_counters(site, "lobby") == tuple(range(1, 31))
    assert zone_counters(site, "canteen") == tuple(range(1, 31))  # no counters there: all
    assert zone_services(site, (1, 13)) == ("ktp", "kk", "skck")


def test_lobby_scene_before_any_call() -> None:
    scene = build("lobby").build(ScreenModel(site), NOW, {}, offline=False)
    assert scene["call"].text("ticket") == "—"
    assert scene["call"].text("service") == "Belum ada panggilan"
    assert (
        scene["counter-0"].text("label") == "Loket 1" and scene["counter-0"].text("ticket") == "—"
    )
    assert scene["services"].text("count-0") == "–"  # no state yet: unknown, not zero
    assert scene["clock"].text("time") == "16:00"  # WITA
    assert scene["status"].items == ()


def test_service_pages_turn_with_the_clock() -> None:
    builder = build("lobby", (1366, 768))
    rows = builder.layout.pages["services"]
    assert rows < len(builder.services)  # more services than fit: pages
    model = busy_model(site, NOW)
    first = builder.build(model, NOW, {}, offline=False)["services"]
    second = builder.build(model, NOW + 10, {}, offline=False)["services"]
    assert first.text("heading").endswith("1/2") and second.text("heading").endswith("2/2")
    assert first.text("name-0") == "A  Perekaman dan Cetak KTP-el"
    assert second.text("name-0").startswith(site.services[builder.services[rows]].prefix)
    assert builder.next_change(NOW + 1) == NOW + 6  # the ticker turns first


def test_canteen_shows_the_latest_calls_and_highlights_the_new_one() -> None:
    model = ScreenModel(site)
    for i, number in enumerate((3, 4, 5, 6, 7)):
        state = m.CounterState(seq=i + 1, counter=number, open=True, call_seq=1,
                               ticket=f"A00{i + 1}", service="ktp", called_at=NOW + i, waiting=0)  # fmt: skip
        model.apply(state, NOW + i)
    scene = build("canteen").build(model, NOW + 5, {(7, 1): True}, offline=False)
    assert [scene[f"call-{i}"].text("ticket") for i in range(4)] == ["A005", "A004", "A003", "A002"]
    assert scene["call-0"].text("counter") == "7"
    assert scene["call-0"].background == "highlight"
    off = build("canteen").build(model, NOW + 5, {(7, 1): False}, offline=False)
    assert off["call-0"].background == "tile"  # the blink's off phase
    assert scene["panel"].text("heading") == "Menu Kantin"
    after = build("canteen").build(model, NOW + 30, {}, offline=False)  # the blink is over
    assert {after[f"call-{i}"].background for i in range(4)} == {"tile"}  # newest not marked


def test_a_priority_call_is_marked_on_every_tv() -> None:
    model = ScreenModel(site)
    model.apply(m.CounterState(seq=1, counter=5, open=True, call_seq=1, ticket="A001",
                               service="ktp", called_at=NOW - 9, waiting=0), NOW)  # fmt: skip
    model.apply(m.CounterState(seq=2, counter=7, open=True, call_seq=1, ticket="B003",
                               service="kk", priority=True, called_at=NOW - 1, waiting=0), NOW)  # fmt: skip
    lobby = build("lobby").build(model, NOW, {}, offline=False)
    assert lobby["call"].text("label") == "NOMOR ANTRIAN PRIORITAS"
    assert lobby["counter-6"].text("label") == "Loket 7 · Prioritas"
    assert lobby["counter-4"].text("label") == "Loket 5"
    canteen = build("canteen").build(model, NOW, {}, offline=False)
    assert canteen["call-0"].text("mark") == "PRIORITAS"
    assert canteen["call-1"].text("ticket") == "A001" and canteen["call-1"].text("mark") == ""
    english = build("lobby", lang="en").build(model, NOW, {}, offline=False)
    assert english["call"].text("label") == "NOW CALLING · PRIORITY"
    # A call known only from the site summary (a screen started later) keeps its mark.
    later = ScreenModel(site)
    summary = m.SiteState(
        seq=1, day=site.business_day(NOW), now=NOW, config_version="x", issued=2, served=0,
        waiting=0, recent_calls=(
            m.CallInfo(ticket="B003", service="kk", counter=7, call_seq=1, called_at=NOW - 1,
                       priority=True),
        ),
    )  # fmt: skip
    later.apply(summary, NOW)
    assert build("canteen").build(later, NOW, {}, offline=False)["call-0"].text("mark") == (
        "PRIORITAS"
    )


def test_closed_and_quota_exhausted_services_say_so_on_lobby_and_entrance() -> None:
    model = busy_model(site, NOW)
    model.apply(m.ServiceState(seq=900, service="ktp", open=True, waiting=0, est_wait_s=0,
                               quota_left=0), NOW)  # fmt: skip
    model.apply(m.ServiceState(seq=901, service="kk", open=False, waiting=0, est_wait_s=0,
                               quota_left=40), NOW)  # fmt: skip
    lobby = build("lobby").build(model, NOW, {}, offline=False)["services"]
    names = [i.text for i in lobby.items if i.part.startswith("name-")]
    counts = [i.text for i in lobby.items if i.part.startswith("count-")]
    assert counts[names.index("A  Perekaman dan Cetak KTP-el")] == "Kuota habis"  # not "0"
    assert counts[names.index("B  Kartu Keluarga")] == "Tutup"
    assert counts[names.index("C  Akta Kelahiran dan Kematian")] == "4"
    entrance = build("entrance").build(model, NOW, {}, offline=False)["services"]
    assert entrance.text("detail-0") == "Selesai maks. 3 jam · Gratis · Kuota habis"
    assert entrance.text("detail-1") == "Selesai maks. 3 jam · Gratis · Tutup"
    assert entrance.text("detail-2") == "Selesai maks. 3 jam · Gratis · 4 menunggu"
    english = build("entrance", lang="en").build(model, NOW, {}, offline=False)["services"]
    assert english.text("detail-0").endswith("· Quota used up")


def test_entrance_slides_and_english() -> None:
    builder = build("entrance", lang="en")
    scene = builder.build(ScreenModel(site), NOW, {}, offline=True)
    image = next(i for i in scene["slide"].items if i.part == "image")
    assert image.image == str(EXAMPLES / "umkm/kopi-liberika.png")
    assert scene["slide"].text("caption") == "Banjarbaru Liberica coffee"
    assert scene["status"].text("mark") == "● Offline"
    assert scene["services"].text("detail-0") == "Done within 3 hours · Free"
    later = builder.build(ScreenModel(site), NOW + 16, {}, offline=True)
    assert later["slide"].text("caption") == "Amplang and Banjar snacks"


def test_canteen_with_featured_products_has_an_image() -> None:
    text = example_text().replace(
        'menu = ["Soto Banjar',
        'featured = [{ image = "umkm/amplang.png", caption = "Amplang" }]\nmenu = ["Soto Banjar',
    )
    with_products = make_site(text=text)
    scene = build("canteen", the_site=with_products).build(
        ScreenModel(with_products), NOW, {}, offline=False
    )
    assert scene["panel"].text("caption") == "Amplang"


def test_the_admins_featured_products_replace_the_inventorys() -> None:
    sha = "e" * 64
    admin = m.FeaturedState(
        seq=9,
        zone="entrance",
        slides=tuple(
            m.FeaturedSlide(
                order=order,
                caption=m.SlideCaption(id=caption, en=english),
                image_url=f"http://127.0.0.1:8080/media/featured/{digest}.png",
                image_sha256=digest,
            )
            for order, caption, english, digest in (
                (1, "Sasirangan", "", "f" * 64),
                (0, "Kerupuk haruan", "Fish crackers", sha),
            )
        ),
    )
    model = ScreenModel(site)
    model.apply(admin, NOW)
    downloaded = {sha: "/cache/featured/" + sha + ".png"}
    builder = SceneBuilder(
        site,
        "entrance",
        layout_factory(site, "entrance")(1920, 1080),
        "en",
        EXAMPLES,
        image_for=downloaded.get,
    )
    assert builder.slides(model) == [
        (downloaded[sha], "Fish crackers"),  # in the admin's order
        (None, "Sasirangan"),  # not downloaded (yet): the caption panel; no English: Indonesian
    ]
    first = builder.build(model, NOW, {}, offline=False)["slide"]
    second = builder.build(model, NOW + 8, {}, offline=False)["slide"]
    assert first.text("caption") == "Fish crackers" and second.text("caption") == "Sasirangan"
    assert next(i for i in second.items if i.part == "image").image is None
    assert builder.next_change(NOW + 1) == NOW + 8  # the slides turn
    # No slides from the admin (all removed): the inventory's again.
    model.apply(m.FeaturedState(seq=10, zone="entrance"), NOW)
    assert builder.slides(model)[0] == (
        str(EXAMPLES / "umkm/kopi-liberika.png"),
        "Banjarbaru Liberica coffee",
    )


@pytest.mark.parametrize("spoken", [True, False])
def test_highlight_blinks_until_the_announcement_has_ended(spoken: bool) -> None:
    lights = Highlights(blink_s=6, period_s=1, linger_s=2, max_s=60)
    lights.add((3, 1), 100.0, spoken=spoken)
    assert lights.lit(100.1) == {(3, 1): True}
    assert lights.lit(100.6) == {(3, 1): False}
    assert lights.next_change(100.6) == 101.0
    if not spoken:
        assert lights.lit(105.9) and lights.lit(106.0) == {}
        return
    assert lights.lit(130.0)  # still waiting for its turn to be spoken: keeps blinking
    lights.started((3, 1), 130.2)  # chime starts: the blink restarts with it
    assert lights.lit(130.3) == {(3, 1): True} and lights.lit(130.8) == {(3, 1): False}
    lights.finished((3, 1), 134.0)
    assert lights.lit(135.9) and lights.lit(136.0) == {} and lights.next_change(136.0) is None


def test_highlight_of_a_call_never_announced_ends_by_itself() -> None:
    lights = Highlights(max_s=60)
    lights.add((3, 1), 0.0, spoken=True)
    assert lights.lit(59.0) and lights.lit(60.0) == {}


def test_the_header_says_when_the_hub_does_not_trust_its_clock() -> None:
    model = ScreenModel(site)
    summary = m.SiteState(
        seq=1, day="2026-11-23", now=NOW, config_version="x", issued=0, served=0, waiting=0
    )
    model.apply(summary.model_copy(update={"clock_ok": False}), NOW)
    for lang, mark in (("id", "● Jam belum sinkron"), ("en", "● Clock not synced")):
        assert (
            build("lobby", lang=lang).build(model, NOW, {}, offline=False)["status"].text("mark")
            == mark
        )
    offline = build("lobby").build(model, NOW, {}, offline=True)  # offline says more
    assert offline["status"].text("mark") == "● Tidak terhubung"
    model.apply(summary.model_copy(update={"seq": 2}), NOW)
    assert build("lobby").build(model, NOW, {}, offline=False)["status"].items == ()


def test_a_counter_on_a_break_shows_on_the_lobby_tv_with_its_return_time() -> None:
    model = busy_model(site, NOW)
    back = NOW + 1800
    model.apply(
        m.CounterState(
            seq=950,
            counter=3,
            open=True,
            call_seq=3,
            waiting=2,
            on_break=m.BreakInfo(reason="istirahat", since=NOW, until=back),
        ),
        NOW,
    )
    model.apply(
        m.CounterState(
            seq=951,
            counter=4,
            open=True,
            call_seq=4,
            waiting=2,
            on_break=m.BreakInfo(reason="lainnya", since=NOW),
        ),
        NOW,
    )
    scene = build("lobby").build(model, NOW, {}, offline=False)
    at = site.local_now(back).strftime("%H:%M")
    tile = scene["counter-2"]
    assert (tile.text("label"), tile.text("ticket")) == ("Loket 3 - istirahat", f"kembali {at}")
    assert tile.background == "tile-closed"
    away = scene["counter-3"]
    assert (away.text("label"), away.text("ticket")) == ("Loket 4 - sedang keluar", "—")
    english = build("lobby", lang="en").build(model, NOW, {}, offline=False)
    assert english["counter-2"].text("label") == "Counter 3 - on a break"
    assert english["counter-2"].text("ticket") == f"back at {at}"


def test_the_friday_pause_is_on_every_screen_while_it_lasts() -> None:
    model = busy_model(site, NOW)
    until = NOW + 3600
    pause = m.PauseInfo(
        id="jumat",
        name=m.Text(id="Istirahat sholat Jumat", en="Friday prayer break"),
        since=NOW,
        until=until,
    )
    for i, code in enumerate(site.services):
        model.apply(
            m.ServiceState(seq=960 + i, service=code, open=code != "skck", waiting=1,
                           est_wait_s=4000, quota_left=50, pause=pause),
            NOW,
        )  # fmt: skip
    model.apply(
        m.CounterState(seq=990, counter=13, open=True, call_seq=13, waiting=1, pause=pause), NOW
    )
    at = site.local_now(until).strftime("%H:%M")
    lobby = build("lobby").build(model, NOW, {}, offline=False)
    notice = "Istirahat sholat Jumat: layanan dilanjutkan pukul " + at
    # skck (a lobby service) stops issuing: the notice does not promise tickets for all
    assert lobby["ticker"].text("text") == notice + "; sebagian layanan tetap menerima tiket"
    tiles = {lobby[f"counter-{i}"].text("label"): lobby[f"counter-{i}"] for i in range(30)}
    assert tiles["Loket 13 - jeda"].text("ticket") == f"s.d. {at}"
    assert tiles["Loket 1"].text("ticket") == "A003"  # serving the citizen it called
    names = [i.text for i in lobby["services"].items if i.part.startswith("name-")]
    counts = [i.text for i in lobby["services"].items if i.part.startswith("count-")]
    assert counts[names.index("H  SKCK")] == f"jeda s.d. {at}"
    canteen = build("canteen").build(model, NOW, {}, offline=False)
    assert canteen["panel"].text("heading").startswith("Istirahat sholat Jumat: layanan")
    entrance = build("entrance", lang="en").build(model, NOW, {}, offline=False)
    assert entrance["services"].text("heading").startswith("Friday prayer break: service resumes")
    plain = build("lobby").build(busy_model(site, NOW), NOW, {}, offline=False)["ticker"]
    assert " — Selesai maks." in plain.text("text")  # no pause: the service standards again
