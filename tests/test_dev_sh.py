"""`./dev.sh test` (what CI runs) fails on a ruff finding before the test suite starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

CLEAN = '"""A module."""\n\nfrom __future__ import annotations\n\nVALUE = 1\n'
TEST = "def test_runs() -> None:\n    assert True\n"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout holding dev.sh, pyproject.toml and one module, whose .venv is already set up
    (it borrows this one's python, ruff and site-packages: dev.sh installs nothing)."""
    shutil.copy(ROOT / "dev.sh", tmp_path / "dev.sh")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    venv, ours = tmp_path / ".venv", Path(sys.prefix)
    (venv / "bin").mkdir(parents=True)
    shutil.copy(ours / "pyvenv.cfg", venv / "pyvenv.cfg")
    for name in ("lib", "lib64"):
        if (ours / name).exists():
            (venv / name).symlink_to(ours / name)
    (venv / "bin" / "python").symlink_to(ours / "bin" / "python")
    (venv / "bin" / "ruff").symlink_to(ours / "bin" / "ruff")
    (venv / ".installed").touch()  # newer than pyproject.toml: no install
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_one.py").write_text(TEST)
    (tmp_path / "module.py").write_text(CLEAN)
    return tmp_path


def dev_sh(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        ["bash", str(checkout / "dev.sh"), *args],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_clean_code_goes_on_to_the_tests(checkout: Path) -> None:
    result = dev_sh(checkout, "test", "-p", "no:cacheprovider")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All checks passed!" in result.stdout and "1 passed" in result.stdout


def test_a_lint_finding_fails_before_the_tests(checkout: Path) -> None:
    (checkout / "module.py").write_text(CLEAN + "import os\n")
    result = dev_sh(checkout, "test", "-p", "no:cacheprovider")
    assert result.returncode == 1
    assert "F401" in result.stdout and "`os` imported but unused" in result.stdout
    assert "test session starts" not in result.stdout


def test_unformatted_code_fails_before_the_tests(checkout: Path) -> None:
    (checkout / "module.py").write_text(CLEAN.replace("VALUE = 1", "VALUE=1"))
    result = dev_sh(checkout, "test", "-p", "no:cacheprovider")
    assert result.returncode == 1
    assert "--> module.py" in result.stdout and "1 file would be reformatted" in result.stdout
    assert "test session starts" not in result.stdout
    assert dev_sh(checkout, "lint").returncode == 1
