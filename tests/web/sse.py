"""Reading server-sent events from a Flask test-client response (bounded)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any


class EventReader:
    """Parses the SSE body of a streaming test response."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.chunks = iter(response.response)
        self.buffer = ""

    def next_event(self) -> tuple[str, Any] | None:
        """The next event (None when the stream ended)."""
        while "\n\n" not in self.buffer:
            try:
                chunk = next(self.chunks)
            except StopIteration:
                return None
            self.buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        block, self.buffer = self.buffer.split("\n\n", 1)
        name, data = "message", None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        if data is None:
            return ("comment", block)
        return name, data

    def until(self, check: Callable[[str, Any], bool], timeout: float = 5) -> tuple[str, Any]:
        """Events until one passes `check` (AssertionError when none within `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self.next_event()
            if event is None:
                break
            if check(*event):
                return event
        raise AssertionError("the expected event never came")

    def close(self) -> None:
        """End the stream (unsubscribes on the server)."""
        self.response.close()
