"""Inventory files out of every limit get one clear problem naming the file, the place and the fix."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from protocol.cli import main
from protocol.errors import InventoryError
from protocol.site import load_site
from protocol.toml_limits import MAX_BYTES
from tests.conftest import example_text


def unknown_tables(size: int) -> bytes:
    """The example followed by unknown tables up to `size` bytes (a generated file gone wrong)."""
    text = [example_text()]
    while len(text) * 30 < size:
        text.append(f"[unknown_table_{len(text)}]\nkey = 1\n")
    return "".join(text).encode()


def with_tail(tail: str) -> bytes:
    """The example with `tail` appended, as bytes."""
    return (example_text() + tail + "\n").encode()


# Each case: the file's bytes, the words of its one problem.
FILES: dict[str, tuple[Callable[[], bytes], str]] = {
    "UTF-16 (Windows Notepad's 'Unicode')": (
        lambda: example_text().encode("utf-16"), "saved as UTF-16; save the inventory as UTF-8"
    ),
    "UTF-32": (lambda: example_text().encode("utf-32"), "saved as UTF-32"),
    "binary": (lambda: bytes(range(256)) * 100, "a binary file (a NUL byte on line 1)"),
    "Latin-1": (
        lambda: example_text().replace("Jl. Panglima", "Jl. Panglimä").encode("latin-1"),
        "not UTF-8 text (byte 0xe4 on line 10); save the inventory as UTF-8",
    ),
    "arrays nested 5,000 deep": (
        lambda: with_tail("x = " + "[" * 5000 + "]" * 5000),
        "brackets nested in one value, too deep to read",
    ),
    "arrays nested 500 deep": (
        lambda: with_tail("x = " + "[" * 500 + "]" * 500),
        "500 brackets nested in one value, too deep to read",
    ),
    "inline tables nested 3,000 deep": (
        lambda: with_tail("y = " + "{a=" * 3000 + "1" + "}" * 3000),
        "3,000 brackets nested in one value, too deep to read",
    ),
    "dotted keys 5,000 deep": (
        lambda: with_tail("[" + ".".join(["a"] * 5000) + "]\nb = 1"),
        "a.a.a.a.a.a.a.a.a: nested more than 8 levels deep",
    ),
    "arrays nested 20 deep": (
        lambda: example_text().replace("[site]\n", "[site]\nx = " + "[" * 20 + "]" * 20 + "\n")
        .encode(),
        "site.x[0][0][0][0][0][0][0]: nested more than 8 levels deep",
    ),
    "a 100,000-character key": (
        lambda: example_text().replace("[site]\n", "[site]\n" + "k" * 100_000 + " = 1\n")
        .encode(),
        "site.kkkkkkkkkkkkkkkkkkkkkkkk... (100,000 characters): a key longer than 64 characters",
    ),
    "5 MB of unknown tables": (
        lambda: unknown_tables(5_000_000), f"larger than the {MAX_BYTES:,} an inventory may have"
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(FILES))
def test_a_file_out_of_limits_gets_one_clear_problem(case: str, tmp_path: Path) -> None:
    content, words = FILES[case]
    path = tmp_path / "site.toml"
    path.write_bytes(content())
    with pytest.raises(InventoryError) as caught:
        load_site(path)
    assert len(caught.value.problems) == 1, caught.value.problems[:3]
    assert words in caught.value.problems[0]
    assert str(caught.value).startswith(f"{path}: 1 problem(s)")
    result = CliRunner().invoke(main, ["inventory", str(path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert words in result.output and "Traceback" not in result.output
    assert len(result.output) < 1000


def test_a_large_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    with path.open("wb") as file:
        file.truncate(4 * 1024**3)  # a 4 GB sparse file: reading it would take the machine down
    with pytest.raises(InventoryError, match=r"4,294,967,296 bytes, larger than"):
        load_site(path)


def test_a_utf8_byte_order_mark_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_bytes(codecs.BOM_UTF8 + example_text().encode())
    assert load_site(path).site.id == "mpp-banjarbaru"


def test_many_problems_are_listed_up_to_a_hundred(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(
        example_text() + "".join(f"[unknown_{i}]\n" for i in range(1000)), encoding="utf-8"
    )
    with pytest.raises(InventoryError) as caught:
        load_site(path)
    problems = caught.value.problems
    assert len(problems) == 101 and problems[0] == "unknown_0: unknown key 'unknown_0'; " + (
        "remove it (see examples/ for the keys)"
    )
    assert problems[-1].startswith("... and 900 more problems: is it an MPP site inventory?")


def test_a_text_over_the_limit(tmp_path: Path) -> None:
    text = example_text().replace('"Perekaman dan Cetak KTP-el"', f'"{"x" * 3000}"', 1)
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InventoryError) as caught:
        load_site(path)
    assert caught.value.problems == [
        "services.ktp.name.id: String should have at most 2000 characters; shorten it"
    ]
