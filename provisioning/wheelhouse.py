"""A role's software as wheels: resolved on the technician's machine, installed on the Pi from
the boot partition with `pip install --no-index --require-hashes`, never fetched there.

    software = Software(package_wheel(cache), pool=cache / "wheels")
    house = software.for_role("caller", [TRIXIE, BOOKWORM])
    house.requirements["requirements-py3.13-aarch64.txt"]   # 'name==version --hash=sha256:...'
    house.wheels                                            # the files for bundle/wheels/

Our own package goes in as a wheel built from this source tree: the public index has no
`mpp-antrian`, and whoever registered that name there would run code as root on every Pi
(dependency confusion). Projects the device's Debian packages provide (pygame with the system
SDL; lgpio, which has no wheel for Trixie's Python 3.13) stay out of the wheels: first boot
links those packages into the venv.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from provisioning.inventory import ProvisioningError

# The extras each role's machine installs (pyproject.toml); the site server runs the web too.
ROLE_EXTRAS: dict[str, tuple[str, ...]] = {
    "hub": ("hub", "web"),
    "kiosk": ("kiosk",),
    "caller": ("caller",),
    "display": ("display",),
}
PACKAGE = "mpp-antrian"
PIP_REQUIREMENT = "pip>=24.2"  # the first pip that knows Python 3.13
PIP_TIMEOUT_S = 900
NOT_PACKAGED = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "tests", "bench")


@dataclass(frozen=True)
class Target:
    """A Python on a kind of machine that a bundle installs on."""

    python: str  # "3.13"
    machine: str  # as `uname -m` says: "aarch64", "x86_64"
    glibc: tuple[int, int]  # the C library of its OS: newest manylinux its wheels may need
    system: frozenset[str] = frozenset()  # projects its Debian packages provide instead

    @property
    def requirements_file(self) -> str:
        """The requirements file of this target in a bundle (first boot picks it)."""
        return f"requirements-py{self.python}-{self.machine}.txt"

    def platforms(self) -> list[str]:
        """pip's platform tags for wheels that run here (pip does not expand manylinux_2_X)."""
        tags = [f"manylinux2014_{self.machine}"]
        tags += [f"manylinux_2_{minor}_{self.machine}" for minor in range(17, self.glibc[1] + 1)]
        return tags

    def pip_args(self) -> list[str]:
        """The options that make `pip download` choose wheels for this target."""
        abi = "cp" + self.python.replace(".", "")
        args = ["--python-version", self.python, "--implementation", "cp", "--abi", abi]
        for tag in self.platforms():
            args += ["--platform", tag]
        return args


# Projects the index has no wheel of at all (an sdist only): every target takes them from
# Debian (python3-evdev, in the kiosk's Debian packages).
FROM_DEBIAN = frozenset({"evdev"})
# Raspberry Pi OS (64-bit): Trixie has Python 3.13 and glibc 2.41, Bookworm 3.11 and 2.36.
PI_SYSTEM = frozenset({"pygame", "evdev"})
TARGETS: dict[str, Target] = {
    "trixie": Target("3.13", "aarch64", (2, 41), PI_SYSTEM),
    "bookworm": Target("3.11", "aarch64", (2, 36), PI_SYSTEM),
    "server-trixie": Target("3.13", "x86_64", (2, 41)),
    "server-bookworm": Target("3.11", "x86_64", (2, 36)),
}
PI_TARGETS = ("trixie", "bookworm")
# The site server may be a PC or an arm64 board, on Debian 12 or 13.
SERVER_TARGETS = ("server-trixie", "server-bookworm", "trixie", "bookworm")


def this_machine(system: frozenset[str] = frozenset()) -> Target:
    """This machine's Python and C library, as a target (tests; a server bundled on itself)."""
    libc, version = platform.libc_ver()
    if libc != "glibc":
        raise ProvisioningError(f"this machine's C library is {libc or 'unknown'}, not glibc")
    major, minor = (int(x) for x in version.split(".")[:2])
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Target(python, platform.machine(), (major, minor), system)


def default_targets(role: str) -> tuple[Target, ...]:
    """Where a role's machine runs: Raspberry Pi OS for devices, also PCs for the site server."""
    return tuple(TARGETS[name] for name in (SERVER_TARGETS if role == "hub" else PI_TARGETS))


def sha256(path: Path) -> str:
    """The hex sha256 of a file (pip's --hash)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheel_name_version(path: Path) -> tuple[str, str]:
    """(project, version) from a wheel's file name (PEP 427)."""
    parts = path.name.split("-")
    if not path.name.endswith(".whl") or len(parts) < 5:
        raise ProvisioningError(f"{path.name}: not a wheel file name")
    return parts[0], parts[1]


def canonical(name: str) -> str:
    """A project name as the index compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


# -- our own package -----------------------------------------------------------------------
def source_tree() -> Path | None:
    """The source tree this copy of the package runs from, if it is one (editable install)."""
    top = Path(__file__).resolve().parent.parent
    pyproject = top / "pyproject.toml"
    if pyproject.exists() and f'name = "{PACKAGE}"' in pyproject.read_text(encoding="utf-8"):
        return top
    return None


def package_wheel(out_dir: Path, source: Path | None = None) -> Path:
    """Build the package's wheel from its source tree into `out_dir` (no dependencies)."""
    source = source or source_tree()
    if source is None:
        raise ProvisioningError(
            "this mpp-provision is not run from the source tree, so it cannot build the "
            f"{PACKAGE} wheel; pass --package-wheel (made with `pip wheel --no-deps -w dist .` "
            "in the source tree)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mpp-wheel-") as tmp:
        # A clean copy: setuptools builds in the tree and would package what an earlier build
        # left in build/ (a module deleted since, for one).
        tree = Path(tmp) / "src"
        shutil.copytree(source, tree, ignore=shutil.ignore_patterns(*NOT_PACKAGED))
        command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp]
        if all(importlib.util.find_spec(m) is not None for m in ("setuptools", "wheel")):
            command.append("--no-build-isolation")  # the build backend is here: no fetch
        done = subprocess.run(
            [*command, str(tree)], capture_output=True, text=True, check=False, timeout=300
        )
        built = sorted(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or len(built) != 1:
            raise ProvisioningError(f"building the {PACKAGE} wheel failed: {done.stderr[-800:]}")
        target = out_dir / built[0].name
        shutil.move(built[0], target)
    return target


def role_requirements(package: Path, role: str, target: Target) -> list[str]:
    """The package's requirements for the role's extras, less what the target's OS provides."""
    from packaging.requirements import Requirement

    metadata = _metadata(package)
    wanted = []
    for line in metadata:
        requirement = Requirement(line)
        if canonical(requirement.name) == PACKAGE:
            continue  # the demo and test extras name the others
        if requirement.marker is not None and not any(
            requirement.marker.evaluate(_environment(target, extra))
            for extra in ("", *ROLE_EXTRAS[role])
        ):
            continue
        if canonical(requirement.name) in target.system | FROM_DEBIAN:
            continue
        requirement.marker = None
        wanted.append(str(requirement))
    return sorted(dict.fromkeys(wanted))


def _metadata(package: Path) -> list[str]:
    try:
        with zipfile.ZipFile(package) as wheel:
            name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
            text = wheel.read(name).decode()
    except (OSError, zipfile.BadZipFile, StopIteration) as exc:
        raise ProvisioningError(f"{package}: not a readable wheel ({exc})") from None
    return [
        line.partition(":")[2].strip()
        for line in text.splitlines()
        if line.startswith("Requires-Dist:")
    ]


def _environment(target: Target, extra: str) -> dict[str, str]:
    return {
        "extra": extra,
        "python_version": target.python,
        "python_full_version": f"{target.python}.0",
        "platform_machine": target.machine,
        "platform_system": "Linux",
        "sys_platform": "linux",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }


# -- resolving wheels ----------------------------------------------------------------------
@dataclass
class Wheelhouse:
    """One role's wheels for its targets, and a hash-pinned requirements file per target."""

    wheels: list[Path] = field(default_factory=list)
    requirements: dict[str, str] = field(default_factory=dict)


class Software:
    """Where bundles' wheels come from: the package wheel and a pool of downloaded wheels.

    `source` is a directory of wheels to resolve from with no index at all (a laptop without
    internet); otherwise pip's own configuration (the public index or a mirror) on this
    machine. Each role and target is resolved once, then remembered in the pool (`locks/`).
    """

    def __init__(self, package: Path, pool: Path, source: Path | None = None) -> None:
        self.package = package
        self.pool = pool
        self.source = source
        self._made: dict[tuple[str, tuple[Target, ...]], Wheelhouse] = {}
        if source is not None and not any(source.glob("*.whl")):
            raise ProvisioningError(f"--wheelhouse {source}: no .whl files in it")

    def for_role(self, role: str, targets: tuple[Target, ...]) -> Wheelhouse:
        """The role's wheelhouse for `targets` (resolved on first use)."""
        key = (role, targets)
        if key not in self._made:
            house = Wheelhouse()
            package_line = self._line(self.package)
            for target in targets:
                wheels = self.resolve(role_requirements(self.package, role, target), target)
                lines = [package_line, *(self._line(w) for w in wheels)]
                house.requirements[target.requirements_file] = _requirements_text(
                    role, target, lines
                )
                house.wheels += [w for w in wheels if w not in house.wheels]
            house.wheels.append(self.package)
            self._made[key] = house
        return self._made[key]

    @staticmethod
    def _line(wheel: Path) -> str:
        name, version = wheel_name_version(wheel)
        return f"{name}=={version} --hash=sha256:{sha256(wheel)}"

    def resolve(self, requirements: list[str], target: Target) -> list[Path]:
        """Wheels of `requirements` and their dependencies for `target` (pip among them)."""
        wanted = [*requirements, PIP_REQUIREMENT]
        key = hashlib.sha256(
            json.dumps([wanted, target.pip_args(), str(self.source)]).encode()
        ).hexdigest()[:16]
        lock = self.pool / "locks" / f"py{target.python}-{target.machine}-{key}.json"
        if lock.exists():
            files = json.loads(lock.read_text())
            paths = [self.pool / name for name in files]
            if all(p.exists() and sha256(p) == files[p.name] for p in paths):
                return paths
        self.pool.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="mpp-resolve-") as tmp:
            command = [
                sys.executable, "-m", "pip", "download", "--quiet", "--dest", tmp,
                "--only-binary=:all:", *target.pip_args(), "--find-links", str(self.pool),
            ]  # fmt: skip
            if self.source is not None:
                command += ["--no-index", "--find-links", str(self.source)]
            done = subprocess.run(
                [*command, *wanted],
                capture_output=True,
                text=True,
                check=False,
                timeout=PIP_TIMEOUT_S,
                env=os.environ | {"PIP_DISABLE_PIP_VERSION_CHECK": "1"},
            )
            if done.returncode != 0:
                raise ProvisioningError(
                    f"no wheels for Python {target.python} on {target.machine}: "
                    f"{done.stderr.strip()[-800:]}; a project without such a wheel must come "
                    "from a Debian package on the device"
                )
            files = {}
            for wheel in sorted(Path(tmp).glob("*.whl")):
                stored = self.pool / wheel.name
                if not stored.exists():
                    shutil.move(wheel, stored)
                files[wheel.name] = sha256(stored)
        lock.parent.mkdir(exist_ok=True)
        lock.write_text(json.dumps(files, indent=1, sort_keys=True) + "\n")
        return [self.pool / name for name in files]


def _requirements_text(role: str, target: Target, lines: list[str]) -> str:
    provided = ", ".join(sorted(target.system)) or "nothing"
    head = (
        f"# MPP {role}: every wheel for Python {target.python} on {target.machine}, pinned by "
        "hash.\n"
        "# Made by `mpp-provision bundle`; first boot installs it with\n"
        "#   pip install --no-index --find-links wheels --require-hashes -r THIS_FILE\n"
        f"# From the device's Debian packages instead: {provided}.\n"
    )
    return head + "".join(f"{line}\n" for line in sorted(lines, key=str.lower))
