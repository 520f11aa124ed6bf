"""What each role's machine installs: its extra's wheels and the size of its venv (prints).

    .venv/bin/python bench/role_sizes.py

For every role, the bundle's hash-pinned requirements for this machine's Python are installed
the way first boot does (pip --no-index --require-hashes from the wheels) into a fresh venv;
prints the wheel count and download size, and the installed size of the venv (pip and its
byte-compiled modules included, as on the device). Pygame counts as
Debian's on a Pi (linked, not installed) and is left out, as there.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402
from provisioning.wheelhouse import (  # noqa: E402
    PI_SYSTEM,
    ROLE_EXTRAS,
    Software,
    package_wheel,
    this_machine,
)

CACHE = Path.home() / ".cache" / "mpp-provision" / "wheels"


def du(path: Path) -> int:
    """Bytes on disk under `path`."""
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True,
                              check=True).stdout.split()[0])  # fmt: skip


def main() -> None:
    target = this_machine(system=PI_SYSTEM)
    with tempfile.TemporaryDirectory(prefix="mpp-role-sizes-") as tmp:
        software = Software(package_wheel(Path(tmp) / "package"), CACHE)
        print(machine())
        print(f"role      extras          wheels   download   venv installed ({target.python}, "
              f"{target.machine}; pygame from Debian)")  # fmt: skip
        for role, extras in ROLE_EXTRAS.items():
            house = software.for_role(role, (target,))
            requirements = Path(tmp) / f"{role}.txt"
            requirements.write_text(house.requirements[target.requirements_file])
            env = Path(tmp) / role
            venv.create(env, with_pip=False)  # as first boot: pip comes from the wheels
            pip = next(w for w in house.wheels if w.name.startswith("pip-"))
            subprocess.run(
                [str(env / "bin" / "python"), f"{pip}/pip", "install", "--quiet", "--isolated",
                 "--no-index", "--find-links", str(CACHE), "--find-links",
                 str(software.package.parent), "--require-hashes", "-r", str(requirements)],
                check=True, env={"PIP_CONFIG_FILE": "/dev/null", "PATH": "/usr/bin:/bin"},
            )  # fmt: skip
            wheels = sum(w.stat().st_size for w in house.wheels)
            print(f"{role:<9} {','.join(extras):<15} {len(house.wheels):>6} "
                  f"{wheels / 1e6:8.1f} MB {du(env) / 1e6:8.1f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
