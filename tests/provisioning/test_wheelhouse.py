"""Each role's extra holds what that machine runs, and nothing of the others'."""

from __future__ import annotations

import re

import pytest

from provisioning.wheelhouse import TARGETS, Software, role_requirements, this_machine

BASE = {"paho-mqtt", "pydantic", "click"}
ROLE_PROJECTS = {
    "hub": BASE | {"flask", "gevent", "qrcode", "pillow"},  # the site server runs the web too
    "kiosk": BASE | {"gpiozero", "python-escpos", "qrcode", "pillow"},  # evdev: Debian's
    "caller": BASE | {"gpiozero", "rplcd", "smbus2"},
    "display": BASE | {"pyttsx3"},
}


def names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9._-]+", r).group(0).lower() for r in requirements}  # type: ignore[union-attr]


@pytest.mark.parametrize("role", list(ROLE_PROJECTS))
def test_a_pi_role_gets_its_extra_only(software: Software, role: str) -> None:
    pi = role_requirements(software.package, role, TARGETS["trixie"])
    assert names(pi) == ROLE_PROJECTS[role]  # pygame: Debian's on a Pi
    here = names(role_requirements(software.package, role, this_machine()))
    # Debian's on a Pi: pygame; evdev is Debian's everywhere (no wheel on the index).
    debian = {"kiosk": {"pygame"}, "display": {"pygame"}}
    assert here - names(pi) == debian.get(role, set())
    assert not here & {"amqtt", "cryptography", "pyyaml", "pytest", "mpp-antrian"}


def test_escpos_brings_usb_and_serial_on_a_kiosk(software: Software) -> None:
    kiosk = role_requirements(software.package, "kiosk", TARGETS["trixie"])
    assert any(r.startswith("python-escpos[serial,usb]") for r in kiosk)


def test_targets_ask_pip_for_the_right_wheels() -> None:
    trixie, bookworm = TARGETS["trixie"], TARGETS["bookworm"]
    assert trixie.requirements_file == "requirements-py3.13-aarch64.txt"
    assert "manylinux_2_41_aarch64" in trixie.platforms()
    assert "manylinux_2_41_aarch64" not in bookworm.platforms()  # Bookworm's glibc is 2.36
    args = bookworm.pip_args()
    assert args[args.index("--abi") + 1] == "cp311"
    assert args[args.index("--python-version") + 1] == "3.11"


def test_a_directory_of_wheels_is_enough(software: Software, here, tmp_path) -> None:
    """--wheelhouse DIR: resolved from that directory alone, with no index at all."""
    software.for_role("caller", (here,))  # the session's pool holds the caller's wheels now
    offline = Software(software.package, tmp_path / "pool", source=software.pool)
    house = offline.for_role("caller", (here,))
    names = {w.name.split("-")[0].lower() for w in house.wheels}
    assert {"mpp_antrian", "gpiozero", "rplcd", "smbus2", "pip"} <= names
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(Exception, match=r"no \.whl files"):
        Software(software.package, tmp_path / "pool2", source=empty)
