"""Generates docs/protocol.md from the topic table and the message schemas (never by hand).

python -m protocol.docs > docs/protocol.md
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from protocol import messages as m
from protocol.topics import COMMAND_ROLES, TOPICS, Topics

SITE = "mpp-banjarbaru"

EXAMPLES: dict[str, m.Message] = {
    "command": m.CallNext(request_id="4f1c2a9e8b7d4c3a", device="caller-03", counter=3),
    "reply": m.Reply(
        request_id="4f1c2a9e8b7d4c3a",
        ok=True,
        hub_time=1795420862.5,
        result={
            "call": {
                "ticket": "A012",
                "service": "ktp",
                "counter": 3,
                "call_seq": 41,
                "called_at": 1795420862.5,
            }
        },
    ),
    "counter_state": m.CounterState(
        seq=812,
        counter=3,
        open=True,
        officer="Siti",
        call_seq=41,
        ticket="A012",
        ticket_id=1207,
        service="ktp",
        called_at=1795420862.5,
        waiting=5,
        served_today=40,
        services=("ktp", "kk"),
    ),
    "service_state": m.ServiceState(
        seq=812,
        service="ktp",
        open=True,
        waiting=5,
        last_issued="A017",
        now_serving=("A012", "A011"),
        est_wait_s=600,
        longest_wait_s=1260,
        quota_left=133,
        open_counters=3,
        daily_quota=150,
        cutoff="14:00",
    ),
    "service_queue": m.ServiceQueue(
        seq=812, service="ktp", order=(1290, 1207, 1301), est_wait_s=(0, 200, 400)
    ),
    "site_state": m.SiteState(
        seq=812,
        day="2026-11-23",
        now=1795420862.6,
        config_version="f6ca5e03c790",
        issued=412,
        served=377,
        waiting=31,
        recent_calls=(
            m.CallInfo(
                ticket="A012", service="ktp", counter=3, call_seq=41, called_at=1795420862.5
            ),
        ),
    ),
    "featured": m.FeaturedState(
        seq=813,
        zone="entrance",
        slides=(
            m.FeaturedSlide(
                order=0,
                caption=m.SlideCaption(
                    id="Kerupuk ikan haruan khas Banjar", en="Banjar fish crackers"
                ),
                image_url="http://192.168.10.2:8080/media/featured/"
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.png",
                image_sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            ),
        ),
    ),
    "zone_sound": m.ZoneSound(
        seq=814, zone="canteen", speech=True, volume=0.7, number_reading="words"
    ),
    "status": m.DeviceStatus(
        device="kiosk-1",
        role="kiosk",
        online=True,
        sw="0.1.0",
        boot_id="a1b2c3d4e5f6",
        since=1795410000.0,
        health=m.Health(printer="ok"),
    ),
    "events": m.EventBatch(
        site=SITE,
        after=48211,
        last=48212,
        head=48230,
        sent_at=1795420863.1,
        events=(
            m.OutboxEvent(
                id=48212,
                at=1795420862.5,
                kind="called",
                ticket=1207,
                counter=3,
                service="ktp",
                officer="Siti",
                detail="41",
            ),
        ),
    ),
    "catalog": m.SiteCatalog(
        site=SITE,
        name="MPP Kota Banjarbaru",
        timezone="Asia/Makassar",
        version="f6ca5e03c790",
        agencies={"disdukcapil": "Disdukcapil"},
        services={
            "ktp": m.CatalogService(
                name=m.Text(id="KTP Elektronik", en="Electronic ID card"),
                agency="disdukcapil",
                time_class_s=10800,
            )
        },
        counters=30,
    ),
    "ack": m.EventAck(site=SITE, acked=48212, at=1795420863.4),
    "queue_view": m.QueueView(
        site=SITE,
        service="ktp",
        seq=8123,
        at=1795420862.9,
        open=True,
        waiting=(48105, 48111, 48120),
        est_wait_s=(0, 480, 960),
        called=(m.CalledTicket(ticket=48101, counter=3, call_seq=57),),
    ),
    "booking_offer": m.BookingOffer(
        site=SITE,
        version="3f9a1c2b7d10",
        days_ahead=7,
        check_in_before_min=30,
        check_in_after_min=15,
        retention_days=90,
        services={
            "ktp": m.OfferService(
                requirements=m.TextLines(id=("Fotokopi Kartu Keluarga",)),
                bring=m.TextLines(id=("KK asli",)),
                cost=m.Text(id="Gratis", en="Free"),
                sessions=(
                    m.OfferSession(
                        days=("mon", "tue"), start="08:00", end="10:00", online_quota=10
                    ),
                ),
            )
        },
    ),
    "down_messages": m.DownBatch(
        site=SITE,
        after=41,
        last=42,
        messages=(
            m.DownMessage(
                id=42,
                at=1795420800.0,
                body=m.BookingMade(
                    code="K7P3M9QX", service="ktp", day="2026-12-08", start="08:00", end="10:00"
                ),
            ),
        ),
    ),
    "down_ack": m.DownAck(site=SITE, applied=42, at=1795420801.2),
    "alert": m.Alert(
        id="complaints-3-1795420900-5c2b6a41",
        kind="consecutive_complaints",
        raised_at=1795420900.0,
        counter=3,
        officer="Siti",
        text=m.Text(
            id="Loket 3 (Siti): 3 penilaian 'Tidak puas' berturut-turut",
            en="Counter 3 (Siti): 3 'very dissatisfied' ratings in a row",
        ),
    ),
}


def _type(annotation: Any) -> str:
    """A reader's name for a field type: 'str', 'int | null', "'id' | 'en'"."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin is typing.Literal:
        return " or ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type(a) for a in args)
    if origin in (tuple, list):
        return f"list of {_type(args[0])}" if args else "list"
    if origin is dict:
        return "object"
    return getattr(annotation, "__name__", str(annotation))


def _fields(model: type[m.Part]) -> str:
    common = (
        m.Command.model_fields if issubclass(model, m.Command) and model is not m.Command else {}
    )
    parts = []
    for name, info in model.model_fields.items():
        if name in common or name == "v":
            continue
        required = " (required)" if info.is_required() else ""
        parts.append(f"`{name}`: {_type(info.annotation)}{required}")
    return "; ".join(parts) or "(no extra fields)"


def _json(message: m.Message) -> str:
    return json.dumps(json.loads(m.encode(message)), ensure_ascii=False)


def render() -> str:
    """The whole of docs/protocol.md."""
    t = Topics(SITE)
    out: list[str] = []
    add = out.append
    add("# MPP protocol (v1)\n")
    add("<!-- Generated: `python -m protocol.docs > docs/protocol.md`; edit protocol/ -->\n")
    add(
        "All topics start with `mpp/v1/{site}/`. Payloads are UTF-8 JSON objects with `v: 1`, at "
        f"most {m.MAX_PAYLOAD_BYTES} bytes; unknown fields are errors. Times are Unix epoch "
        "seconds (UTC). Device id = MQTT client id = broker username.\n"
    )
    add("## Topics\n")
    add("| topic | from | to | QoS | retained | payload |")
    add("|---|---|---|---|---|---|")
    for spec in TOPICS:
        add(
            f"| `mpp/v1/{{site}}/{spec.template}` | {', '.join(spec.publishers)} | "
            f"{', '.join(spec.subscribers)} | {spec.qos} | {'yes' if spec.retained else 'no'} | "
            f"`{spec.payload.__name__}` |"
        )
    add("")
    add(
        "`{device}` in `cmd`, `reply` and `device/.../status` is the sender's (or receiver's) own "
        "id: the broker ACL lets a device use only its own. The hub additionally checks from the "
        "inventory that the device's role may send the command kind, and that a caller box "
        "commands only its own counter.\n"
    )
    for spec in TOPICS:
        add(f"### `{spec.name}`: `mpp/v1/{{site}}/{spec.template}`\n")
        add(f"{spec.about}\n")
        add(f"Fields: {_fields(spec.payload)}.\n")
        add("Example:\n")
        add(f"    {_json(EXAMPLES[spec.name])}\n")
    add("## Commands\n")
    add(
        "Every command carries `request_id` (8-64 of `A-Za-z0-9_.:-`), `device`, and optionally "
        "`reply_to` (the reply topic) and `sent_at` (the sender's estimate of the hub clock). The "
        "hub applies each (device, request_id) once; a repeat gets the first reply again, also "
        "after a hub restart. Commands older than `hub.command_max_age_s` are refused as "
        "`stale` (a press queued while offline must not act minutes later), and so is one "
        "arriving after its `expires_at`; reports of a ticket's fate (`printed`, `void`) never "
        "are: the hub applies them once whenever they arrive. A device keeps its estimate of "
        "the hub's clock (from each reply's `hub_time`) against its steady clock; a `stale` "
        "refusal that reaches it while it still waits means that estimate was wrong (the hub's "
        "clock stepped, or the device has none yet), and it sends the command again at once "
        "with the clock the refusal taught it (same request id). A report refused with a code "
        "after which it may still succeed (`stale`, `clock_unsynced`, `storage_full`, "
        "`storage_error`, `internal`) is kept and sent again, never counted as delivered. "
        "A device waiting for a reply waits across a dropped "
        "connection (its MQTT client re-sends the command after reconnecting, and so does the "
        "device: applied once) until `expires_at` plus the time a reply needs, so it learns the "
        "outcome of every command the hub took. On MQTT 5 the sender "
        "also sets Response Topic, Correlation Data (= request id) and Message Expiry Interval; "
        "the hub answers to the Response Topic with the same Correlation Data. On MQTT 3.1.1 the "
        "payload fields alone carry the same information.\n"
    )
    add("| kind | roles | fields |")
    add("|---|---|---|")
    for kind, model in m.COMMANDS.items():
        add(f"| `{kind}` | {', '.join(COMMAND_ROLES[kind])} | {_fields(model)} |")
    add("")
    add("## Error codes (in `reply.error.code`)\n")
    add(
        "Every reply, `internal` included, carries its command's `request_id` (empty only when "
        "the payload held no well-formed one). A reply is sent only after what the command "
        "changed is committed to the hub's database; `storage_full` and `storage_error` mean "
        "nothing of it was stored: the same request (same `request_id`) may be sent again.\n"
    )
    add("| code | meaning |")
    add("|---|---|")
    for code, meaning in m.ERROR_CODES.items():
        add(f"| `{code}` | {meaning} |")
    add("")
    add("## Sequences\n")
    add(
        "- `seq` in every state payload is the hub's event sequence: it never decreases, also "
        "across hub restarts. A screen ignores a state whose `seq` is lower than the one it "
        "shows.\n"
        "- `call_seq` of a counter grows by one with every call (next, recall, call_skipped). A "
        "display announces a call exactly when it sees a `call_seq` higher than the last one it "
        "announced for that counter, and only if `called_at` is recent; a retained replay after a "
        "reconnect is shown but never spoken again, and the retained calls a display finds when "
        "it starts (made before it started) are shown, never spoken.\n"
        "- `featured`: every change of the featured products publishes each zone's with a "
        "higher `seq`; the hub republishes them on start and reconnect. A display takes one "
        "unless its `seq` is lower than the one it shows. Each slide has "
        f"{_fields(m.FeaturedSlide)}; `caption` has `id` (required) and `en`. A display "
        "downloads `image_url` over HTTP only if it starts with the inventory's `hub.media_url` "
        "(default `site.public_url`), within a time and size limit, checks it against "
        "`image_sha256` and keeps it by that hash; until it has the image it shows the caption "
        "on a plain panel. No slides: the screens show the inventory's `zones.<zone>.featured`.\n"
        "- `zone_sound`: published for every zone on start and reconnect and whenever staff "
        "change it (`zone_sound` command); until a display has one it speaks as the inventory's "
        "`zones.<zone>` says. A display takes one unless its `seq` is lower than the one it "
        "holds; `speech` false or `volume` 0 mutes calls (still shown), and `number_reading` "
        "applies from the next call.\n"
        "- Presence: each device publishes its `status` retained with `online: true` on connect; "
        "its MQTT last will publishes the same topic with `online: false`.\n"
    )
    add("## Breaks, pauses and service-level alerts\n")
    add(
        "- A break: the caller box (OPEN/CLOSE on an open counter, then the reason, NEXT "
        "confirms) or the web caller sends `break` with a `reason` "
        f"({', '.join(m.BREAK_REASONS)}) and optional `minutes`; unset, the inventory's "
        "`hub.break_minutes` for the reason gives the expected return, if any. The hub finishes "
        "the counter's current ticket; the counter state's `on_break` says why, since when and "
        "`until` when (the return time screens show). The next `next` (which then calls as "
        "usual), `end_break`, `open` or `close` ends it, and so does midnight. Events "
        "`break_started` (detail `reason[,minutes]`) and `break_ended` (detail "
        "`reason,seconds`) go to the event log and the region; reports sum them per day, "
        "officer and counter.\n"
        "- A pause: the inventory's `[pauses.ID]` (e.g. Friday 11:30-13:00, for the whole "
        "site or listed services). While it lasts `next` calls nobody from its services "
        "(refused with `paused` when all of a counter's services are paused), a service "
        "state carries `pause` (id, name, since, until) and `open` says whether kiosks still "
        "issue (`keep_issuing`; otherwise `issue` is refused with `paused` and the time "
        "service resumes), a counter whose services are all paused carries it too, and the "
        "site state lists the pauses in force. The hub records `pause_started` and "
        "`pause_ended` and republishes the states concerned with a new `seq` at both ends.\n"
        "- Estimates (`est_wait_s` of a service state, a confirmed ticket, the region's queue "
        "view) count the pauses ahead (`protocol.pauses.wait_estimate`, the one "
        "implementation) and only counters that serve now (open, not on a break: "
        "`serving_counters`). With none serving, a return time (`resumes_at`, the earliest "
        "`on_break.until`) starts the estimate; without one `est_wait_s` is absent (None): no "
        "counter serves the service now, and kiosks, tickets and pages say so instead of a "
        "time. A ticket issued during a pause carries `resumes_at`.\n"
        "- Service-level alerts (`alert` topic, retained; kinds "
        f"{', '.join(f'`{k}`' for k in m.CONDITION_ALERTS)}): a citizen waiting longer than "
        "the service's target (`services.X.wait_target_minutes`, else "
        "`alerts.wait_target_minutes`), citizens waiting with no counter open for their "
        "service, an open counter idle (not on a break) while its queue waits longer than "
        "`alerts.idle_minutes`, `alerts.quota_share` of a daily quota used before "
        "`alerts.quota_before`. Waits and idle spells are counted net of the pauses. Each is "
        "raised once when its condition becomes true (looked at within a second of any change "
        "and every few seconds), stored, and cleared when the condition ends (the retained "
        "topic emptied); `ack_alert` records who saw it and republishes it with `acked_by` and "
        "`acked_at` until then. A one-off alert (consecutive complaints) is cleared by its "
        "acknowledgement. Events `alert_raised`, `alert_acked`, `alert_cleared`.\n"
    )
    add("## Try it with mosquitto_pub\n")
    add("Watch everything of the site, then call the next ticket at counter 3 as caller-03:\n")
    add(f"    mosquitto_sub -v -t 'mpp/v1/{SITE}/#'")
    command = _json(m.CallNext(request_id="manual-0001", device="caller-03", counter=3))
    add(f"    mosquitto_pub -q 1 -t '{t.command('caller-03', 'next')}' \\")
    add(f'        -m \'{command[:-1]}, "reply_to": "{t.reply("caller-03")}"}}\'\n')
    add(
        "The reply arrives on `"
        + t.reply("caller-03")
        + "`; the counter's new state on `"
        + t.counter_state(3)
        + "` (retained).\n"
    )
    return "\n".join(out)


def main() -> None:
    """Print the document."""
    print(render(), end="")


def example(name: str) -> dict[str, Any]:
    """The example payload of a topic row, as a dict (used by tests)."""
    return json.loads(m.encode(EXAMPLES[name]))


if __name__ == "__main__":
    main()
