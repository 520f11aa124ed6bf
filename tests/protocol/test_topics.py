"""Topic builders, parsers and the topic table."""

from __future__ import annotations

from protocol import messages as m
from protocol.topics import COMMAND_ROLES, TOPIC, TOPICS, Topics


def test_builders() -> None:
    t = Topics("mpp-x")
    assert t.command("caller-03", "next") == "mpp/v1/mpp-x/cmd/caller-03/next"
    assert t.reply("kiosk-1") == "mpp/v1/mpp-x/reply/kiosk-1"
    assert t.counter_state(3) == "mpp/v1/mpp-x/counter/3/state"
    assert t.service_state("ktp") == "mpp/v1/mpp-x/service/ktp/state"
    assert t.site_state() == "mpp/v1/mpp-x/site/state"
    assert t.status("tv-lobby-1") == "mpp/v1/mpp-x/device/tv-lobby-1/status"
    assert t.alert("c-3") == "mpp/v1/mpp-x/alert/c-3"
    assert t.featured("entrance") == "mpp/v1/mpp-x/zone/entrance/featured"
    assert t.all_of("featured") == "mpp/v1/mpp-x/zone/+/featured"
    assert t.all_of("command") == "mpp/v1/mpp-x/cmd/+/+"
    assert t.all_of("counter_state") == "mpp/v1/mpp-x/counter/+/state"
    assert t.all_of("site_state") == "mpp/v1/mpp-x/site/state"


def test_parse_is_the_inverse_of_build() -> None:
    t = Topics("mpp-x")
    assert t.parse(t.command("caller-03", "next")) == (
        "command",
        {"device": "caller-03", "kind": "next"},
    )
    assert t.parse(t.counter_state(12)) == ("counter_state", {"counter": "12"})
    assert t.parse(t.site_state()) == ("site_state", {})
    assert t.parse(t.featured("entrance")) == ("featured", {"zone": "entrance"})
    assert t.parse("mpp/v1/other-site/site/state") is None
    assert t.parse("mpp/v1/mpp-x/cmd/caller-03") is None
    assert t.parse("mpp/v1/mpp-x/cmd//next") is None


def test_table_is_consistent() -> None:
    roles = {"kiosk", "caller", "display", "hub", "web", "region"}
    for spec in TOPICS:
        assert set(spec.publishers) <= roles and set(spec.subscribers) <= roles
        assert issubclass(spec.payload, m.Message)
    assert TOPIC["counter_state"].retained and not TOPIC["command"].retained
    assert all(set(r) <= roles for r in COMMAND_ROLES.values())
    assert "display" not in {r for roles_ in COMMAND_ROLES.values() for r in roles_}
