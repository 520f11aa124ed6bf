"""`mpp hub` refuses a missing database unless asked for a first start, and says what to check."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from protocol.cli import main
from tests.conftest import write_site


def test_the_hub_refuses_a_missing_database_and_says_what_to_check(tmp_path: Path) -> None:
    database = tmp_path / "disk" / "hub.sqlite"
    (tmp_path / "disk").mkdir()  # a mount point whose disk is not mounted: empty
    site_file = write_site(tmp_path / "site.toml", database=database)
    result = CliRunner().invoke(main, ["hub", "--site", str(site_file)])
    assert result.exit_code == 1
    assert "is missing" in result.output and "findmnt" in result.output
    assert "mpp hub --first-start" in result.output
    assert list((tmp_path / "disk").iterdir()) == []  # nothing made


def test_the_hub_help_tells_about_the_first_start() -> None:
    result = CliRunner().invoke(main, ["hub", "--help"])
    assert result.exit_code == 0
    assert "--first-start" in result.output and "not mounted" in result.output
