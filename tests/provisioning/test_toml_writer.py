"""TOML written by us reads back as the same data."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioning.toml_writer import TomlWriteError, dumps
from tests.conftest import example_text

keys = st.text(min_size=1, max_size=12)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=30),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(keys, values, max_size=6))
def test_round_trip(data: dict) -> None:
    assert tomllib.loads(dumps(data)) == data


def test_the_example_inventory_round_trips() -> None:
    data = tomllib.loads(example_text())
    assert tomllib.loads(dumps(data, header="a comment\nover two lines")) == data


def test_header_becomes_comments_and_tables_get_headers() -> None:
    text = dumps({"site": {"id": "x"}, "devices": {"kiosk-1": {"role": "kiosk"}}}, "hello")
    assert text.startswith("# hello\n")
    assert '[devices.kiosk-1]\nrole = "kiosk"' in text


def test_values_without_a_toml_form_are_refused() -> None:
    with pytest.raises(TomlWriteError, match=r"a.b: NoneType has no TOML form"):
        dumps({"a": {"b": None}})
