"""Admin: accounts and roles, featured products (uploads re-encoded), services open/closed."""

from __future__ import annotations

import hashlib
import io

from PIL import Image

from hub.service import HubService
from protocol import messages as m
from tests.timing import wait_until
from tests.web.conftest import PASSWORD, csrf, form, login
from web.users import AccountError, UserStore


def png(size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def test_admin_adds_an_officer_who_can_then_log_in(app, as_role) -> None:
    admin = as_role("admin")
    response = admin.post(
        "/admin/users",
        data={
            **form(admin, "/admin/users"),
            "username": "rudi",
            "name": "Rudi",
            "role": "officer",
            "password": "panjang-sekali",
        },
    )
    assert response.status_code == 302
    assert "rudi" in admin.get("/admin/users").get_data(as_text=True)
    fresh = app.test_client()
    login(fresh, "rudi", "panjang-sekali")
    assert fresh.get("/caller").status_code == 200 and fresh.get("/reports").status_code == 403
    # promoted to supervisor: reports open at once (the role is read on every request)
    admin.post(
        "/admin/users/rudi",
        data={**form(admin, "/admin/users"), "role": "supervisor", "active": "1"},
    )
    assert fresh.get("/reports").status_code == 200
    # deactivated: the session ends
    admin.post("/admin/users/rudi", data={**form(admin, "/admin/users"), "role": "supervisor"})
    assert fresh.get("/reports").status_code == 302


def test_bad_accounts_are_refused_with_reasons(app, as_role) -> None:
    admin = as_role("admin")
    page = admin.post(
        "/admin/users",
        data={
            **form(admin, "/admin/users"),
            "username": "x",
            "name": "X",
            "role": "officer",
            "password": "short",
        },
        follow_redirects=True,
    )
    assert "Kata sandi minimal 8 karakter" in page.get_data(as_text=True)
    users: UserStore = app.extensions["mpp_users"]
    for bad in (
        ("Bad Name", "n", "officer", PASSWORD),
        ("ok", "n", "king", PASSWORD),
        ("petugas", "n", "officer", PASSWORD),
    ):
        try:
            users.add(*bad)
        except AccountError:
            continue
        raise AssertionError(f"{bad} was accepted")
    # the last admin cannot demote or deactivate themself
    page = admin.post(
        "/admin/users/admin",
        data={**form(admin, "/admin/users"), "role": "officer", "active": "1"},
        follow_redirects=True,
    )
    assert "Harus tetap ada minimal satu admin aktif" in page.get_data(as_text=True)
    assert users.get("admin").role == "admin"


def test_passwords_are_hashed(app, hub: HubService) -> None:
    import sqlite3

    with sqlite3.connect(app.extensions["mpp_users"].path) as conn:
        stored = conn.execute(
            "SELECT password_hash FROM web_users WHERE username = 'admin'"
        ).fetchone()[0]
    assert PASSWORD not in stored and stored.startswith(("scrypt:", "pbkdf2:"))


def test_featured_products_upload_and_remove(app, as_role, client) -> None:
    admin = as_role("admin")
    token = csrf(admin, "/admin/featured")
    response = admin.post(
        "/admin/featured",
        data={
            "csrf_token": token,
            "request_id": m.new_request_id(),
            "zone": "entrance",
            "caption_id": "Kerupuk Haruan",
            "caption_en": "Fish crackers",
            "image": (io.BytesIO(png()), "k.png"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    products = app.extensions["mpp_featured"].all("entrance")
    assert [p.caption_id for p in products] == ["Kerupuk Haruan"]
    screen = client.get("/display/entrance").get_data(as_text=True)
    assert "Kerupuk Haruan" in screen and f"/media/{products[0].image}" in screen
    with client.get(f"/media/{products[0].image}") as image:
        assert image.status_code == 200
        assert Image.open(io.BytesIO(image.data)).size == (40, 30)
    bad = admin.post(
        "/admin/featured",
        data={
            "csrf_token": token,
            "request_id": m.new_request_id(),
            "zone": "entrance",
            "caption_id": "Bukan gambar",
            "image": (io.BytesIO(b"<script>alert(1)</script>"), "x.png"),
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "bukan gambar yang dapat dibaca" in bad.get_data(as_text=True)
    assert len(app.extensions["mpp_featured"].all()) == 1
    assert (
        admin.post(
            f"/admin/featured/{products[0].id}/remove",
            data={"csrf_token": token, "request_id": m.new_request_id()},
        ).status_code
        == 302
    )
    assert app.extensions["mpp_featured"].all() == []
    assert client.get(f"/media/{products[0].image}").status_code == 404
    assert client.get("/media/..%2Fhub.sqlite").status_code == 404


def test_a_featured_upload_is_published_to_the_displays_and_served_by_hash(
    app, as_role, client, hub: HubService
) -> None:
    admin = as_role("admin")
    link = app.extensions["mpp_hub"]
    topic = link.topics.featured("entrance")
    assert wait_until(lambda: topic in link.retained, 5)  # published when the web connected
    before = link.retained[topic]
    assert isinstance(before, m.FeaturedState) and before.slides == ()  # published at app start
    response = admin.post(
        "/admin/featured",
        data={
            **form(admin, "/admin/featured"),
            "zone": "entrance",
            "caption_id": "Kopi Liberika",
            "image": (io.BytesIO(png()), "kopi.png"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    state = link.retained[topic]
    assert isinstance(state, m.FeaturedState) and state.seq > before.seq
    (slide,) = state.slides
    assert slide.caption == m.SlideCaption(id="Kopi Liberika", en="")
    path = f"/media/featured/{slide.image_sha256}.png"
    assert slide.image_url == hub.site.site.public_url + path  # no hub.media_url in the example
    with client.get(path) as image:  # anonymous, as a display fetches it
        assert image.status_code == 200 and image.mimetype == "image/png"
        assert hashlib.sha256(image.data).hexdigest() == slide.image_sha256
        assert "max-age=31536000" in image.headers["Cache-Control"]
    # Only the images of current products, only by their hash.
    for other in ("0" * 64, slide.image_sha256.upper(), "abc", "..%2Fhub.sqlite"):
        assert client.get(f"/media/featured/{other}.png").status_code == 404
    product = app.extensions["mpp_featured"].all("entrance")[0]
    token = csrf(admin, "/admin/featured")
    admin.post(
        f"/admin/featured/{product.id}/remove",
        data={"csrf_token": token, "request_id": m.new_request_id()},
    )
    after = link.retained[topic]
    assert isinstance(after, m.FeaturedState) and after.slides == () and after.seq > state.seq
    assert client.get(path).status_code == 404


def test_admin_closes_and_opens_a_service(as_role, hub: HubService) -> None:
    admin = as_role("admin")
    admin.post("/admin/services/nib/close", data={**form(admin, "/admin")})
    assert hub.retained[hub.bus.topics.service_state("nib")].open is False
    admin.post("/admin/services/nib/open", data={**form(admin, "/admin")})
    assert hub.retained[hub.bus.topics.service_state("nib")].open is True
    assert (
        admin.post("/admin/services/nope/close", data={**form(admin, "/admin")}).status_code == 404
    )


def test_admin_changes_what_a_counter_serves_and_back(as_role, hub: HubService) -> None:
    admin = as_role("admin")
    token = csrf(admin, "/admin/counters/3")
    form = {
        "csrf_token": token,
        "request_id": m.new_request_id(),
        "serve-ktp": "1",
        "order-ktp": "2",
        "serve-skck": "1",
        "order-skck": "1",
    }
    assert admin.post("/admin/counters/3", data=form).status_code == 302
    assert hub.queue.services_of(3) == ("skck", "ktp")
    state = hub.retained[hub.bus.topics.counter_state(3)]
    assert isinstance(state, m.CounterState) and state.services == ("skck", "ktp")
    page = admin.get("/admin").get_data(as_text=True)
    assert "<strong>H</strong> SKCK, <strong>A</strong> Perekaman dan Cetak KTP-el" in page
    assert "diubah di sini; inventaris: A Perekaman dan Cetak KTP-el" in page
    edit = admin.get("/admin/counters/3").get_data(as_text=True)
    assert 'name="serve-skck" value="1" id="serve-skck" checked' in edit
    admin.post(
        "/admin/counters/3",
        data={"csrf_token": token, "request_id": m.new_request_id(), "reset": "1"},
    )
    assert hub.queue.services_of(3) == ("ktp",) and hub.queue.assigned == {}


def test_bad_counter_forms_are_refused_and_change_nothing(as_role, hub: HubService) -> None:
    admin = as_role("admin")
    token = csrf(admin, "/admin/counters/3")
    for fields, says in (
        ({}, "Pilih paling sedikit satu layanan"),
        ({"serve-ktp": "1", "order-ktp": "satu"}, "Urutan harus angka"),
        ({"serve-ktp": "1", "order-ktp": "1" * 500}, "Urutan harus angka"),
        ({"serve-nope": "1"}, "Pilih paling sedikit satu layanan"),  # not a service: ignored
    ):
        page = admin.post(
            "/admin/counters/3",
            data={"csrf_token": token, "request_id": m.new_request_id(), **fields},
            follow_redirects=True,
        )
        assert says in page.get_data(as_text=True)
    assert hub.queue.assigned == {}
    assert (
        admin.post(
            "/admin/counters/999", data={"csrf_token": token, "request_id": m.new_request_id()}
        ).status_code
        == 404
    )
    assert admin.post("/admin/counters/3", data={"serve-kk": "1"}).status_code == 400  # no CSRF
    assert hub.queue.assigned == {}


def test_admin_changes_a_services_quota_and_cutoff(as_role, hub: HubService) -> None:
    admin = as_role("admin")
    token = csrf(admin, "/admin/services/paspor")
    for fields, says in (
        ({"daily_quota": "0", "cutoff": ""}, "Kuota harian harus angka 1 sampai 999"),
        ({"daily_quota": "lima", "cutoff": ""}, "Kuota harian harus angka 1 sampai 999"),
        ({"daily_quota": "1000", "cutoff": ""}, "Kuota harian harus angka 1 sampai 999"),
        ({"daily_quota": "5", "cutoff": "25:00"}, "Batas ambil antrian harus berbentuk JJ:MM"),
        ({"daily_quota": "5", "cutoff": "9.30"}, "Batas ambil antrian harus berbentuk JJ:MM"),
    ):
        page = admin.post(
            "/admin/services/paspor",
            data={"csrf_token": token, "request_id": m.new_request_id(), **fields},
            follow_redirects=True,
        )
        assert says in page.get_data(as_text=True)
    assert hub.queue.limits == {}
    admin.post(
        "/admin/services/paspor",
        data={
            "csrf_token": token,
            "request_id": m.new_request_id(),
            "daily_quota": "25",
            "cutoff": "11:15",
        },
    )
    assert hub.queue.daily_quota("paspor") == 25
    state = hub.retained[hub.bus.topics.service_state("paspor")]
    assert isinstance(state, m.ServiceState) and (state.daily_quota, state.cutoff) == (25, "11:15")
    assert "11:15" in admin.get("/admin").get_data(as_text=True)
    admin.post(
        "/admin/services/paspor",
        data={
            "csrf_token": token,
            "request_id": m.new_request_id(),
            "daily_quota": "59",
            "cutoff": "",
        },
    )
    assert hub.queue.limits == {"paspor": (59, None)} and hub.queue.cutoff("paspor") is None
    admin.post(
        "/admin/services/paspor",
        data={"csrf_token": token, "request_id": m.new_request_id(), "reset": "1"},
    )
    assert hub.queue.limits == {} and hub.queue.daily_quota("paspor") == 60
    assert admin.get("/admin/services/nope").status_code == 404


def test_admin_sets_how_a_zones_screens_speak(as_role, hub: HubService) -> None:
    admin = as_role("admin")
    token = csrf(admin, "/admin/zones/canteen")
    for fields, says in (
        ({"volume": "150", "number_reading": "words"}, "Volume harus angka 0 sampai 100"),
        ({"volume": "-1", "number_reading": "words"}, "Volume harus angka 0 sampai 100"),
        ({"volume": "keras", "number_reading": "words"}, "Volume harus angka 0 sampai 100"),
        ({"volume": "50", "number_reading": "roman"}, "Pilih cara membaca nomor"),
    ):
        page = admin.post(
            "/admin/zones/canteen",
            data={"csrf_token": token, "request_id": m.new_request_id(), **fields},
            follow_redirects=True,
        )
        assert says in page.get_data(as_text=True)
    assert hub.queue.sound == {}
    form = {
        "csrf_token": token,
        "request_id": m.new_request_id(),
        "volume": "35",
        "number_reading": "digits",
    }  # speech unticked
    assert admin.post("/admin/zones/canteen", data=form).status_code == 302
    state = hub.retained[hub.bus.topics.zone_sound("canteen")]
    assert isinstance(state, m.ZoneSound)
    assert (state.speech, state.volume, state.number_reading) == (False, 0.35, "digits")
    assert "tanpa suara" in admin.get("/admin").get_data(as_text=True)
    assert 'value="35"' in admin.get("/admin/zones/canteen").get_data(as_text=True)
    admin.post(
        "/admin/zones/canteen",
        data={"csrf_token": token, "request_id": m.new_request_id(), "reset": "1"},
    )
    assert hub.queue.sound == {}
    assert admin.get("/admin/zones/atap").status_code == 404
