"""How a benchmark reports a figure so `bench/run_all.py` can tabulate it.

figure("hub: durable tickets/s", 1234.5, "/s", target=">= 1000")
# prints: FIGURE {"name": "hub: durable tickets/s", "value": 1234.5, ...}
"""

from __future__ import annotations

import json


def figure(name: str, value: float | None, unit: str, target: str | None = None) -> None:
    """Print one machine-readable figure line (alongside the script's human output)."""
    print(
        "FIGURE " + json.dumps({"name": name, "value": value, "unit": unit, "target": target}),
        flush=True,
    )
