"""The web caller for counters without a caller box: the same commands as the hardware box
(NEXT, RECALL, SKIP, TRANSFER, FINISH, OPEN/CLOSE, a break and its end, call back a no-show),
sent through the hub's
command path over MQTT as device 'web'. Each form carries a request id, so a double click (or
a replayed form) applies once."""

from __future__ import annotations

import time
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup

from protocol import messages as m
from protocol.texts import break_text
from web import base, live
from web.dashboard import counter_row, service_row
from web.hub_link import WEB_DEVICE
from web.live import Event, sse
from web.security import requires

bp = Blueprint("caller", __name__)
ACTIONS = (
    "next",
    "recall",
    "skip",
    "finish",
    "transfer",
    "open",
    "close",
    "call_skipped",
    "break",
    "end_break",
)
MAX_BREAK_MINUTES = 480


def _counter(number: int) -> int:
    if number not in base.site().counters:
        abort(404)
    return number


def _panel(number: int) -> str:
    service = base.hub()
    row = counter_row(service, number)
    services = [service_row(service, code) for code in row.services]
    return render_template("_caller_panel.html", row=row, services=services)


@bp.get("/caller")
@requires("officer")
def index() -> Any:
    """Pick a counter."""
    service = base.hub()
    return render_template(
        "caller_pick.html", rows=[counter_row(service, n) for n in service.site.counters]
    )


@bp.get("/caller/<int:number>")
@requires("officer")
def counter(number: int) -> Any:
    """The caller of one counter."""
    _counter(number)
    spec = base.site().counters[number]
    return render_template(
        "caller.html",
        number=number,
        panel=Markup(_panel(number)),
        transfer_to=[(code, base.site().services[code]) for code in spec.transfer_to],
        reasons=[(reason, break_text(reason, base.lang())) for reason in m.BREAK_REASONS],
        request_id=m.new_request_id(),
    )


def _command(action: str, number: int, officer: str) -> m.Command:
    common = {"device": WEB_DEVICE, "counter": number, "request_id": base.form_request_id()}
    match action:
        case "next":
            return m.CallNext(**common)
        case "recall":
            return m.Recall(**common)
        case "skip":
            return m.Skip(**common)
        case "finish":
            return m.Finish(**common)
        case "transfer":
            return m.Transfer(service=request.form.get("service", ""), **common)
        case "open":
            return m.OpenCounter(officer=officer[:60], **common)
        case "close":
            return m.CloseCounter(**common)
        case "call_skipped":
            return m.CallSkipped(ticket=request.form.get("ticket", ""), **common)
        case "break":
            reason = request.form.get("reason", "")
            if reason not in m.BREAK_REASONS:
                raise base.FormError(base.t("caller.bad_reason"))
            return m.StartBreak(reason=reason, minutes=_minutes(), **common)  # type: ignore[arg-type]
        case "end_break":
            return m.EndBreak(**common)
    abort(404)


def _minutes() -> int | None:
    """The expected length of a break from the form: empty for the inventory's, else 1..480."""
    text = request.form.get("minutes", "").strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_BREAK_MINUTES:
        raise base.FormError(base.t("caller.bad_minutes", most=MAX_BREAK_MINUTES))
    return int(text)


@bp.post("/caller/<int:number>/<action>")
@requires("officer")
def act(number: int, action: str) -> Any:
    """Apply one button press; the answer comes back as a message on the counter page."""
    _counter(number)
    if action not in ACTIONS:
        abort(404)
    user = base.current_user()
    assert user is not None
    try:
        command = _command(action, number, user.name)
    except base.FormError as exc:
        base.flash_message("error", str(exc))
        return redirect(url_for("caller.counter", number=number))
    except ValueError:
        abort(400)
    reply = base.submit(command, user.username)
    if not reply.ok:
        base.flash_message("error", base.reply_text(reply))
    else:
        result = m.CounterResult.model_validate(reply.result)
        _published(number, result.counter.seq)
        if result.call is not None:
            base.flash_message("ok", base.t("caller.called", ticket=result.call.ticket))
        else:
            base.flash_message("ok", base.t("caller.done", what=base.t(f"caller.{action}")))
    return redirect(url_for("caller.counter", number=number))


def _published(number: int, seq: int, timeout: float = 1.0) -> None:
    """Wait (bounded) until the hub has published the counter's new state, so the page the
    officer is sent back to already shows the result of the press."""
    service = base.hub()
    topic = service.bus.topics.counter_state(number)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = service.retained.get(topic)
        if isinstance(state, m.CounterState) and state.seq >= seq:
            return
        time.sleep(0.005)


@bp.get("/caller/<int:number>/events")
@requires("officer")
def events(number: int) -> Any:
    """Server-sent events: the counter's panel whenever it or its queue changes."""
    _counter(number)

    def update(batch: list[Event]) -> list[str]:
        services = set(counter_row(base.hub(), number).services)
        for _kind, message in batch:
            if (isinstance(message, m.CounterState) and message.counter == number) or (
                isinstance(message, m.ServiceState) and message.service in services
            ):
                return [sse("panel", {"html": _panel(number)})]
        return []

    return live.response(
        base.feed(),
        lambda: [sse("panel", {"html": _panel(number)})],
        update,
        current_app.config,
    )
