"""The site inventory: the example loads, and every class of mistake names key and fix."""

from __future__ import annotations

import re
from datetime import date

import pytest

from protocol.errors import InventoryError
from protocol.site import load_site, parse_site
from tests.conftest import EXAMPLE, example_text, make_site


def problems_of(text: str) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        parse_site(text, "site.toml")
    assert str(caught.value).startswith("site.toml: ")
    return caught.value.problems


def test_example_is_a_realistic_mpp() -> None:
    site = load_site(EXAMPLE)
    assert site.site.timezone == "Asia/Makassar"
    assert len(site.agencies) >= 12 and len(site.services) >= 20 and len(site.counters) >= 30
    assert {"entrance", "lobby", "canteen"} <= {z.kind for z in site.zones.values()}
    roles = [d.role for d in site.devices.values()]
    assert roles.count("kiosk") == 4 and roles.count("caller") == 30 and roles.count("display") == 6
    assert site.services["skck"].prefix == "H" and site.services["skck"].cost == 30000
    assert site.time_classes[site.services["paspor"].time_class].within == "3d"
    assert site.counters[3].services == ("ktp",)
    assert site.counters_serving("paspor") == (19, 20)
    assert site.counter_name(3) == "Loket 3" and site.counter_name(3, "en") == "Counter 3"
    assert len(site.version) == 12


def test_objects_are_frozen() -> None:
    site = load_site(EXAMPLE)
    with pytest.raises(ValueError, match="frozen"):
        site.services["ktp"].prefix = "Z"  # type: ignore[misc]


def test_opening_hours_per_weekday() -> None:
    hours = load_site(EXAMPLE).site.hours
    assert hours.span(date(2026, 11, 23)) is not None  # Monday
    assert str(hours.span(date(2026, 11, 28))[1]) == "12:00:00"  # Saturday  # type: ignore[index]
    assert hours.span(date(2026, 11, 29)) is None  # Sunday: closed


def test_duplicate_prefix_names_both_services() -> None:
    text = example_text().replace('prefix = "H"', 'prefix = "A"')
    assert problems_of(text) == [
        "services.skck.prefix: 'A' is already used by services.ktp; "
        "give each service its own prefix"
    ]


def test_typo_in_key_suggests_the_right_one() -> None:
    text = example_text().replace(
        'time_class = "long"\ncost = 350000', 'time_clas = "long"\ncost = 350000'
    )
    problems = problems_of(text)
    assert (
        "services.paspor.time_clas: unknown key 'time_clas'; did you mean 'time_class'?" in problems
    )
    assert "services.paspor.time_class: required key is missing; add it" in problems


def test_dangling_references_suggest_close_names() -> None:
    text = (
        example_text()
        .replace('services = ["skck"]', 'services = ["skc"]', 1)
        .replace('zone = "lobby"', 'zone = "loby"', 1)
        .replace("counter = 7\n", "counter = 77\n")
        .replace('agency = "polres"', 'agency = "polri"')
    )
    problems = problems_of(text)
    assert "counters.13.services[0]: 'skc' is not in [services]; did you mean 'skck'?" in problems
    assert "counters.1.zone: 'loby' is not in [zones]; did you mean 'lobby'?" in problems
    assert "devices.caller-07.counter: 77 is not in [counters]; did you mean '7'?" in problems
    assert any(p.startswith("services.skck.agency: 'polri' is not in [agencies]") for p in problems)


def test_pin_used_twice_on_a_device() -> None:
    text = example_text().replace(
        "rating = { very_satisfied = 5", "rating = { very_satisfied = 17", 1
    )
    assert problems_of(text) == [
        "devices.caller-01.rating.very_satisfied: pin 17 is already used by "
        "devices.caller-01.buttons.next; wire it to a free GPIO pin"
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'timezone = "Asia/Makassar"',
            'timezone = "Asia/Makasar"',
            "site.timezone: 'Asia/Makasar' is not a known time zone",
        ),
        (
            'mon = "07:30-16:00"',
            'mon = "16:00-07:30"',
            "site.hours.mon: '16:00-07:30' closes before it opens",
        ),
        (
            'mon = "07:30-16:00"',
            'mon = "7.30-16"',
            "site.hours.mon: '7.30-16' is not an opening time",
        ),
        (
            'cutoff = "14:00"',
            'cutoff = "17:30"',
            "services.ktp.cutoff: 17:30 is outside the opening hours",
        ),
        ('cutoff = "14:00"', 'cutoff = "2pm"', "services.ktp.cutoff: '2pm' is not a time of day"),
        (
            "daily_quota = 150",
            'daily_quota = "lots"',
            "services.ktp.daily_quota: Input should be a valid integer",
        ),
        (
            'within = "3h"',
            'within = "three hours"',
            "time_classes.fast.within: 'three hours' is not a duration",
        ),
        ('role = "display"', 'role = "screen"', "devices.tv-entrance.role: must be one of"),
        (
            'languages = ["id", "en"]',
            'languages = ["en", "id"]',
            "site.languages: Indonesian comes first",
        ),
        (
            'connection = "network", host = "192.168.10.31", ',
            'connection = "network", ',
            "devices.kiosk-2.printer: a network printer needs host",
        ),
        ('prefix = "A"', 'prefix = "a1"', "services.ktp.prefix: String should match pattern"),
        (
            'quota_before = "12:00"',
            'quota_before = "noon"',
            "alerts.quota_before: 'noon' is not a time of day",
        ),
        ("idle_minutes = 10", "idle_minutes = 0", "alerts.idle_minutes: Input should be greater"),
        (
            "break_minutes = { istirahat = 30,",
            "break_minutes = { tidur = 30,",
            "hub.break_minutes.tidur",
        ),
        ('days = ["fri"]', 'days = ["jumat"]', "pauses.jumat.days.0: Input should be"),
    ],
)
def test_bad_values_are_named(old: str, new: str, expected: str) -> None:
    text = example_text()
    assert old in text
    problems = problems_of(text.replace(old, new, 1))
    assert any(p.startswith(expected) for p in problems), problems


def test_not_toml_at_all() -> None:
    assert problems_of("[site\nid=")[0].startswith("not valid TOML")


def test_missing_file(tmp_path) -> None:
    with pytest.raises(InventoryError, match="cannot read the file"):
        load_site(tmp_path / "nope.toml")


def test_kiosk_needs_buttons_or_screen() -> None:
    text = example_text().replace(
        "screen = { width = 1080, height = 1920, fullscreen = true }   # portrait touchscreen, all services\n",
        "",
    )
    assert "devices.kiosk-1: a kiosk needs service buttons or a touchscreen" in problems_of(text)[0]


def test_hub_is_a_reserved_device_id() -> None:
    text = example_text().replace("[devices.tv-entrance]", "[devices.hub]")
    assert problems_of(text)[0].startswith("devices.hub: 'hub' is reserved")


def test_business_day_is_local() -> None:
    site = load_site(EXAMPLE)
    # 2026-11-23 16:30 UTC is 2026-11-24 00:30 in Makassar (UTC+8)
    assert site.business_day(1795451400.0) == "2026-11-24"


def test_media_url_defaults_to_the_public_url_and_must_be_http() -> None:
    assert make_site().media_url() == "http://192.168.10.2:8080"
    own = make_site(media_url="http://192.168.10.3:8080/")
    assert own.media_url() == "http://192.168.10.3:8080"  # no trailing slash: paths follow
    for bad in ("ftp://hub/", "192.168.10.2:8080", "http://hub/x?y=1", "http:// hub"):
        with pytest.raises(InventoryError, match=r"hub\.media_url: .* is not an http"):
            make_site(media_url=bad)


def test_public_url_must_be_http() -> None:
    for bad in ("192.168.10.2:8080", "ftp://hub/", "http://hub/t?x=1"):
        text = re.sub(r'(?m)^public_url = ".*?"', f'public_url = "{bad}"', example_text(), count=1)
        assert any(
            p.startswith("site.public_url: ") and "is not an http" in p for p in problems_of(text)
        )


def test_every_problem_of_a_file_in_one_run() -> None:
    """Wrong values do not hide the rules across tables (dangling names, a prefix used twice)."""
    text = (
        example_text()
        .replace("daily_quota = 150", 'daily_quota = "lots"', 1)
        .replace('agency = "disdukcapil"', 'agency = "dukcapil"', 1)  # the same service
        .replace('prefix = "H"', 'prefix = "A"')
        .replace('timezone = "Asia/Makassar"', 'timezone = "WITA"')
        .replace('zone = "lobby"', 'zone = "loby"', 1)
        .replace("counter = 7\n", "counter = 77\n")
    )
    problems = problems_of(text)
    for words in (
        "services.ktp.daily_quota: Input should be a valid integer",
        "site.timezone: 'WITA' is not a known time zone",
        "services.ktp.agency: 'dukcapil' is not in [agencies]; did you mean 'disdukcapil'?",
        "services.skck.prefix: 'A' is already used by services.ktp",
        "counters.1.zone: 'loby' is not in [zones]; did you mean 'lobby'?",
        "devices.caller-07.counter: 77 is not in [counters]",
    ):
        assert any(p.startswith(words) for p in problems), (words, problems)
    assert len(problems) == len(set(problems)) == 6, problems


def test_an_entry_with_a_problem_of_its_own_is_not_called_missing() -> None:
    text = example_text().replace(
        'time_class = "fast"\ncost = 0\ndaily_quota = 150', 'time_clas = "fast"\ncost = 0', 1
    )
    problems = problems_of(text)
    assert sorted(problems) == [
        "services.ktp.time_clas: unknown key 'time_clas'; did you mean 'time_class'?",
        "services.ktp.time_class: required key is missing; add it",
    ]  # and not "counters.3.services[0]: 'ktp' is not in [services]"


def test_wrong_opening_hours_are_one_problem() -> None:
    text = example_text().replace('mon = "07:30-16:00"', 'mon = "7.30-16"')
    assert problems_of(text) == [
        "site.hours.mon: '7.30-16' is not an opening time; write 'HH:MM-HH:MM' or 'closed'"
    ]  # not also "closed every day" nor cut-offs outside the hours


def test_a_kiosk_with_a_wrong_screen_is_not_said_to_lack_one() -> None:
    text = example_text().replace("screen = { width = 1080,", "screen = { width = 10,", 1)
    assert problems_of(text) == [
        "devices.kiosk-1.screen.width: Input should be greater than or equal to 320"
    ]
