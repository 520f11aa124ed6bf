"""Message schemas: one encode/decode path, and every kind of bad payload gets its own code."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import messages as m
from protocol.errors import BadMessage


def test_round_trip_of_every_command() -> None:
    samples = {
        "issue": {"service": "ktp", "priority": "elderly"},
        "printed": {"ticket_id": 7},
        "void": {"ticket_id": 7, "reason": "paper out"},
        "next": {"counter": 3},
        "recall": {"counter": 3},
        "skip": {"counter": 3},
        "call_skipped": {"counter": 3, "ticket": "A012"},
        "transfer": {"counter": 3, "service": "kk"},
        "finish": {"counter": 3},
        "open": {"counter": 3, "officer": "Siti"},
        "close": {"counter": 3},
        "rate": {"counter": 3, "score": 4},
        "revoke_priority": {"ticket_id": 7, "by": "supervisor"},
        "ack_alert": {"alert_id": "complaints-3", "by": "supervisor"},
        "open_service": {"service": "ktp", "by": "admin"},
        "close_service": {"service": "ktp", "by": "admin"},
        "assign_counter": {"counter": 3, "services": ("skck", "ktp"), "by": "admin"},
        "service_limits": {"service": "ktp", "daily_quota": 80, "cutoff": "13:30", "by": "admin"},
        "zone_sound": {"zone": "lobby", "speech": True, "volume": 0.5, "by": "admin"},
        "survey": {"token": "x" * 22, "scores": (4, 3, 4, 4, 3, 2, 4, 4, 3), "comment": "ok"},
        "check_in": {"code": "K7P3M9QX", "site": "mpp-banjarbaru"},
        "break": {"counter": 3, "reason": "sholat", "minutes": 20},
        "end_break": {"counter": 3},
    }
    assert set(samples) == set(m.COMMANDS)
    for kind, fields in samples.items():
        model = m.COMMANDS[kind]
        command = model(device="caller-03", **fields)
        again = m.decode(model, m.encode(command))
        assert again == command
        assert json.loads(m.encode(command))["v"] == 1


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"service": "ktp", "daily_quota": 0, "by": "a"}, "daily_quota"),
        ({"service": "ktp", "daily_quota": 1000, "by": "a"}, "daily_quota"),
        ({"service": "ktp", "daily_quota": 5, "cutoff": "24:00", "by": "a"}, "cutoff"),
        ({"service": "ktp", "daily_quota": 5, "cutoff": "9:00", "by": "a"}, "cutoff"),
    ],
)
def test_bad_service_limits_are_invalid(fields: dict, fragment: str) -> None:
    payload = json.dumps({"v": 1, "device": "hub", **fields}).encode()
    with pytest.raises(BadMessage) as caught:
        m.decode(m.SetServiceLimits, payload)
    assert caught.value.code == "invalid" and fragment in str(caught.value)


def test_request_ids_are_unique() -> None:
    a, b = m.CallNext(device="caller-03", counter=3), m.CallNext(device="caller-03", counter=3)
    assert a.request_id != b.request_id and len(a.request_id) == 32


@pytest.mark.parametrize(
    ("payload", "code", "fragment"),
    [
        (b"{not json", "bad_json", "not JSON"),
        (b"\xff\xfe", "bad_json", "not JSON"),
        (b"[1, 2]", "bad_json", "expected a JSON object, got list"),
        (b'{"v": 2, "device": "caller-03", "counter": 3}', "unsupported_version", "v=2"),
        (b'{"device": "caller-03", "counter": 3}', "unsupported_version", "v=None"),
        (b'{"v": 1, "device": "caller-03"}', "invalid", "counter: Field required"),
        (
            b'{"v": 1, "device": "caller-03", "counter": "three"}',
            "invalid",
            "counter: Input should be a valid integer",
        ),
        (
            b'{"v": 1, "device": "caller-03", "counter": 3, "colour": 1}',
            "invalid",
            "colour: Extra inputs",
        ),
        (
            b'{"v": 1, "device": "Caller 03!", "counter": 3}',
            "invalid",
            "device: String should match",
        ),
        (
            b'{"v": 1, "device": "caller-03", "counter": 0}',
            "invalid",
            "counter: Input should be greater",
        ),
        (
            b'{"v": 1, "device": "caller-03", "counter": 3, "request_id": "x"}',
            "invalid",
            "request_id",
        ),
        (
            b'{"v": 1, "device": "c", "counter": 3, "x": "' + b"a" * 20000 + b'"}',
            "too_large",
            "limit 16384",
        ),
    ],
)
def test_bad_payloads_get_specific_codes(payload: bytes, code: str, fragment: str) -> None:
    with pytest.raises(BadMessage) as caught:
        m.decode(m.CallNext, payload)
    assert caught.value.code == code
    assert fragment in caught.value.message
    assert code in m.ERROR_CODES


def test_wrong_score_is_invalid() -> None:
    with pytest.raises(BadMessage, match="score"):
        m.decode(m.Rate, b'{"v": 1, "device": "caller-03", "counter": 3, "score": 5}')


def test_request_fields_of_garbage() -> None:
    assert m.request_fields({"request_id": "abcdefgh12", "reply_to": "x/y"}) == (
        "abcdefgh12",
        "x/y",
    )
    assert m.request_fields({"request_id": 12, "reply_to": ["x"]}) == (None, None)


@given(st.binary(max_size=300))
def test_random_bytes_never_escape_as_anything_but_bad_message(payload: bytes) -> None:
    try:
        m.decode(m.IssueTicket, payload)
    except BadMessage as exc:
        assert exc.code in m.ERROR_CODES


@given(
    st.dictionaries(
        st.sampled_from(["v", "device", "counter", "service", "request_id", "score"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=20), st.floats(), st.booleans()),
    )
)
def test_random_objects_never_escape_as_anything_but_bad_message(data: dict) -> None:
    for model in (m.IssueTicket, m.Rate, m.CallNext):
        try:
            m.decode(model, json.dumps(data).encode())
        except BadMessage as exc:
            assert exc.code in m.ERROR_CODES


def _slide(order: int = 0, **changes: object) -> dict:
    fields: dict = {
        "order": order,
        "caption": {"id": "Kerupuk haruan", "en": "Fish crackers"},
        "image_url": "http://192.168.10.2:8080/media/featured/" + "a" * 64 + ".png",
        "image_sha256": "a" * 64,
    }
    fields.update(changes)
    return fields


def test_featured_state_round_trip_and_caption_fallback() -> None:
    state = m.FeaturedState(seq=9, zone="entrance", slides=(m.FeaturedSlide(**_slide()),))
    again = m.decode(m.FeaturedState, m.encode(state))
    assert again == state
    assert again.slides[0].caption.get("en") == "Fish crackers"
    assert m.SlideCaption(id="Kerupuk").get("en") == "Kerupuk"
    assert m.decode(m.FeaturedState, b'{"v": 1, "seq": 3, "zone": "entrance"}').slides == ()


@pytest.mark.parametrize(
    ("slide", "fragment"),
    [
        (_slide(image_sha256="A" * 64), "slides.0.image_sha256"),
        (_slide(image_sha256="a" * 63), "slides.0.image_sha256"),
        (_slide(image_url="file:///etc/passwd"), "slides.0.image_url"),
        (_slide(image_url="http://hub/x.png?y=1"), "slides.0.image_url"),
        (_slide(caption={"id": ""}), "slides.0.caption.id"),
        (_slide(caption={"id": "x" * 121}), "slides.0.caption.id"),
        (_slide(caption={"id": "two\nlines"}), "slides.0.caption.id"),
        (_slide(caption={"id": "x", "en": "nul\u0000"}), "slides.0.caption.en"),
        (_slide(order=-1), "slides.0.order"),
        (_slide(extra=1), "slides.0.extra"),
    ],
)
def test_bad_featured_slides_are_refused(slide: dict, fragment: str) -> None:
    payload = json.dumps({"v": 1, "seq": 1, "zone": "entrance", "slides": [slide]})
    with pytest.raises(BadMessage) as caught:
        m.decode(m.FeaturedState, payload)
    assert caught.value.code == "invalid" and fragment in caught.value.message


def test_too_many_featured_slides_are_refused() -> None:
    slides = [_slide(i) for i in range(m.MAX_FEATURED_SLIDES + 1)]
    payload = json.dumps({"v": 1, "seq": 1, "zone": "entrance", "slides": slides})
    with pytest.raises(BadMessage, match="slides"):
        m.decode(m.FeaturedState, payload)


def test_the_largest_featured_state_fits_in_a_payload() -> None:
    """Every caption at its limit in 4-byte characters (or JSON-escaped ones), the longest URL."""
    for char in ("😀", '"', "\\"):
        slide = m.FeaturedSlide(
            order=999,
            caption=m.SlideCaption(id=char * m.CAPTION_CHARS, en=char * m.CAPTION_CHARS),
            image_url="https://" + "h" * 192,
            image_sha256="f" * 64,
        )
        state = m.FeaturedState(seq=2**53, zone="z" * 40, slides=(slide,) * m.MAX_FEATURED_SLIDES)
        raw = m.encode(state)
        assert len(raw) <= m.MAX_PAYLOAD_BYTES, (repr(char), len(raw))
        assert m.decode(m.FeaturedState, raw) == state
