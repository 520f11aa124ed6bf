"""Write TOML: the standard library reads it (`tomllib`) but cannot write it.

Enough for inventories: tables, strings, integers, floats, booleans, arrays (arrays of tables
become inline tables). `tomllib.loads(dumps(data)) == data` for such data.

    dumps({"site": {"id": "mpp-x"}, "devices": {"kiosk-1": {"role": "kiosk"}}})
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from protocol.errors import MppError

BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class TomlWriteError(MppError, TypeError):
    """A value that has no TOML form here (None, bytes, objects)."""


def _key(key: str) -> str:
    return key if BARE_KEY.fullmatch(key) else _string(key)


def _string(text: str) -> str:
    # JSON escapes are TOML basic-string escapes; TOML also wants DEL escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item, where) for item in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{_key(str(k))} = {_value(v, where)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise TomlWriteError(f"{where}: {type(value).__name__} has no TOML form")


def _table(path: list[str], table: Mapping[str, Any], out: list[str]) -> None:
    simple = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
    nested = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    if path and (simple or not nested):
        out.append(("\n" if out else "") + "[" + ".".join(_key(p) for p in path) + "]")
    for key, value in simple:
        where = ".".join([*path, str(key)])
        out.append(f"{_key(str(key))} = {_value(value, where)}")
    for key, value in nested:
        _table([*path, str(key)], value, out)


def dumps(data: Mapping[str, Any], header: str = "") -> str:
    """TOML text for `data`, with `header` lines as comments on top."""
    out: list[str] = [f"# {line}".rstrip() for line in header.splitlines()]
    if out:
        out.append("")
    body: list[str] = []
    _table([], data, body)
    return "\n".join(out + body) + "\n"
