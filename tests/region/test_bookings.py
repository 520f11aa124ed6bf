"""Booking on the region, against a real PostgreSQL: the last seats exact under concurrency,
one active booking per phone per service per day, cancel by link, hashed phones, retention."""

from __future__ import annotations

import threading
from datetime import date, datetime

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from protocol import messages as m
from region import bookings as bk

TZ = "Asia/Makassar"
NOW = datetime.fromisoformat("2026-12-07T07:00:00+08:00").timestamp()  # a Monday morning
MONDAY = date(2026, 12, 7)
KEY = "test-phone-key"


def offer(quota: int = 10, site: str = "bjb") -> m.BookingOffer:
    return m.BookingOffer(
        site=site,
        version="v1",
        days_ahead=7,
        check_in_before_min=30,
        check_in_after_min=15,
        retention_days=90,
        services={
            "ktp": m.OfferService(
                cost=m.Text(id="Gratis", en="Free"),
                sessions=(
                    m.OfferSession(
                        days=("mon", "tue", "wed", "thu", "fri"),
                        start="08:00",
                        end="10:00",
                        online_quota=quota,
                    ),
                    m.OfferSession(days=("mon",), start="10:00", end="12:00", online_quota=quota),
                ),
            )
        },
    )


def book(conn, phone: str, session: str = "08:00-10:00", day: date = MONDAY, the_offer=None):
    return bk.book(
        conn,
        the_offer or offer(),
        "ktp",
        day,
        session,
        phone_hashed=bk.phone_hash(phone, KEY),
        now=NOW,
        tz=TZ,
    )


def test_200_concurrent_bookers_for_10_seats_exactly_10_succeed(region_dsn):
    """Each booker its own thread, released together; 50 pooled connections, so 50
    transactions race for the session's row at a time (the regional web's pool is smaller)."""
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(200)
    with ConnectionPool(region_dsn, min_size=50, max_size=50, open=True) as pool:

        def booker(i: int) -> None:
            start.wait()
            with pool.connection() as conn:
                try:
                    book(conn, f"0812{i:08d}")
                    result = "booked"
                except bk.BookingRefused as refused:
                    result = refused.key
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=booker, args=(i,)) for i in range(200)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert sorted(set(outcomes)) == ["booked", "full"]
    assert outcomes.count("booked") == 10 and len(outcomes) == 200
    with psycopg.connect(region_dsn) as conn:
        assert conn.execute("SELECT booked, quota FROM booking_seats").fetchall() == [(10, 10)]
        assert conn.execute("SELECT count(*) FROM bookings").fetchone()[0] == 10
        # Each booking is one numbered message to the site, without a gap.
        ids = [r[0] for r in conn.execute("SELECT id FROM down_queue ORDER BY id")]
        assert ids == list(range(1, 11))
        assert conn.execute("SELECT last_id FROM down_links").fetchall() == [(10,)]


def test_one_active_booking_per_phone_per_service_per_day(region_conn):
    made = book(region_conn, "0812-3456-7890")
    with pytest.raises(bk.BookingRefused) as twice:
        book(region_conn, "+62 812 3456 7890", session="10:00-12:00")  # the same number
    assert twice.value.key == "twice"
    book(region_conn, "081234567890", day=date(2026, 12, 8))  # another day: fine
    book(region_conn, "081299999999", session="10:00-12:00")  # another phone: fine
    bk.cancel(region_conn, made.code, made.key, now=NOW, tz=TZ)
    book(region_conn, "081234567890", session="10:00-12:00")  # cancelled: may book again
    seats = dict(
        region_conn.execute(
            "SELECT session, booked FROM booking_seats WHERE day = %s", (MONDAY,)
        ).fetchall()
    )
    assert seats == {"08:00-10:00": 0, "10:00-12:00": 2}


def test_cancel_by_link_frees_the_seat_and_tells_the_site(region_conn):
    full = offer(quota=1)
    made = book(region_conn, "081200000001", the_offer=full)
    with pytest.raises(bk.BookingRefused) as refused:
        book(region_conn, "081200000002", the_offer=full)
    assert refused.value.key == "full"
    with pytest.raises(bk.BookingRefused) as wrong:
        bk.cancel(region_conn, made.code, "not-the-key", now=NOW, tz=TZ)
    assert wrong.value.key == "unknown"
    bk.cancel(region_conn, made.code, made.key, now=NOW, tz=TZ)
    with pytest.raises(bk.BookingRefused) as again:
        bk.cancel(region_conn, made.code, made.key, now=NOW, tz=TZ)
    assert again.value.key == "not_active"
    book(region_conn, "081200000002", the_offer=full)  # the seat is free again
    bodies = [r[0] for r in region_conn.execute("SELECT body FROM down_queue ORDER BY id")]
    assert [b["kind"] for b in bodies] == ["booking", "cancel", "booking"]
    assert bodies[1] == {"kind": "cancel", "code": made.code}
    assert bodies[0]["start"] == "08:00" and bodies[0]["day"] == "2026-12-07"


def test_no_cancel_once_the_session_started_and_no_booking_of_a_started_session(region_conn):
    made = book(region_conn, "081200000001")
    started = datetime.fromisoformat("2026-12-07T08:01:00+08:00").timestamp()
    with pytest.raises(bk.BookingRefused) as late:
        bk.cancel(region_conn, made.code, made.key, now=started, tz=TZ)
    assert late.value.key == "started"
    with pytest.raises(bk.BookingRefused) as closed:
        bk.book(region_conn, offer(), "ktp", MONDAY, "08:00-10:00",
                phone_hashed=bk.phone_hash("081200000002", KEY), now=started, tz=TZ)  # fmt: skip
    assert closed.value.key == "closed"


def test_phone_numbers_are_kept_only_as_keyed_hashes(region_conn):
    book(region_conn, "0812 3456 7890")
    row = region_conn.execute("SELECT row_to_json(b)::text FROM bookings b").fetchone()[0]
    assert "3456" not in row and "62812" not in row
    assert bk.phone_hash("0812 3456 7890", KEY) == bk.phone_hash("+6281234567890", KEY)
    assert bk.phone_hash("081234567890", KEY) != bk.phone_hash("081234567890", "other key")
    for bad in ("12345", "0212345678", "08123", "0812abc45678", ""):
        with pytest.raises(bk.BookingRefused):
            bk.normal_phone(bad)


def test_days_and_sessions_follow_the_offer():
    days = bk.days_open(offer(), "ktp", NOW, TZ)
    assert days[0] == MONDAY and days[-1] == date(2026, 12, 14)  # 7 days ahead, weekdays
    assert all(d.weekday() < 5 for d in days) and len(days) == 6
    assert [s.session for s in bk.sessions_on(offer(), "ktp", MONDAY, NOW, TZ)] == [
        "08:00-10:00",
        "10:00-12:00",
    ]
    assert [s.session for s in bk.sessions_on(offer(), "ktp", date(2026, 12, 8), NOW, TZ)] == [
        "08:00-10:00"
    ]
    assert bk.sessions_on(offer(), "kk", MONDAY, NOW, TZ) == []
    assert bk.sessions_on(offer(), "ktp", date(2026, 12, 20), NOW, TZ) == []  # too far


def test_bookings_past_the_retention_are_deleted(region_conn):
    bk.save_offer(region_conn, offer(), NOW)
    old = date(2026, 8, 1)
    with region_conn.transaction():
        region_conn.execute(
            "INSERT INTO bookings (code, site, service, day, session, phone_hash, key_hash, "
            "status, created_at, changed_at) VALUES ('OLDB2222', 'bjb', 'ktp', %s, "
            "'08:00-10:00', 'h', 'k', 'expired', 0, 0)",
            (old,),
        )
    book(region_conn, "081200000001")
    assert bk.prune(region_conn, NOW, TZ) == 1
    assert [r[0] for r in region_conn.execute("SELECT day FROM bookings")] == [MONDAY]
