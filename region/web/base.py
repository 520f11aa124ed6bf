"""What every view of the regional web uses: the pool, the configuration, the clock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from flask import current_app, g

from region.config import RegionConfig
from region.web.texts import translate


def region() -> dict[str, Any]:
    """The app's region objects: config, pool, accounts, throttle."""
    return current_app.extensions["region"]


def config() -> RegionConfig:
    """The region configuration."""
    return region()["config"]


@contextmanager
def db() -> Iterator[psycopg.Connection]:
    """A pooled connection for one request's reads."""
    with region()["pool"].connection() as conn:
        yield conn


def now() -> float:
    """The app's clock (tests fix it)."""
    return float(current_app.config["CLOCK"]())


def today() -> date:
    """Today in the region's time zone."""
    return datetime.fromtimestamp(now(), ZoneInfo(config().region.timezone)).date()


def t(key: str) -> str:
    """A text in the request's language."""
    return translate(key, g.get("lang", "id"))


def minutes(seconds: float | None) -> str:
    """'12' (minutes, rounded) or '-'."""
    return "-" if seconds is None else f"{seconds / 60:.0f}"


def clock_time(epoch: float | None, tz: str | None = None) -> str:
    """'14:05' (or '2026-12-06 14:05' when not today) in the region's time zone."""
    if epoch is None:
        return "-"
    zone = ZoneInfo(tz or config().region.timezone)
    moment = datetime.fromtimestamp(epoch, zone)
    same_day = moment.date() == datetime.fromtimestamp(now(), zone).date()
    return moment.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M")
