"""Reading an inventory file within limits: size, encoding, nesting and key names.

An inventory is tens of kilobytes of UTF-8 (the example's 41 devices: 25 KB). A file far larger,
binary, saved as UTF-16, nested hundreds of levels deep or with kilobyte-long keys is the wrong
file or a tool gone wrong: it gets one problem naming the file, the place and the fix, without a
traceback and without seconds of work or hundreds of megabytes to say so::

    text = read(Path("site.toml"))     # InventoryError: unreadable, too large, not UTF-8...
    data = loads(text, "site.toml")    # InventoryError: not TOML, too deep, too long a key...
"""

from __future__ import annotations

import codecs
import os
import tomllib
from pathlib import Path
from typing import Any

from protocol.errors import InventoryError

MAX_BYTES = 256 * 1024  # 10x the example: room for 400 devices, read in well under a second
MAX_DEPTH = 8  # the deepest key of an inventory: zones.Z.featured[0].caption.en (6)
MAX_NAME = 64  # ids are at most 40 characters; known keys at most 20
UTF16_32_BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}


def read(path: Path) -> str:
    """The text of the inventory file at `path` (see `decode`), read only when within MAX_BYTES."""
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            raw = file.read(MAX_BYTES + 1) if size <= MAX_BYTES else b""
    except OSError as exc:
        raise InventoryError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    if size > MAX_BYTES or len(raw) > MAX_BYTES:
        raise InventoryError(str(path), [_too_large(max(size, len(raw)))])
    return decode(raw, str(path))


def decode(raw: bytes, source: str) -> str:
    """The text of an inventory file's bytes: UTF-8 (a leading BOM is dropped), within MAX_BYTES."""
    if len(raw) > MAX_BYTES:
        raise InventoryError(source, [_too_large(len(raw))])
    for bom, name in UTF16_32_BOMS.items():
        if raw.startswith(bom):
            raise InventoryError(
                source, [f"saved as {name}; save the inventory as UTF-8 (the editor's encoding)"]
            )
    if b"\0" in raw:
        raise InventoryError(source, [_binary(raw.index(b"\0"), raw)])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InventoryError(
            source,
            [
                f"not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); save the "
                "inventory as UTF-8"
            ],
        ) from None


def loads(text: str, source: str) -> dict[str, Any]:
    """Parse inventory TOML text, refusing text over the size, nesting or key-name limits."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise InventoryError(source, [_too_large(size)])
    if "\0" in text:
        raise InventoryError(source, [_binary(text.index("\0"), text)])
    text = text.removeprefix("\ufeff")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(source, [f"not valid TOML: {exc}; fix the syntax there"]) from None
    except RecursionError:
        raise InventoryError(source, [_too_deep_to_parse(text)]) from None
    problems = shape_problems(data)
    if problems:
        raise InventoryError(source, problems)
    return data


def shape_problems(data: dict[str, Any]) -> list[str]:
    """Keys longer than MAX_NAME and values nested deeper than MAX_DEPTH, one line per limit."""
    long_names: list[str] = []
    too_deep: list[str] = []
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack:
        path, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            too_deep.append(path)
            continue
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for name, item in items:
            if isinstance(name, str) and len(name) > MAX_NAME:
                where = f"{path}.{_cut(name)}" if path else _cut(name)
                long_names.append(f"{where} ({len(name):,} characters)")
                continue
            inner = (
                f"{path}[{name}]" if isinstance(name, int) else f"{path}.{name}" if path else name
            )
            if isinstance(item, dict | list):
                stack.append((inner, item, depth + 1))
    problems = []
    if long_names:
        problems.append(
            f"{long_names[0]}: a key longer than {MAX_NAME} characters{_more(long_names)}; "
            "inventory keys and ids are short names: fix the key"
        )
    if too_deep:
        problems.append(
            f"{_cut(too_deep[0], 80)}: nested more than {MAX_DEPTH} levels deep"
            f"{_more(too_deep)}; an inventory's deepest keys are 6 levels (zones.ID.featured[0]."
            "caption.en): close the brackets or flatten the tables"
        )
    return problems


def _too_large(size: int) -> str:
    return (
        f"{size:,} bytes, larger than the {MAX_BYTES:,} an inventory may have (the example "
        "site's is 25 KB); is it the right file?"
    )


def _binary(offset: int, content: bytes | str) -> str:
    line = content[:offset].count(b"\n" if isinstance(content, bytes) else "\n") + 1
    return f"a binary file (a NUL byte on line {line}), not TOML text; is it the right file?"


def _too_deep_to_parse(text: str) -> str:
    """Where the parser's RecursionError comes from: the line with the most open brackets."""
    opened = [line.count("[") + line.count("{") for line in text.splitlines()] or [0]
    count = max(opened)
    return (
        f"line {opened.index(count) + 1}: {count:,} brackets nested in one value, too deep to "
        f"read; an inventory nests at most {MAX_DEPTH} levels: close the brackets"
    )


def _cut(name: str, limit: int = 24) -> str:
    return name if len(name) <= limit else name[:limit] + "..."


def _more(found: list[str]) -> str:
    return f" (and {len(found) - 1:,} more like it)" if len(found) > 1 else ""
