"""The region's configuration (TOML), validated on load with errors naming file, key and fix.

[region]
id = "kalsel"
name = "Pemerintah Provinsi Kalimantan Selatan"
timezone = "Asia/Makassar"

[database]                       # libpq connection string; the password from PGPASSWORD
dsn = "host=127.0.0.1 port=5432 dbname=mpp_region user=mpp_region"

[broker]                         # the regional Mosquitto (see `mpp-provision region-broker`)
port = 1883
prefix = "mpp/v1"                # the sites' bridges remap up/ and down/ under it

[web]
port = 8090

[[sites]]
id = "mpp-banjarbaru"
name = "MPP Kota Banjarbaru"

config = load_region("region.toml")
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from protocol.errors import MppError
from protocol.topics import ROOT

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]


class RegionConfigError(MppError, ValueError):
    """The region's configuration file is unreadable or wrong; lists every problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"{source}: {len(problems)} problem(s) in the region configuration:\n{lines}"
        )


class Model(BaseModel):
    """Closed: an unknown key is an error (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RegionInfo(Model):
    """Who runs this regional server."""

    id: Slug
    name: str = Field(min_length=1)
    timezone: str = "Asia/Jakarta"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone; use e.g. 'Asia/Makassar'") from None
        return value


class Database(Model):
    """Where the region's PostgreSQL is (libpq connection string)."""

    dsn: str = "host=127.0.0.1 port=5432 dbname=mpp_region user=mpp_region"


class Broker(Model):
    """The regional Mosquitto, as the region service reaches it."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    prefix: str = ROOT
    username: str | None = "region"
    password_file: str | None = None
    tls: bool = False
    ca_file: str | None = None
    mqtt_version: Literal[5, 3] = 5

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value or value.startswith("/") or value.endswith("/") or set(value) & set("+# "):
            raise ValueError(f"{value!r}: write topic levels like 'mpp/v1', no '/' at the ends")
        return value


class Web(Model):
    """The regional web app."""

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8090"
    tls_cert: str | None = None  # with tls_key: the app is served over https only
    tls_key: str | None = None
    link_timeout_s: float = Field(default=35.0, gt=0)  # no news this long: the link is down

    @model_validator(mode="after")
    def _tls_pair(self) -> Web:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give web.tls_cert and web.tls_key together, or neither")
        return self


class Booking(Model):
    """Online booking on the regional web (the sessions come from each site's inventory)."""

    per_address_per_hour: int = Field(default=10, ge=1, le=100000)  # booking attempts


class Ingest(Model):
    """How the region service stores what sites send."""

    # Processes storing events, each for its share of the sites (by a hash of the site id).
    workers: int = Field(default=1, ge=1, le=32)


class SiteEntry(Model):
    """A site allowed to send to this region (it has an account on the regional broker)."""

    id: Slug
    name: str = Field(min_length=1)


class RegionConfig(Model):
    """The whole configuration of a regional server."""

    region: RegionInfo
    database: Database = Database()
    broker: Broker = Broker()
    web: Web = Web()
    booking: Booking = Booking()
    ingest: Ingest = Ingest()
    sites: tuple[SiteEntry, ...] = ()

    @field_validator("sites")
    @classmethod
    def _unique(cls, value: tuple[SiteEntry, ...]) -> tuple[SiteEntry, ...]:
        ids = [s.id for s in value]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"site ids listed twice: {', '.join(twice)}; list each once")
        if "region" in ids:
            raise ValueError("'region' is the region service's own account; rename that site")
        return value


def parse_region(text: str, source: str = "<region configuration>") -> RegionConfig:
    """Validate region TOML text; raises RegionConfigError listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegionConfigError(source, [f"not valid TOML: {exc}; fix the syntax there"]) from None
    try:
        return RegionConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            key = ".".join(str(p) for p in error["loc"]) or "(top level)"
            if error["type"] == "missing":
                problems.append(f"{key}: required key is missing; add it")
            elif error["type"] == "extra_forbidden":
                problems.append(f"{key}: unknown key; remove it (see docs/region.md)")
            else:
                problems.append(f"{key}: {error['msg'].removeprefix('Value error, ')}")
        raise RegionConfigError(source, problems) from None


def load_region(path: str | Path) -> RegionConfig:
    """Load and validate the region configuration at `path`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegionConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    return parse_region(text, str(path))
