"""The ACL generated from the topic table, and the role x topic matrix against a real broker."""

from __future__ import annotations

import json
import time

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from broker_config.acl import (
    HUB,
    MONITOR,
    WEB,
    AclError,
    Rule,
    render_acl,
    role_rules,
    shared_patterns,
)
from protocol.messages import COMMANDS
from protocol.topics import COMMAND_ROLES, TOPIC, TOPICS, Topics
from tests.broker_config.conftest import Probe, SiteBroker
from tests.timing import wait_until

# One device of each role takes part; a second device of the same role is the "other".
SUBJECTS = {
    "kiosk-1": "kiosk",
    "caller-03": "caller",
    "tv-lobby-1": "display",
    HUB: HUB,
    WEB: WEB,
}
SUBJECTS[MONITOR] = MONITOR
OTHERS = ("kiosk-2", "caller-04", "tv-lobby-2")


def concrete_topics(t: Topics) -> list[str]:
    """Every row of the topic table, filled in for each subject and another device."""
    devices = [*SUBJECTS, *OTHERS]
    out: list[str] = []
    for spec in TOPICS:
        if spec.name == "command":
            out += [t.command(d, kind) for d in devices for kind in COMMANDS]
        elif spec.name == "reply":
            out += [t.reply(d) for d in devices]
        elif spec.name == "status":
            out += [t.status(d) for d in devices]
        elif spec.name == "counter_state":
            out.append(t.counter_state(3))
        elif spec.name == "service_state":
            out.append(t.service_state("ktp"))
        elif spec.name == "service_queue":
            out.append(t.service_queue("ktp"))
        elif spec.name == "site_state":
            out.append(t.site_state())
        elif spec.name == "alert":
            out.append(t.alert("complaints-3"))
        elif spec.name == "featured":
            out.append(t.featured("entrance"))
        elif spec.name == "zone_sound":
            out.append(t.zone_sound("lobby"))
        elif spec.name == "events":
            out.append(t.events())
        elif spec.name == "catalog":
            out.append(t.catalog())
        elif spec.name == "ack":
            out.append(t.ack())
        elif spec.name == "queue_view":
            out.append(t.queue_view())
        elif spec.name == "booking_offer":
            out.append(t.booking_offer())
        elif spec.name == "down_messages":
            out.append(t.down_messages())
        elif spec.name == "down_ack":
            out.append(t.down_ack())
        else:  # a new row must be added here, or the matrix silently skips it
            pytest.fail(f"topic row {spec.name!r} has no case in the matrix")
    return out


def expected(t: Topics, user: str, topic: str, access: str) -> bool:
    """What the protocol table says (docs/protocol.md), applied to one concrete topic."""
    role = SUBJECTS[user]
    parsed = t.parse(topic)
    assert parsed is not None, topic
    row, values = parsed
    spec = TOPIC[row]
    own = values.get("device") == user
    # Rules on a client's own id are `pattern` lines and so hold for every account.
    if (access, row) in {("write", "status"), ("read", "reply")} and own:
        return True
    if role == MONITOR:
        return access == "read" and spec.retained
    side = spec.publishers if access == "write" else spec.subscribers
    if role not in side:
        return False
    if access == "write" and "kind" in values and role not in COMMAND_ROLES[values["kind"]]:
        return False
    if spec.own_only and side != (role,):
        return own or (access == "read" and role in spec.reads_every_device)
    return True


def test_patterns_bind_every_role_to_its_own_id() -> None:
    patterns = shared_patterns("s")
    assert patterns == (
        Rule("read", "mpp/v1/s/reply/%u"),
        Rule("write", "mpp/v1/s/device/%u/status"),
    )
    text = render_acl("s", {"hub": "hub", "kiosk-1": "kiosk"})
    assert "pattern read mpp/v1/s/reply/%u\n" in text
    # Nothing before the first `user` line except patterns: anonymous clients get nothing.
    head = text.split("\nuser ", 1)[0]
    assert "\ntopic " not in head


def test_every_rule_comes_from_the_table() -> None:
    for role in SUBJECTS.values():
        for rule in role_rules("s", role):
            assert Topics("s").parse(rule.topic.replace("%u", "x").replace("+", "x")), rule


def test_reserved_and_unknown_names_are_refused() -> None:
    with pytest.raises(AclError, match="'monitor' is reserved"):
        render_acl("s", {"monitor": "display"})
    with pytest.raises(AclError, match="unknown role 'printer'"):
        render_acl("s", {"kiosk-1": "printer"})


def test_same_users_give_the_same_acl_in_any_order() -> None:
    users = {"hub": "hub", "caller-03": "caller", "kiosk-1": "kiosk", "tv-1": "display"}
    backwards = dict(reversed(list(users.items())))
    assert render_acl("s", users) == render_acl("s", backwards)


@pytest.fixture(scope="module")
def matrix(site_broker_running: SiteBroker) -> dict:
    """Every subject publishes (QoS 1, MQTT 5) to every topic while all subscribe to '#'."""
    sb = site_broker_running
    t = Topics(sb.site.site.id)
    topics = concrete_topics(t)
    clients = {user: Probe(sb, user) for user in SUBJECTS}
    try:
        for user, client in clients.items():
            assert client.connect(), f"{user} refused: {client.connack}"
            client.subscribe(t.prefix + "#")
        codes = {
            user: client.publish_all(
                topics, lambda topic, user=user: json.dumps([user, topic]).encode()
            )
            for user, client in clients.items()
        }
        accepted = {(u, topic) for u in codes for topic, rc in codes[u].items() if rc < 128}
        want = {
            reader: {(u, tp) for u, tp in accepted if expected(t, reader, tp, "read")}
            for reader in clients
        }
        got: dict[str, set] = {reader: set() for reader in clients}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(not want[r] <= got[r] for r in clients):
            for reader, client in clients.items():
                got[reader] |= {tuple(json.loads(p)) for _, p, _ in client.drain()}
            time.sleep(0.05)
        time.sleep(0.5)  # anything the ACL wrongly lets through arrives with the rest
        for reader, client in clients.items():
            got[reader] |= {tuple(json.loads(p)) for _, p, _ in client.drain()}
    finally:
        for client in clients.values():
            client.close()
    return {"topics": topics, "codes": codes, "want": want, "got": got, "t": t}


def test_publish_matrix(matrix: dict) -> None:
    t, wrong = matrix["t"], []
    for user, codes in matrix["codes"].items():
        for topic, rc in codes.items():
            allowed = expected(t, user, topic, "write")
            if allowed != (rc < 128) or (not allowed and rc != 135):
                wrong.append(f"{user} -> {topic}: reason {rc}, expected allowed={allowed}")
    assert not wrong, "\n".join(wrong[:20])
    cases = sum(len(codes) for codes in matrix["codes"].values())
    assert cases == len(SUBJECTS) * len(matrix["topics"])
    allowed = sum(rc < 128 for codes in matrix["codes"].values() for rc in codes.values())
    print(  # the figures docs/security.md records (pytest -s)
        f"ACL publish matrix: {len(SUBJECTS)} accounts x {len(matrix['topics'])} topics = "
        f"{cases}; {allowed} allowed, {cases - allowed} denied with 135"
    )


def test_read_matrix(matrix: dict) -> None:
    for reader in SUBJECTS:
        extra = matrix["got"][reader] - matrix["want"][reader]
        missing = matrix["want"][reader] - matrix["got"][reader]
        assert not extra, f"{reader} read what it must not: {sorted(extra)[:5]}"
        assert not missing, f"{reader} missed what it may read: {sorted(missing)[:5]}"
    accepted = sum(rc < 128 for codes in matrix["codes"].values() for rc in codes.values())
    delivered = sum(len(got) for got in matrix["got"].values())
    cases = accepted * len(SUBJECTS)
    print(
        f"ACL read matrix: {accepted} publishes x {len(SUBJECTS)} subscribers = {cases}; "
        f"{delivered} delivered, {cases - delivered} withheld"
    )


def test_policy_in_plain_words(matrix: dict) -> None:
    """The issue's sentences, checked on what the broker actually allowed."""
    t = matrix["t"]
    wrote = {
        user: {topic for topic, rc in codes.items() if rc < 128}
        for user, codes in matrix["codes"].items()
    }
    kiosk_kinds = {k for k, roles in COMMAND_ROLES.items() if "kiosk" in roles}
    # A kiosk only requests tickets (issue/printed/void, a booking's check-in) and publishes
    # its own health.
    assert wrote["kiosk-1"] == {t.command("kiosk-1", k) for k in kiosk_kinds} | {
        t.status("kiosk-1")
    }
    assert kiosk_kinds == {"issue", "printed", "void", "check_in"}
    # A caller box only commands on its own id and publishes its own health.
    assert {tp for tp in wrote["caller-03"] if "/cmd/" in tp} == {
        t.command("caller-03", k) for k, roles in COMMAND_ROLES.items() if "caller" in roles
    }
    assert t.command("caller-03", "issue") not in wrote["caller-03"]
    assert t.status("caller-04") not in wrote["caller-03"]
    # A display and the monitor only read (their own presence aside).
    assert wrote["tv-lobby-1"] == {t.status("tv-lobby-1")}
    assert wrote[MONITOR] == {t.status(MONITOR)}
    # Only the hub writes queue state, replies and alerts, and reads commands.
    state = {
        t.counter_state(3),
        t.service_state("ktp"),
        t.service_queue("ktp"),
        t.site_state(),
        t.alert("complaints-3"),
    }
    for user in SUBJECTS:
        assert (state <= wrote[user]) == (user == HUB), user
    # The web sends staff commands on its own id only, publishes its own presence and the
    # featured products (its own table); it never issues tickets.
    web_kinds = {k for k, roles in COMMAND_ROLES.items() if "web" in roles}
    assert wrote[WEB] == {t.command(WEB, k) for k in web_kinds} | {
        t.status(WEB),
        t.featured("entrance"),
    }
    assert "issue" not in web_kinds and {t.featured("entrance")} & wrote[HUB] == set()
    readers_of_commands = {
        reader for reader, got in matrix["got"].items() if any("/cmd/" in tp for _, tp in got)
    }
    assert readers_of_commands == {HUB}
    # Nobody reads another device's replies.
    for reader, got in matrix["got"].items():
        foreign = {tp for _, tp in got if "/reply/" in tp and not tp.endswith("/" + reader)}
        assert not foreign, (reader, foreign)


def test_retained_alert_reaches_monitor_and_screens_not_kiosks(
    site_broker_running: SiteBroker, probes
) -> None:
    """Alerts are for supervisors and any screen that shows them (issue 22), not kiosks."""
    sb = site_broker_running
    t = Topics(sb.site.site.id)
    hub = Probe(sb, HUB)
    probes.append(hub)
    assert hub.connect()
    hub.client.publish(t.alert("retained-x"), b'{"v":1}', qos=1, retain=True).wait_for_publish(5)
    display, monitor, kiosk = Probe(sb, "tv-lobby-1"), Probe(sb, MONITOR), Probe(sb, "kiosk-1")
    probes += [display, monitor, kiosk]
    for probe in (display, monitor, kiosk):
        assert probe.connect()
        probe.subscribe(t.all_of("alert"))
    seen_monitor = wait_until(monitor.drain, 5)
    assert seen_monitor and seen_monitor[0][2], "the monitor gets the retained alert"
    seen_display = wait_until(display.drain, 5)
    assert seen_display and seen_display[0][2], "a screen gets the retained alert"
    time.sleep(0.3)
    assert kiosk.drain() == []
    hub.client.publish(t.alert("retained-x"), b"", qos=1, retain=True).wait_for_publish(5)


def test_a_will_on_another_devices_topic_is_never_delivered(
    site_broker_running: SiteBroker, probes
) -> None:
    sb = site_broker_running
    t = Topics(sb.site.site.id)
    monitor = Probe(sb, MONITOR)
    probes.append(monitor)
    assert monitor.connect()
    monitor.subscribe(t.all_of("status"))
    monitor.drain()
    rogue = Probe(sb, "caller-03")
    rogue.client.will_set(t.status("caller-04"), b'{"online":false}', qos=1, retain=True)
    assert rogue.connect()
    # MQTT 5 "disconnect with will message": the broker publishes the will as on a dropped link.
    rogue.client.disconnect(
        reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message")
    )
    rogue.client.loop_stop()
    # Control: the same kind of will on its own presence topic does arrive.
    honest = Probe(sb, "caller-04")
    honest.client.will_set(t.status("caller-04"), b'{"online":false}', qos=1, retain=False)
    assert honest.connect()
    honest.client.disconnect(
        reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message")
    )
    honest.client.loop_stop()
    seen = wait_until(lambda: [m for m in monitor.drain() if m[0] == t.status("caller-04")], 5)
    assert seen == [(t.status("caller-04"), b'{"online":false}', False)]
