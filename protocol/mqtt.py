"""The one MQTT connection of a process (device or hub), on paho-mqtt 2.x.

It keeps the connection alive (capped back-off with per-client jitter), re-subscribes on
every connect, announces presence (retained status, last will = offline), lets one thread at a
time publish (paho is not fully thread safe), and offers `request()`: send a command,
wait for the hub's reply, raise a specific error on timeout, refusal or a missing broker.

    bus = Bus.for_device(site, "caller-03")
    bus.start()
    reply = bus.request(CallNext(device="caller-03", counter=3), timeout=2)

A device runs the connection on paho's thread (`start`). The hub runs it on its worker
(`start_polled`, then `poll` in its loop): the thread that reads a command applies it and
writes the new state to the socket itself, with no hand-over between threads on the way.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import random
import select
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import protocol
from protocol import messages as m
from protocol.errors import BadMessage, BrokerUnavailable, CommandRejected, RequestTimeout
from protocol.topics import Topics

log = logging.getLogger("mpp.mqtt")
EXPIRY_GRACE_S = 0.5
REPLY_MARGIN_S = 0.5  # a reply to a command the hub took at its deadline is still this late
RECONNECT_POLL_S = 0.05  # how often a waiting request looks for a reconnect to send again
# The hub sits next to the broker, and screens resync from what it republishes when it is
# back: after a broker restart it must be back before the devices (they back off 0.5-2 s).
HUB_MIN_DELAY_S, HUB_MAX_DELAY_S = 0.05, 0.25
POLLED_CONNECT_TIMEOUT_S = 1.0
MAX_READS_PER_POLL = 64  # packets read in one `poll` (the hub commits what came together)
MAX_RESTAMPS = 2  # a command refused as stale while its sender waits goes again, this often


def _no_delay(_client: Any, _userdata: Any, sock: Any) -> None:
    # Small MQTT packets must not wait for Nagle + delayed ACK (about 40 ms per hop).
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _readable(read: list[Any], timeout: float, write: list[Any] | None = None) -> list[Any]:
    """The sockets of `read` that are readable within `timeout` s (sooner if one of `write`
    becomes writable). poll(2), not select(): select() fails on descriptor numbers of 1024 and
    more, which a hub holding many web clients' connections reaches. A hang-up or error counts
    as readable (the read then finds out what happened)."""
    poller = select.poll()
    for sock in write or ():
        poller.register(sock, select.POLLOUT)
    for sock in read:  # a socket in both: registering again replaces its mask
        mask = select.POLLIN | (select.POLLOUT if write and sock in write else 0)
        poller.register(sock, mask)
    got = dict(poller.poll(max(0.0, timeout) * 1000))
    wanted = select.POLLIN | select.POLLHUP | select.POLLERR | select.POLLNVAL
    return [s for s in read if got.get(s.fileno(), 0) & wanted]


def _pending(sock: Any) -> bool:
    """True when a TLS socket holds decrypted bytes that select() cannot see."""
    pending = getattr(sock, "pending", None)
    return bool(pending and pending())


def _acked(info: paho.MQTTMessageInfo) -> bool:
    """True once the broker acknowledged; a message queued while offline is not (yet)."""
    try:
        return info.is_published()
    except (RuntimeError, ValueError):
        return False


@dataclass(frozen=True)
class Incoming:
    """A received message, with the MQTT 5 request/response properties when present."""

    topic: str
    payload: bytes
    retained: bool
    response_topic: str | None = None
    correlation: bytes | None = None


Handler = Callable[[Incoming], None]


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    reply: m.Reply | None = None
    lost: bool = False
    sent_at: float | None = None

    def restart(self, sent_at: float | None) -> None:
        """Wait afresh for the answer to the copy stamped `sent_at`."""
        self.sent_at = sent_at
        self.reply = None
        self.done.clear()


def _clock_refusal(pending: _Pending) -> bool:
    """True for a `stale` refusal of the copy the device is still waiting for."""
    reply = pending.reply
    return bool(reply and reply.error and reply.error.code == "stale")


class Bus:
    """A process's MQTT connection: presence, subscriptions, publishing and requests.

    Handlers run on the network thread (paho's, or the poller's in polled mode): they must
    return quickly (hand work to a queue).
    """

    def __init__(
        self,
        site_id: str,
        device: str,
        role: str,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        username: str | None = None,
        password: str | None = None,
        tls_ca: str | None = None,
        mqtt_version: int = 5,
        keepalive: int = 15,
        min_delay: float = 0.5,
        max_delay: float = 2.0,
        max_unacked: int = 200,
        presence: bool = True,
        root: str | None = None,
    ) -> None:
        self.topics = Topics(site_id, root) if root else Topics(site_id)
        self.presence = presence  # False: no status topic, no last will, no replies (region)
        self.device = device
        self.role = role
        self.host, self.port = host, port
        self.keepalive = keepalive
        self.v5 = mqtt_version == 5
        self.boot_id = uuid.uuid4().hex[:12]
        self.started_at = time.time()
        self.health = m.Health()
        self._hub_minus_steady: float | None = None  # hub clock - time.monotonic(), from replies
        self._handlers: list[tuple[str, int, Handler]] = []
        self._pending: dict[str, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._connected = threading.Event()
        self._stopping = False
        self._listeners: list[Callable[[bool], None]] = []
        self._connects = 0  # connections made so far: a waiting request re-sends after one
        # Polled mode: the poller holds it for every paho call; so does any other publisher.
        self._publish_lock = threading.RLock()
        self._polled = False
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._retry_at = 0.0
        self._network_thread: int | None = None
        self._unacked: dict[int, paho.MQTTMessageInfo] = {}
        self._ack_cv = threading.Condition()
        self._max_unacked = max_unacked

        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=device,
            protocol=paho.MQTTv5 if self.v5 else paho.MQTTv311,
            clean_session=None if self.v5 else True,
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        if tls_ca is not None:
            self._client.tls_set(ca_certs=tls_ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        # Jitter: every client backs off on its own schedule, so a fleet does not
        # reconnect in lockstep after a broker restart.
        self._min_delay = min_delay * random.uniform(0.5, 1.0)
        self._max_delay = max_delay * random.uniform(0.75, 1.25)
        self._retry_delay = self._min_delay
        self._client.reconnect_delay_set(min_delay=self._min_delay, max_delay=self._max_delay)
        self._client.max_inflight_messages_set(100)
        if presence:
            self._client.will_set(
                self.topics.status(device),
                m.encode(self._status(online=False)),
                qos=1,
                retain=True,
            )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish
        self._client.on_socket_open = _no_delay
        if presence:
            self.subscribe(self.topics.reply(device), self._on_reply)

    @classmethod
    def for_device(cls, site: Any, device: str, **kwargs: Any) -> Bus:
        """A bus for `device` of the inventory (role and broker address from `site`)."""
        role = device if device in ("hub", "web") else site.devices[device].role
        if role == "hub":
            kwargs.setdefault("min_delay", HUB_MIN_DELAY_S)
            kwargs.setdefault("max_delay", HUB_MAX_DELAY_S)
        broker = site.broker
        kwargs.setdefault("host", broker.host)
        kwargs.setdefault("port", broker.port)
        kwargs.setdefault("mqtt_version", broker.mqtt_version)
        kwargs.setdefault("keepalive", broker.keepalive_s)
        kwargs.setdefault("tls_ca", broker.ca_file if broker.tls else None)
        return cls(site.site.id, device, role, **kwargs)

    # -- lifecycle -------------------------------------------------------------------
    def start(self, wait: float | None = None) -> bool:
        """Connect in the background; with `wait`, block up to that long for the first connect."""
        self._client.connect_async(self.host, self.port, self.keepalive)
        self._client.loop_start()
        if wait is not None:
            return self._connected.wait(wait)
        return self._connected.is_set()

    def start_polled(self) -> None:
        """Run the connection on the caller's thread instead of paho's: that thread calls
        `poll` in its loop (handlers run inside `poll`); `wake` ends a waiting `poll` early."""
        self._polled = True
        # A connection attempt blocks the poller: to an unreachable host, not for long.
        self._client.connect_timeout = POLLED_CONNECT_TIMEOUT_S
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._client.connect_async(self.host, self.port, self.keepalive)

    def wake(self) -> None:
        """End a `poll` that waits (from any thread), e.g. because work arrived elsewhere."""
        if self._wake_w is not None:
            with contextlib.suppress(OSError):  # full: it is awake already; closed: stopping
                self._wake_w.send(b"!")

    def poll(self, timeout: float) -> None:
        """Polled mode: wait up to `timeout` s for the broker or `wake`; read what arrived
        (handlers run here), write what is queued, keep the connection alive or reconnect."""
        client = self._client
        sock = client.socket()
        if sock is None:
            self._reconnect_when_due()
            sock = client.socket()
        if sock is None:
            wait = 0.0 if self._stopping else max(0.0, self._retry_at - time.monotonic())
            self._wait_for_wake(min(timeout, wait))
            return
        wlist = [sock] if client.want_write() else []
        try:
            readable = _readable([sock, self._wake_r], timeout, wlist)
        except (OSError, ValueError):  # closed meanwhile: let paho find out below
            readable = [sock]
        if self._wake_r in readable:
            self._drain_wake()
        with self._publish_lock:
            if sock in readable or _pending(sock):
                for _ in range(MAX_READS_PER_POLL):
                    if client.loop_read() != paho.MQTT_ERR_SUCCESS or client.socket() is None:
                        break
                    try:
                        more = _pending(sock) or bool(_readable([sock], 0))
                    except (OSError, ValueError):  # closed by the read
                        more = False
                    if not more:
                        break
            if client.socket() is not None and client.want_write():
                client.loop_write()
            if client.socket() is not None:
                client.loop_misc()

    def _reconnect_when_due(self) -> None:
        if self._stopping or time.monotonic() < self._retry_at:
            return
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._max_delay, self._retry_delay * 2)
        try:
            with self._publish_lock:
                self._client.reconnect()
        except (OSError, ssl.SSLError) as exc:
            log.debug("broker not reachable", extra={"device": self.device, "error": str(exc)})

    def _wait_for_wake(self, timeout: float) -> None:
        assert self._wake_r is not None
        with contextlib.suppress(OSError, ValueError):  # closed by stop() meanwhile
            if timeout > 0 and _readable([self._wake_r], timeout):
                self._drain_wake()

    def _drain_wake(self) -> None:
        assert self._wake_r is not None
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass

    def stop(self, timeout: float = 2.0) -> None:
        """Say offline (retained), flush, disconnect and end the threads."""
        if self._stopping:
            return
        if self._connected.is_set():
            if self.presence:
                status = self._status(online=False)
                self.publish(self.topics.status(self.device), status, retain=True)
            self.flush(timeout)
        self._stopping = True
        with self._publish_lock:
            self._client.disconnect()
        if self._polled:
            for sock in (self._wake_r, self._wake_w):
                if sock is not None:
                    sock.close()
            self._wake_r = self._wake_w = None
        else:
            self._client.loop_stop()
            # paho closes loop_start()'s wake-up socket pair only when the client is garbage
            # collected; a Bus still referenced (by a traceback, say) would keep two descriptors.
            close_sockpair = getattr(self._client, "_reset_sockets", None)
            if close_sockpair is not None:
                close_sockpair(sockpair_only=True)
        self._connected.clear()
        self._fail_pending()

    @property
    def connected(self) -> bool:
        """True while the broker connection is up."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected or `timeout` seconds passed."""
        return self._connected.wait(timeout)

    def on_connection_change(self, listener: Callable[[bool], None]) -> None:
        """Call `listener(connected)` on every connect and disconnect (network thread)."""
        self._listeners.append(listener)

    # -- subscriptions ---------------------------------------------------------------
    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1) -> None:
        """Route messages matching `topic_filter` to `handler`; survives reconnects."""
        self._handlers.append((topic_filter, qos, handler))
        if self._connected.is_set():
            self._client.subscribe(topic_filter, qos)

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._network_thread = threading.get_ident()
        self._retry_delay = self._min_delay
        if reason.is_failure:
            log.error(
                "broker refused connection", extra={"device": self.device, "reason": str(reason)}
            )
            return
        filters = {}
        for topic_filter, qos, _ in self._handlers:
            filters[topic_filter] = max(qos, filters.get(topic_filter, 0))
        if filters:
            client.subscribe([(f, q) for f, q in filters.items()])
        self._connects += 1
        if self.presence:
            self.publish(self.topics.status(self.device), self._status(online=True), retain=True)
        log.info(
            "connected to broker",
            extra={"device": self.device, "broker": f"{self.host}:{self.port}"},
        )
        # The listeners first: whoever waited for the connection (start(wait=...)) then finds
        # what they handed over (a kiosk's "connected" step) ahead of anything it does next.
        self._tell_listeners(True)
        self._connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        # Waiting requests wait on: paho sends their commands again after reconnecting (and so
        # do they), so only the deadline, never the connection drop, may end them.
        with self._ack_cv:
            self._ack_cv.notify_all()
        if was and not self._stopping:
            log.warning(
                "lost broker connection", extra={"device": self.device, "reason": str(reason)}
            )
        self._tell_listeners(False)

    def _tell_listeners(self, connected: bool) -> None:
        # A listener's fault must not end paho's network thread (the device would never
        # reconnect): it is logged, and the others are still told.
        for listener in self._listeners:
            try:
                listener(connected)
            except Exception:
                log.exception(
                    "connection listener failed",
                    extra={"device": self.device, "connected": connected},
                )

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        props = getattr(msg, "properties", None)
        incoming = Incoming(
            topic=msg.topic,
            payload=msg.payload,
            retained=bool(msg.retain),
            response_topic=getattr(props, "ResponseTopic", None),
            correlation=getattr(props, "CorrelationData", None),
        )
        for topic_filter, _qos, handler in self._handlers:
            if _matches(topic_filter, msg.topic):
                try:
                    handler(incoming)
                except Exception:
                    log.exception(
                        "message handler failed", extra={"device": self.device, "topic": msg.topic}
                    )

    # -- publishing ------------------------------------------------------------------
    def publish(
        self,
        topic: str,
        payload: m.Message | bytes | None,
        *,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
        correlation: bytes | None = None,
    ) -> None:
        """Hand a message to paho; one publisher at a time (paho is not fully thread safe).

        While the broker is slow to acknowledge, a QoS 1 publish waits (back-pressure: paho's
        throughput collapses with thousands queued), except on paho's own thread, which must
        never wait. `correlation` answers an MQTT 5 request (sent back as Correlation Data).
        """
        if isinstance(payload, m.Message):
            payload = m.encode(payload)
        if correlation and self.v5:
            properties = properties or Properties(PacketTypes.PUBLISH)
            properties.CorrelationData = correlation
        if qos > 0 and threading.get_ident() != self._network_thread:
            with self._ack_cv:
                while self._unacked_count() >= self._max_unacked and self._connected.is_set():
                    self._ack_cv.wait(0.5)
        # Not under _ack_cv: paho calls on_publish holding its own lock, which publish needs.
        with self._publish_lock:
            try:
                info = self._client.publish(topic, payload or b"", qos, retain, properties)
            except (ValueError, OSError) as exc:
                log.error(
                    "publish failed",
                    extra={"device": self.device, "topic": topic, "error": str(exc)},
                )
                return
        if self._polled and threading.get_ident() != self._network_thread:
            self.wake()  # the poller writes it (paho writes at once only outside callbacks)
        if qos > 0 and not _acked(info):
            with self._ack_cv:
                self._unacked[info.mid] = info

    def expiring(self, seconds: int) -> Properties | None:
        """Publish properties that let the broker drop the message after `seconds` undelivered
        (MQTT 5 Message Expiry; None on MQTT 3.1.1, which has no such thing)."""
        if not self.v5:
            return None
        properties = Properties(PacketTypes.PUBLISH)
        properties.MessageExpiryInterval = seconds
        return properties

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything published so far was acknowledged by the broker."""
        deadline = time.monotonic() + timeout
        if self._polled:  # nobody else reads the acknowledgements: read them here
            while time.monotonic() < deadline:
                with self._ack_cv:
                    if self._unacked_count() == 0:
                        return True
                self.poll(0.01)
            return False
        with self._ack_cv:
            while time.monotonic() < deadline:
                if self._unacked_count() == 0:
                    return True
                self._ack_cv.wait(0.01)
        return False

    def _unacked_count(self) -> int:
        # Caller holds _ack_cv. An ack may arrive before the mid is recorded, so prune here.
        for mid in [mid for mid, info in self._unacked.items() if _acked(info)]:
            del self._unacked[mid]
        return len(self._unacked)

    def _on_publish(self, _c: Any, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        with self._ack_cv:
            self._unacked.pop(mid, None)
            self._ack_cv.notify_all()

    # -- presence --------------------------------------------------------------------
    def _status(self, online: bool) -> m.DeviceStatus:
        return m.DeviceStatus(
            device=self.device,
            role=self.role,
            online=online,
            sw=protocol.__version__,
            boot_id=self.boot_id,
            since=self.started_at,
            health=self.health,
        )

    def set_health(self, **changes: Any) -> None:
        """Update this device's health (e.g. printer='paper_out') and republish presence."""
        self.health = self.health.model_copy(update=changes)
        self.publish(self.topics.status(self.device), self._status(online=True), retain=True)

    # -- requests --------------------------------------------------------------------
    @property
    def knows_hub_time(self) -> bool:
        """True once a reply told this device the hub's clock."""
        return self._hub_minus_steady is not None

    @property
    def clock_offset(self) -> float:
        """The hub's clock minus this device's wall clock (0 while unknown)."""
        if self._hub_minus_steady is None:
            return 0.0
        return self._hub_minus_steady + time.monotonic() - time.time()

    @clock_offset.setter
    def clock_offset(self, offset: float) -> None:
        self._hub_minus_steady = offset + time.time() - time.monotonic()

    def hub_time(self) -> float:
        """Now, on the hub's clock (as the last reply told it; this device's own clock until
        one did). Kept on the steady clock: this device's wall clock may step meanwhile."""
        if self._hub_minus_steady is None:
            return time.time()
        return time.monotonic() + self._hub_minus_steady

    def _stamp(self, command: m.Command, deadline: float) -> m.Command:
        """`command` with the moments, on the hub's clock, it is sent and its sender gives up
        (`deadline`, time.monotonic()): the hub never applies it after that, so a command
        held up somewhere never acts after its device said it failed. Before any reply taught
        this device the hub's clock, its own wall clock stands in for it (if that is behind,
        the hub's `stale` refusal teaches it, and `request` sends again at once)."""
        steady = time.monotonic()
        now = self.hub_time()
        expires = now + max(0.0, deadline - steady) + EXPIRY_GRACE_S
        return command.model_copy(update={"sent_at": now, "expires_at": expires})

    def request(self, command: m.Command, timeout: float = 2.0, retries: int = 0) -> dict[str, Any]:
        """Send `command` to the hub and return its result.

        Retries reuse the same request id, so the hub applies the command once; so does the
        copy sent again after a reconnect while waiting. A dropped connection does not end the
        wait (the command may still reach the hub); the deadline does, after the time a reply
        to a command the hub took at its deadline needs. A `stale` refusal that comes while
        this device still waits can only mean its idea of the hub's clock was wrong (the hub's
        clock stepped, or this device's estimate is old): the refusal taught it the hub's
        clock, and the command goes again with new stamps (same request id). Raises
        BrokerUnavailable (not connected: nothing sent; or still not connected at the
        deadline), RequestTimeout, or CommandRejected.
        """
        if not self._connected.is_set():
            raise BrokerUnavailable(f"{self.device}: broker {self.host}:{self.port} not connected")
        reply_to = self.topics.reply(self.device)
        started = time.monotonic()
        budget = timeout * (retries + 1)
        # The deadline travels with the command: once the device stops waiting, the hub must
        # never apply it (a NEXT held up in a frozen broker must not call someone later).
        sending = [self._stamp(command.model_copy(update={"reply_to": reply_to}), started + budget)]
        pending = _Pending(sent_at=sending[0].sent_at)
        with self._pending_lock:
            self._pending[command.request_id] = pending
        props = None
        if self.v5:
            props = Properties(PacketTypes.PUBLISH)
            props.ResponseTopic = reply_to
            props.CorrelationData = command.request_id.encode()
            props.MessageExpiryInterval = max(1, math.ceil(budget))
        topic = self.topics.command(self.device, command.kind)

        def send() -> None:
            self.publish(topic, sending[0], properties=props)

        end = started + budget + EXPIRY_GRACE_S + REPLY_MARGIN_S
        restamps = 0
        try:
            attempt = 0
            send()
            while True:
                last = attempt > retries  # every attempt sent: wait for a late reply only
                until = end if last else started + timeout * (attempt + 1)
                got = self._wait_reply(pending, until, None if last else send)
                if (
                    got
                    and _clock_refusal(pending)
                    and restamps < MAX_RESTAMPS
                    and time.monotonic() < started + budget
                ):
                    restamps += 1
                    sending[0] = self._stamp(sending[0], started + budget)
                    log.warning(
                        "refused as stale while waiting: the hub's clock differs from what this "
                        "device knew; sending again",
                        extra={"device": self.device, "request_id": command.request_id},
                    )
                    pending.restart(sending[0].sent_at)
                    send()
                    continue
                if got or last:
                    break
                attempt += 1
                if attempt <= retries and self._connected.is_set():
                    send()
            if pending.reply is None:
                if pending.lost or not self._connected.is_set():
                    raise BrokerUnavailable(f"{self.device}: broker connection lost during request")
                raise RequestTimeout(
                    f"{self.device}: no reply to {command.kind} {command.request_id} "
                    f"within {timeout:g}s x {retries + 1}"
                )
        finally:
            with self._pending_lock:
                self._pending.pop(command.request_id, None)
        reply = pending.reply
        if not reply.ok:
            error = reply.error or m.ErrorInfo(code="internal", message="no error given")
            raise CommandRejected(
                error.code, error.message, error.text.model_dump() if error.text else None
            )
        return reply.result or {}

    def _wait_reply(
        self, pending: _Pending, until: float, resend: Callable[[], None] | None
    ) -> bool:
        """Wait until the reply came (True), the bus stopped, or `until` (time.monotonic());
        after a reconnect meanwhile, `resend` the command (the hub applies it once)."""
        seen = self._connects
        while not pending.done.is_set():
            left = until - time.monotonic()
            if left <= 0:
                return False
            if pending.done.wait(min(left, RECONNECT_POLL_S)):
                break
            if resend is not None and self._connects != seen and self._connected.is_set():
                seen = self._connects
                resend()
        return pending.reply is not None

    def _on_reply(self, incoming: Incoming) -> None:
        try:
            reply = m.decode(m.Reply, incoming.payload)
        except BadMessage as exc:
            log.warning("bad reply ignored", extra={"device": self.device, "error": str(exc)})
            return
        self._hub_minus_steady = reply.hub_time - time.monotonic()
        with self._pending_lock:
            pending = self._pending.get(reply.request_id)
        if pending is None or pending.reply is not None:
            return
        stale = reply.error is not None and reply.error.code == "stale"
        if stale and reply.sent_at is not None and reply.sent_at != pending.sent_at:
            return  # the refusal of an earlier attempt that arrived late, not of this one
        pending.reply = reply
        pending.done.set()

    def _fail_pending(self) -> None:
        with self._pending_lock:
            for pending in self._pending.values():
                pending.lost = True
                pending.done.set()


@functools.lru_cache(maxsize=8192)
def _matches(topic_filter: str, topic: str) -> bool:
    """paho's topic_matches_sub, remembered: it builds a matcher tree on every call, which was
    a tenth of the region service's receiving thread at 50 sites."""
    return paho.topic_matches_sub(topic_filter, topic)
