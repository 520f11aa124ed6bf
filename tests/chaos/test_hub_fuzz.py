"""Scenario 7: at least 10,000 generated payloads (hypothesis) on every command topic of a
running hub process; the hub answers each, never crashes, and its state does not change."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bench.figures import figure
from protocol import messages as m
from protocol.site import Site, parse_site
from protocol.topics import COMMAND_ROLES
from tests.chaos.conftest import (
    CommandTap,
    HubProcess,
    db_dump,
    retained_dump,
    scaled,
    wait_hub,
)
from tests.conftest import write_site
from tests.timing import wait_until

PAYLOADS = scaled(10_000, minimum=200)
BATCH = 25  # payloads sent together; the hub answers them in any interleaving
ANSWER_TIMEOUT_S = 20.0
KINDS = tuple(m.COMMANDS)
COUNTER_KINDS = ("next", "recall", "skip", "call_skipped", "transfer", "finish", "open", "close")
COUNTER_KINDS += ("rate", "assign_counter", "break", "end_break")
MAX = m.MAX_PAYLOAD_BYTES

# Where in the hub a fault is caught, first to last: the reply names the earliest one.
STAGE = {
    "too_large": 0,
    "bad_json": 0,
    "unknown_kind": 1,
    "unsupported_version": 2,
    "invalid": 3,
    "device_mismatch": 4,
    "forbidden": 5,
    "stale": 6,
}


class Case:
    """One generated payload: where it goes, what it is, and the answer it must get."""

    def __init__(
        self,
        device: str,
        kind: str,
        payload: bytes,
        why: str,
        codes: frozenset[str] = frozenset(),  # the error codes it may get (empty: any error)
        replay_of: m.Reply | None = None,  # a replay: it gets this first answer again
    ) -> None:
        self.device, self.kind, self.payload, self.why = device, kind, payload, why
        self.codes, self.replay_of = codes, replay_of

    def __repr__(self) -> str:  # short: hypothesis prints failing batches
        head = self.payload[:160]
        more = f"...({len(self.payload)} bytes)" if len(self.payload) > 160 else ""
        return f"Case({self.device!r}/{self.kind!r} {self.why} {sorted(self.codes)} {head!r}{more})"


@dataclass
class Seeded:
    """The state the fuzzing starts from, and the requests that made it (for replays)."""

    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> ticket info
    applied: list[tuple[str, str, dict[str, Any], m.Reply]] = field(default_factory=list)


def rid() -> str:
    """A fresh, well-formed request id."""
    return uuid.uuid4().hex


def command(device: str, kind: str, **fields: Any) -> dict[str, Any]:
    """A well-formed command payload (no sent_at: the hub takes it at any time)."""
    return {"v": 1, "request_id": rid(), "device": device, **fields}


def seed(tap: CommandTap) -> Seeded:
    """Bring the hub into a known state: tickets issued, printed, voided, called, skipped,
    served and rated at counter 3, a service closed; keep each request for replays."""
    seeded = Seeded()

    def apply(device: str, kind: str, **fields: Any) -> dict[str, Any]:
        payload = command(device, kind, **fields)
        answer = tap.ask(device, kind, json.dumps(payload).encode(), timeout=10)
        assert answer is not None and answer.reply.ok, (kind, fields, answer)
        seeded.applied.append((device, kind, payload, answer.reply))
        return answer.reply.result or {}

    for service in ("ktp", "ktp", "ktp", "kk", "skck"):
        ticket = apply("kiosk-3", "issue", service=service)["ticket"]
        seeded.tickets[ticket["number"]] = ticket
    ticket = apply("kiosk-4", "issue", service="nib")["ticket"]
    seeded.tickets[ticket["number"]] = ticket
    apply("kiosk-3", "printed", ticket_id=seeded.tickets["A001"]["id"])
    apply("kiosk-3", "void", ticket_id=seeded.tickets["H001"]["id"], reason="paper out")
    apply("caller-03", "open", counter=3, officer="Siti")
    apply("caller-03", "next", counter=3)  # A001
    apply("caller-03", "next", counter=3)  # A002; A001 done
    apply("caller-03", "skip", counter=3)  # A002 on the no-show list
    apply("caller-03", "next", counter=3)  # A003
    apply("caller-03", "finish", counter=3)
    apply("caller-03", "rate", counter=3, score=4)
    apply("hub", "close_service", service="haji", by="admin")
    return seeded


# -- payloads --------------------------------------------------------------------------------
UNKNOWN_CODES = st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True).map(lambda x: "zz" + x)
EXTRAS: dict[str, dict[str, Any]] = {  # the fields each kind needs besides device (and counter)
    "issue": {"service": "ktp"},
    "printed": {"ticket_id": 1},
    "void": {"ticket_id": 1},
    "call_skipped": {"ticket": "A002"},
    "transfer": {"service": "ktp"},
    "open": {"officer": "X"},
    "rate": {"score": 3},
    "revoke_priority": {"ticket_id": 1, "by": "x"},
    "ack_alert": {"alert_id": "a1", "by": "x"},
    "open_service": {"service": "ktp", "by": "x"},
    "close_service": {"service": "ktp", "by": "x"},
    "survey": {"token": "t" * 16, "scores": [4] * 9},
    "assign_counter": {"services": ["ktp"], "by": "x"},
    "service_limits": {"service": "ktp", "daily_quota": 5, "by": "x"},
    "zone_sound": {"zone": "lobby", "speech": True, "volume": 0.5, "by": "x"},
    "break": {"reason": "istirahat"},
    "check_in": {"code": "ZZZZZZZZ"},
}


def well_formed(device: str, kind: str, counter: int = 1) -> dict[str, Any]:
    """A payload of `kind` the protocol accepts in form (whether the hub applies it is another
    matter)."""
    fields = dict(EXTRAS.get(kind, {}))
    if kind in COUNTER_KINDS:
        fields["counter"] = counter
    return command(device, kind, **fields)


@st.composite
def valid_command(draw: Any, s: Seeded) -> tuple[str, str, dict[str, Any]]:
    """A command the hub would apply (it changes state): only ever sent spoiled."""
    t = s.tickets
    return draw(
        st.sampled_from(
            [
                ("kiosk-3", "issue", command("kiosk-3", "issue", service="ktp")),
                ("kiosk-1", "issue", command("kiosk-1", "issue", service="bank", lang="en")),
                (
                    "kiosk-4",
                    "issue",
                    command("kiosk-4", "issue", service="nib", priority="elderly"),
                ),
                ("caller-05", "open", command("caller-05", "open", counter=5, officer="Ani")),
                ("caller-05", "close", command("caller-05", "close", counter=5)),
                (
                    "caller-03",
                    "call_skipped",
                    command("caller-03", "call_skipped", counter=3, ticket="A002"),
                ),
                ("kiosk-3", "printed", command("kiosk-3", "printed", ticket_id=t["A001"]["id"])),
                (
                    "kiosk-4",
                    "void",
                    command("kiosk-4", "void", ticket_id=t["E001"]["id"], reason="jam"),
                ),
                ("kiosk-3", "void", command("kiosk-3", "void", cancels=rid())),
                ("hub", "close_service", command("hub", "close_service", service="ktp", by="x")),
                ("hub", "open_service", command("hub", "open_service", service="haji", by="x")),
                ("hub", "open", command("hub", "open", counter=4, officer="Budi")),
                (
                    "hub",
                    "survey",
                    command("hub", "survey", token=t["A001"]["token"], scores=[4] * 9),
                ),
                (
                    "hub",
                    "assign_counter",
                    command("hub", "assign_counter", counter=3, services=["kk", "ktp"], by="x"),
                ),
                (
                    "hub",
                    "service_limits",
                    command(
                        "hub",
                        "service_limits",
                        service="ktp",
                        daily_quota=7,
                        cutoff="10:00",
                        by="x",
                    ),
                ),
                (
                    "hub",
                    "zone_sound",
                    command("hub", "zone_sound", zone="canteen", speech=False, volume=0.2, by="x"),
                ),
            ]
        )
    )


@st.composite
def refused_command(draw: Any, s: Seeded) -> tuple[str, str, dict[str, Any], frozenset[str], bool]:
    """A well-formed command the hub must refuse in this state, the refusal's codes, and
    whether the hub refuses it before its rules (who may send what) or by them."""
    t = s.tickets
    other_counter = draw(st.integers(1, 30).filter(lambda n: n != 3))
    caller = draw(st.sampled_from(["caller", "hub"]))
    choice = draw(st.integers(0, 19))
    if choice == 0:  # counter 3 is open and idle; nobody waits for ktp
        kind = draw(st.sampled_from(["next", "recall", "skip", "finish", "transfer", "rate"]))
        extra = {"service": "kk"} if kind == "transfer" else {}
        extra |= {"score": draw(st.integers(1, 4))} if kind == "rate" else {}
        code = {"next": "queue_empty", "rate": "already_rated"}.get(kind, "no_ticket")
        codes = {code, "rating_closed"} if kind == "rate" else {code}
        device = "caller-03" if caller == "caller" else "hub"
        return device, kind, command(device, kind, counter=3, **extra), frozenset(codes), False
    if choice == 1:  # only A002 is on counter 3's no-show list
        label = draw(
            st.from_regex(r"[A-Z]{1,2}[0-9]{3}", fullmatch=True).filter(lambda x: x != "A002")
        )
        device = "caller-03" if caller == "caller" else "hub"
        payload = command(device, "call_skipped", counter=3, ticket=label)
        return device, "call_skipped", payload, frozenset({"bad_state"}), False
    if choice == 2:  # every other counter is closed
        kind = draw(
            st.sampled_from(
                ["next", "recall", "skip", "finish", "transfer", "call_skipped", "rate"]
            )
        )
        extra = {"transfer": {"service": "ktp"}, "call_skipped": {"ticket": "A002"}}.get(kind, {})
        extra |= {"score": 1} if kind == "rate" else {}
        device = f"caller-{other_counter:02d}" if caller == "caller" else "hub"
        code = "rating_closed" if kind == "rate" else "counter_closed"
        return (
            device,
            kind,
            command(device, kind, counter=other_counter, **extra),
            frozenset({code}),
            False,
        )
    if choice == 3:  # counters the inventory does not have
        kind = draw(st.sampled_from(COUNTER_KINDS))
        payload = well_formed("hub", kind, counter=draw(st.integers(31, 999)))
        return "hub", kind, payload, frozenset({"unknown_counter"}), False
    if choice == 4:  # a caller box commands another counter
        kind = draw(st.sampled_from(COUNTER_KINDS))
        device = f"caller-{other_counter:02d}"
        return device, kind, well_formed(device, kind, counter=3), frozenset({"forbidden"}), True
    if choice == 5:  # a device sends a kind its role may not
        device = draw(
            st.sampled_from(["kiosk-1", "kiosk-3", "caller-07", "tv-lobby-1", "tv-canteen-2"])
        )
        role = device.split("-")[0].replace("tv", "display")
        kind = draw(st.sampled_from([k for k in KINDS if role not in COMMAND_ROLES[k]]))
        return device, kind, well_formed(device, kind), frozenset({"forbidden"}), True
    if choice == 6:  # not a device of this site
        device = draw(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True))
        if device == "hub" or device.startswith(("kiosk-", "caller-", "tv-")):
            device = "ghost-" + device[:20]
        kind = draw(st.sampled_from(KINDS))
        return device, kind, well_formed(device, kind), frozenset({"forbidden"}), True
    if choice == 7:  # a kiosk asks for a service it does not offer, or an unknown one
        service = draw(st.sampled_from(["nib", "paspor", "haji", "tanah"]) | UNKNOWN_CODES)
        return (
            "kiosk-3",
            "issue",
            command("kiosk-3", "issue", service=service),
            frozenset({"forbidden"}),
            True,
        )
    if choice == 8:  # a closed service, and services the inventory does not have
        device = draw(st.sampled_from(["kiosk-1", "hub"]))
        if draw(st.booleans()):
            return (
                device,
                "issue",
                command(device, "issue", service="haji"),
                frozenset({"service_closed"}),
                False,
            )
        code = "forbidden" if device == "kiosk-1" else "unknown_service"
        payload = command(device, "issue", service=draw(UNKNOWN_CODES))
        return device, "issue", payload, frozenset({code}), code == "forbidden"
    if choice == 9:  # tickets that do not exist
        device = draw(st.sampled_from(["kiosk-3", "hub"]))
        kind = draw(st.sampled_from(["printed", "void"]))
        ticket_id = draw(st.integers(1000, 2**70) | st.integers(-(2**70), 0))
        return (
            device,
            kind,
            command(device, kind, ticket_id=ticket_id),
            frozenset({"unknown_ticket"}),
            False,
        )
    if choice == 10:  # void what cannot be voided
        label = draw(st.sampled_from(["A001", "A002", "A003"]))
        return (
            "kiosk-3",
            "void",
            command("kiosk-3", "void", ticket_id=t[label]["id"]),
            frozenset({"bad_state"}),
            False,
        )
    if choice == 11:  # void another kiosk's ticket
        label = draw(st.sampled_from(sorted(t)))
        return (
            "kiosk-1",
            "void",
            command("kiosk-1", "void", ticket_id=t[label]["id"]),
            frozenset({"forbidden"}),
            False,
        )
    if choice == 12:  # no priority to revoke; no such ticket
        ticket_id = draw(st.sampled_from([x["id"] for x in t.values()]) | st.integers(1000, 10**9))
        payload = command("hub", "revoke_priority", ticket_id=ticket_id, by="supervisor")
        return "hub", "revoke_priority", payload, frozenset({"bad_state", "unknown_ticket"}), False
    if choice == 13:  # no alert is open
        payload = command("hub", "ack_alert", alert_id=draw(UNKNOWN_CODES), by="s")
        return "hub", "ack_alert", payload, frozenset({"bad_state"}), False
    if choice == 14:  # services the inventory does not have
        kind = draw(st.sampled_from(["open_service", "close_service"]))
        payload = command("hub", kind, service=draw(UNKNOWN_CODES), by="x")
        return "hub", kind, payload, frozenset({"unknown_service"}), False
    if choice == 15:  # a survey for a ticket not served, or no ticket at all
        token = draw(
            st.sampled_from([t[x]["token"] for x in ("A002", "B001", "H001", "E001")])
            | st.from_regex(r"[A-Za-z0-9_-]{16,64}", fullmatch=True)
        )
        payload = command(
            "hub",
            "survey",
            token=token,
            scores=draw(st.lists(st.integers(1, 4), min_size=9, max_size=9)),
        )
        return "hub", "survey", payload, frozenset({"bad_state", "unknown_ticket"}), False
    if choice == 16:  # a counter given services the inventory does not have, or one twice
        services = draw(
            st.sampled_from([["ktp", "ktp"], ["kk", "kk", "ktp"]])
            | st.lists(UNKNOWN_CODES, min_size=1, max_size=3).map(lambda x: ["ktp", *x])
        )
        codes = "invalid" if len(set(services)) < len(services) else "unknown_service"
        payload = command("hub", "assign_counter", counter=3, services=services, by="x")
        return "hub", "assign_counter", payload, frozenset({codes, "unknown_service"}), False
    if choice == 17:  # limits of a service the inventory does not have
        payload = command(
            "hub", "service_limits", service=draw(UNKNOWN_CODES), daily_quota=5, by="x"
        )
        return "hub", "service_limits", payload, frozenset({"unknown_service"}), False
    if choice == 18:  # the sound of a zone the inventory does not have
        payload = command(
            "hub", "zone_sound", zone=draw(UNKNOWN_CODES), speech=True, volume=1.0, by="x"
        )
        return "hub", "zone_sound", payload, frozenset({"unknown_zone"}), False
    # a kiosk is no rating pad
    return "kiosk-3", "rate", well_formed("kiosk-3", "rate", 3), frozenset({"forbidden"}), True


WRONG_TYPES = st.sampled_from(
    ["3", "1", 3.0, 1.5, True, False, [], [1], {}, {"a": 1}, "", "🙂", -0.0, 10**30]
)
FIELD_TYPES = {  # JSON type each field takes; a value of another JSON type is wrong
    "request_id": str, "device": str, "service": str, "officer": str, "ticket": str,
    "token": str, "by": str, "alert_id": str, "reason": str, "lang": str, "priority": str,
    "cancels": str, "reply_to": str, "comment": str,
    "counter": int, "ticket_id": int, "score": int, "scores": list,
    "services": list, "daily_quota": int, "cutoff": str, "zone": str, "speech": bool,
    "volume": float, "number_reading": str,
    "sent_at": float, "expires_at": float,
}  # fmt: skip


def wrong_for(kind: type, value: Any) -> bool:
    """True if `value` is not of the JSON type `kind` (an int is a float in JSON)."""
    if kind is bool:
        return not isinstance(value, bool)
    if kind is float:
        return isinstance(value, bool) or not isinstance(value, int | float)
    if kind is int:
        return isinstance(value, bool) or not isinstance(value, int)
    return not isinstance(value, kind) or isinstance(value, bool)


@st.composite
def spoiled(
    draw: Any, device: str, kind: str, data: dict[str, Any]
) -> tuple[str, str, bytes, str, str]:
    """(device, kind, payload, fault, code): the command with one fault the hub must catch."""
    data = dict(data)
    faults = ["version", "extra", "wrong_type", "missing", "mismatch", "stale", "expired",
              "request_id", "nan", "huge", "unknown_kind", "forbidden_device", "reply_to",
              "surrogate"]  # fmt: skip
    if m.COMMANDS[kind].fate_report:  # a ticket's fate is applied however late: age no fault
        faults = [f for f in faults if f not in ("stale", "expired", "reply_to")]
    fault = draw(st.sampled_from(faults))
    code = "invalid"
    if fault == "version":
        value = draw(st.sampled_from([None, 0, 2, -1, 99, "1", "v1", True, 1.0, [1], {"v": 1}]))
        if value is None:
            del data["v"]
        else:
            data["v"] = value
        code = "unsupported_version"
    elif fault == "extra":
        data["x_" + draw(st.from_regex(r"[a-z_]{1,12}", fullmatch=True))] = draw(WRONG_TYPES)
    elif fault == "wrong_type":
        name = draw(st.sampled_from(sorted(k for k in data if k in FIELD_TYPES)))
        data[name] = draw(WRONG_TYPES.filter(lambda v: wrong_for(FIELD_TYPES[name], v)))
    elif fault == "missing":
        optional = ("v", "reason", "lang", "priority", "comment", "cutoff", "number_reading")
        required = [k for k in data if k not in optional]
        if kind == "open":
            required.remove("officer")
        del data[draw(st.sampled_from(sorted(required)))]
    elif fault == "mismatch":
        data["device"] = draw(
            st.sampled_from(["kiosk-2", "caller-09", "tv-lobby-1", "hub"]).filter(
                lambda d: d != device
            )
        )
        code = "device_mismatch"
    elif fault == "stale":
        data["sent_at"] = time.time() - draw(st.floats(11, 1e7))
        code = "stale"
    elif fault == "expired":
        data["expires_at"] = time.time() - draw(st.floats(0.5, 1e7))
        code = "stale"
    elif fault == "request_id":
        data["request_id"] = draw(
            st.text(max_size=7)
            | st.text(min_size=65, max_size=300)
            | st.just("bad id with spaces")
            | WRONG_TYPES
        )
    elif fault == "nan":
        name = draw(
            st.sampled_from(
                sorted(
                    {"sent_at", "expires_at"}
                    | ({"counter", "ticket_id", "score", "daily_quota", "volume"} & set(data))
                )
            )
        )
        data[name] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
        code = "bad_json"
    elif fault == "huge":
        name = draw(
            st.sampled_from([*sorted(k for k in data if FIELD_TYPES.get(k) is str), "x_pad"])
        )
        char, width = draw(st.sampled_from([("x", 1), ("é", 6), ("🙂", 12)]))  # bytes, escaped
        data[name] = char * draw(st.integers(1001, 60_000 // width))  # the broker takes 64 KiB
    elif fault == "surrogate":  # an escaped lone surrogate: JSON's grammar allows it
        name = draw(st.sampled_from(sorted(k for k in data if FIELD_TYPES.get(k) is str)))
        data[name] = "\ud800" + str(data[name])
    elif fault == "unknown_kind":
        kind = draw(
            st.from_regex(r"[a-z_]{1,20}", fullmatch=True).filter(lambda k: k not in m.COMMANDS)
        )
        code = "unknown_kind"
    elif fault == "forbidden_device":
        device = draw(st.sampled_from(["tv-lobby-2", "tv-entrance", "ghost-1", "kiosk9"]))
        data["device"] = device
        code = "forbidden"
    else:  # a reply_to naming another device: answered on the sender's own topic all the same
        data["reply_to"] = "mpp/v1/elsewhere/reply/caller-01"
        data["sent_at"] = time.time() - 3600
        code = "stale"
    escaped = fault == "surrogate" or draw(st.booleans())
    payload = json.dumps(data, ensure_ascii=escaped).encode()
    return device, kind, payload, fault, "too_large" if len(payload) > MAX else code


TOPIC_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/+#"),
    min_size=1,
    max_size=30,
)


@st.composite
def garbage(draw: Any) -> tuple[str, str, bytes, str, str]:
    """Bytes that are not a command at all, on any command topic."""
    device = draw(st.sampled_from(["kiosk-1", "caller-03", "hub", "tv-lobby-1"]) | TOPIC_TEXT)
    kind = draw(st.sampled_from(KINDS) | TOPIC_TEXT)
    shape = draw(st.integers(0, 6))
    code = "bad_json"
    if shape == 0:
        payload = draw(st.binary(max_size=300))
        try:
            parsed = json.loads(payload)
            if isinstance(parsed, dict):
                payload = b"[" + payload + b"]"
        except (ValueError, RecursionError):
            pass
    elif shape == 1:  # JSON, but not an object
        payload = json.dumps(
            draw(
                st.none()
                | st.booleans()
                | st.integers()
                | st.text(max_size=50)
                | st.lists(st.integers(), max_size=5)
            )
        ).encode()
    elif shape == 2:  # a command cut short
        whole = json.dumps(command("kiosk-3", "issue", service="ktp")).encode()
        payload = whole[: draw(st.integers(0, len(whole) - 1))]
    elif shape == 3:  # not UTF-8
        payload = (
            b'{"v": 1, "device": "'
            + draw(st.sampled_from([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80"]))
            + b'"}'
        )
    elif shape == 4:  # nested deeper than any parser's stack
        depth = draw(st.integers(2000, MAX // 2 - 10))
        payload = b"[" * depth + b"]" * depth
    elif shape == 5:  # too large
        payload = b'{"v": 1, "pad": "' + b"x" * draw(st.integers(MAX, 3 * MAX)) + b'"}'
        code = "too_large"
    else:  # an empty payload
        payload = b""
    return device, kind, payload, f"garbage{shape}", code


@st.composite
def fuzz_case(draw: Any, s: Seeded) -> Case:
    """One payload: garbage, a refused command, a valid command with one fault, or a replay."""
    family = draw(
        st.sampled_from(["garbage", "refused", "refused", "spoiled", "spoiled", "replay"])
    )
    if family == "garbage":
        device, kind, payload, why, code = draw(garbage())
        return Case(device, kind, payload, why, frozenset({code}))
    if family == "replay":  # a request applied earlier, again, in any order; maybe altered
        device, kind, data, reply = draw(st.sampled_from(s.applied))
        data = dict(data)
        if device == "kiosk-3" and kind == "issue" and draw(st.booleans()):
            data["service"] = "bank"  # the request id decides, not the content
        return Case(device, kind, json.dumps(data).encode(), "replay", replay_of=reply)
    if family == "refused":
        device, kind, data, codes, early = draw(refused_command(s))
        if draw(st.booleans()):
            return Case(device, kind, json.dumps(data).encode(), "refused", codes)
    else:
        device, kind, data = draw(valid_command(s))
        codes, early = frozenset(), False
    device, kind, payload, fault, code = draw(spoiled(device, kind, data))
    # the hub names the earliest fault it meets
    if codes and (STAGE["forbidden"] if early else 9) < STAGE[code]:
        return Case(device, kind, payload, fault, codes)
    return Case(device, kind, payload, fault, frozenset({code}))


@pytest.mark.parametrize("kind", KINDS)
def test_the_fuzzer_knows_a_well_formed_payload_of_every_command(kind: str) -> None:
    """A new command kind the fuzzer cannot build is a gap in the fuzzing, not a pass."""
    assert m.decode(m.COMMANDS[kind], well_formed("hub", kind)).kind == kind


# -- the test ---------------------------------------------------------------------------------
@pytest.mark.chaos
@pytest.mark.slow
def test_fuzzed_commands_change_nothing(broker, tmp_path: Path) -> None:
    """Invariant: every generated payload (garbage, wrong types, huge strings, unknown
    versions, kinds, devices, counters, services and tickets, stale or refused commands,
    replayed and out-of-order request ids) gets an answer on its device's reply topic: an error
    naming its fault, or for a replay of an applied request that request's first answer. The hub
    process never dies; afterwards every table of its database and every retained state topic
    are exactly as before (the request log only gains the refusals it answered), and the next
    real ticket continues the numbering."""
    db = tmp_path / "hub.sqlite"
    site_file = write_site(tmp_path / "site.toml", broker.port, always_open=True, database=db)
    site: Site = parse_site(site_file.read_text(encoding="utf-8"), str(site_file))
    hub = HubProcess(site_file, tmp_path / "hub.log").start()
    tap = CommandTap(site).start()
    sent: Counter[str] = Counter()
    refusals: dict[str, str] = {}  # request id -> code, of refusals the hub may log
    try:
        wait_hub(tap)
        seeded = seed(tap)
        # The seed leaves citizens waiting where no counter is open: the hub's next tick raises
        # its "no counter open" alerts (time-driven, not the fuzzing's doing) before the snapshot.
        assert wait_until(lambda: any("/alert/nocounter" in t for t in retained_dump(site)), 15)
        time.sleep(1.0)  # let the retained state settle
        before_db, before_retained = db_dump(db), retained_dump(site)

        @settings(
            max_examples=math.ceil(PAYLOADS / BATCH),
            phases=[Phase.generate],
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(st.lists(fuzz_case(seeded), min_size=BATCH, max_size=BATCH))
        def fuzz(batch: list[Case]) -> None:
            pending = {tap.send(c.device, c.kind, c.payload): c for c in batch}
            answers = tap.wait(pending, ANSWER_TIMEOUT_S)
            assert hub.alive(), "the hub process died"
            for correlation, case in pending.items():
                answer = answers.get(correlation)
                assert answer is not None, f"no answer to {case.why} on {case.device}/{case.kind}"
                assert answer.topic == tap.topics.reply(case.device), answer.topic
                reply = answer.reply
                sent[case.why] += 1
                if case.replay_of is not None:
                    first = case.replay_of.model_dump(exclude={"hub_time"})
                    assert reply.model_dump(exclude={"hub_time"}) == first, case
                    continue
                assert not reply.ok, f"{case.why} on {case.device}/{case.kind} was APPLIED"
                assert reply.error is not None and reply.error.code in m.ERROR_CODES
                assert reply.error.code != "internal", (case, reply.error)
                if case.codes:
                    assert reply.error.code in case.codes, (case, reply.error)
                if reply.request_id:
                    refusals[reply.request_id] = reply.error.code

        fuzz()
        time.sleep(1.0)  # anything the hub would publish has gone out
        after_retained = retained_dump(site)
        after_db = db_dump(db)
        assert hub.alive(), "the hub process died"
    finally:
        tap.stop()
        code = hub.stop()
    assert code == 0
    log = hub.log_text()
    assert "Traceback" not in log, log[-3000:]

    total = sum(sent.values())
    assert total >= PAYLOADS, total
    assert after_retained == before_retained, "a refused payload changed what the screens show"
    new_requests = set(after_db.pop("requests")) - set(before_db.pop("requests"))
    assert after_db == before_db, "a refused payload changed the database"
    for device, request_id, kind, _at, raw in new_requests:
        logged = m.decode(m.Reply, raw)
        assert not logged.ok and refusals.get(request_id) == logged.error.code, (device, kind, raw)  # type: ignore[union-attr]
    figure("hub fuzzing: payloads", total, "payloads", ">= 10000")
    figure("hub fuzzing: kinds of fault", len(sent), "kinds")
    figure("hub fuzzing: replays answered with the first answer", sent["replay"], "payloads")
    figure("hub fuzzing: unanswered, applied, crashes or state changes", 0, "payloads", "0")


# Payloads fuzzing found mishandled (each was applied, crashed the worker, or answered
# `internal`), kept as fixed examples: (device, kind, payload, code).
FOUND = [
    ("caller-01", "open", b'{"v":1,"request_id":"found-0001","device":"caller-01","counter":true}', "invalid"),
    ("caller-01", "open", b'{"v":1,"request_id":"found-0002","device":"caller-01","counter":"1"}', "invalid"),
    ("caller-01", "open", b'{"v":1,"request_id":"found-0003","device":"caller-01","counter":1.0}', "invalid"),
    ("caller-01", "open", b'{"v":true,"request_id":"found-0004","device":"caller-01","counter":1}', "unsupported_version"),
    ("caller-01", "open", b'{"v":1.0,"request_id":"found-0005","device":"caller-01","counter":1}', "unsupported_version"),
    ("caller-01", "open", b'{"v":1,"device":"caller-01","counter":1}', "invalid"),
    ("caller-01", "open", b'{"v":1,"request_id":"found-0006","device":"caller-01","counter":1,"expires_at":Infinity}', "bad_json"),
    ("caller-01", "open", b'{"v":1,"request_id":"found-0007","device":"caller-01","counter":1,"sent_at":NaN}', "bad_json"),
    ("kiosk-3", "issue", b"[" * 6000 + b"]" * 6000, "bad_json"),
    ("kiosk-3", "issue", b'{"v":1,"request_id":"found-0008","device":"kiosk-3","service":"\xed\xa0\x80"}', "bad_json"),
    ("kiosk-3", "issue", b'{"v":1,"request_id":"\\ud800found-0009","device":"kiosk-3","service":"ktp"}', "invalid"),
    ("caller-01", "next", b'{"v":1,"request_id":"found-0010","device":"caller-01","counter":1}', "counter_closed"),
]  # fmt: skip


@pytest.mark.chaos
def test_what_fuzzing_found_stays_fixed(hub, site: Site) -> None:
    """Invariant: each payload fuzzing once found mishandled gets its specific error; the hub's
    worker lives on; a refusal publishes no new state (the sequence does not move)."""
    tap = CommandTap(site).start()
    try:
        wait_hub(tap)
        seq, retained = hub.seq, dict(hub.retained)
        for device, kind, payload, code in FOUND:
            answer = tap.ask(device, kind, payload, timeout=5)
            assert answer is not None, payload[:80]
            assert answer.reply.error is not None and answer.reply.error.code == code, (
                payload[:80],
                answer.reply.error,
            )
        time.sleep(0.3)
        assert (hub.seq, hub.retained) == (seq, retained)
        opened = tap.ask(
            "caller-01", "open", json.dumps(command("caller-01", "open", counter=1)).encode()
        )
        assert opened is not None and opened.reply.ok and hub.alive()
    finally:
        tap.stop()
