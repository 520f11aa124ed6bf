"""One base exception for the project and the specific errors a technician can act on."""

from __future__ import annotations


class MppError(Exception):
    """Base of every error this project raises on purpose."""


class InventoryError(MppError, ValueError):
    """The site inventory (TOML) is unreadable or inconsistent; lists every problem found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in the site inventory:\n{lines}")


class BadMessage(MppError, ValueError):
    """An MQTT payload that does not follow the protocol (bad JSON, wrong types, too large...).

    `code` is one of the protocol's error codes so a reply can carry it unchanged.
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class BusError(MppError):
    """Base of the MQTT bus errors."""


class BrokerUnavailable(BusError, ConnectionError):
    """The broker is not reachable right now; nothing was sent."""


class RequestTimeout(BusError, TimeoutError):
    """The hub did not answer a request in time (it may or may not have applied it)."""


class CommandRejected(MppError):
    """The hub answered a command with an error; `text` holds the citizen-readable reason."""

    def __init__(self, code: str, message: str, text: dict[str, str] | None = None) -> None:
        self.code = code
        self.message = message
        self.text = text or {}
        super().__init__(f"{code}: {message}")
