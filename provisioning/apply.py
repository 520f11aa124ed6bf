"""`mpp-provision apply`: an edited inventory reaches every part, with no file copied by hand.

On the site server, after editing the inventory (or after `replace`, `revoke`, `rotate`):

    mpp-provision --site site.toml apply

1. validates it (`check`'s errors stop it; nothing is changed then);
2. gives new devices their broker accounts (as `init` does) and rewrites the broker's files;
3. installs them where Mosquitto reads them and reloads it (SIGHUP: passwords and ACL; clients
   stay connected, a revoked device is dropped);
4. installs the hub's slice of the inventory and reloads the hub (SIGHUP), then waits until the
   hub says it runs that version, or why it refused it (it keeps the running one then);
5. restarts the web app (it reads the inventory at start);
6. tells which device bundles must be written again: devices whose slice of the inventory or
   password differs from what their last bundle carried (`bundle` and `write-boot` record it).
"""

from __future__ import annotations

import contextlib
import filecmp
import grp
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from broker_config.files import CONF, PASSWD, PRIVATE
from broker_config.local import hand_to_mosquitto
from provisioning.inventory import Inventory, ProvisioningError
from provisioning.site_secrets import SiteSecrets, write_private

BUNDLED = "bundled.json"  # what each device's last bundle carried (in the secrets directory)


# -- what each bundle carried --------------------------------------------------------------
def bundle_fingerprint(site_toml: str, password: str) -> dict[str, str]:
    """What decides whether a device's bundle is still right: its slice (its tables, not the
    header naming the whole inventory's version) and its password."""
    tables = json.dumps(tomllib.loads(site_toml), sort_keys=True, default=str)
    return {
        "site": hashlib.sha256(tables.encode()).hexdigest(),
        "password": hashlib.sha256(password.encode()).hexdigest(),
    }


def record_bundle(store: SiteSecrets, device: str, site_toml: str, password: str) -> None:
    """Remember what `device`'s bundle carries (called by `bundle` and `write-boot`)."""
    path = store.root / BUNDLED
    records = json.loads(path.read_text()) if path.exists() else {}
    records[device] = bundle_fingerprint(site_toml, password) | {"at": time.time()}
    write_private(path, json.dumps(records, indent=1, sort_keys=True) + "\n")


def stale_bundles(inventory: Inventory, store: SiteSecrets) -> dict[str, str]:
    """Devices whose bundle must be made again, with the reason."""
    from provisioning.bundle import device_site_toml

    path = store.root / BUNDLED
    records = json.loads(path.read_text()) if path.exists() else {}
    stale: dict[str, str] = {}
    for device in inventory.site.devices:
        if device in store.revoked:
            continue  # revoked: `rotate` first, then its bundle
        now = bundle_fingerprint(device_site_toml(inventory, store, device), store.password(device))
        then = records.get(device)
        if then is None:
            stale[device] = "no bundle made yet"
        elif then["password"] != now["password"]:
            stale[device] = "new broker password"
        elif then["site"] != now["site"]:
            stale[device] = "its part of the inventory changed"
    return stale


# -- installing and reloading --------------------------------------------------------------
@dataclass
class Targets:
    """Where the site server's parts read their files, and how each is reloaded."""

    hub_site: Path = Path("/etc/mpp/site.toml")
    broker_etc: Path | None = None  # default: the layout's etc_dir of the last `broker` run
    hub_pid: int | None = None  # signal this process; default: systemctl reload mpp-hub
    broker_pid: int | None = None  # default: systemctl reload mosquitto
    web_unit: str | None = "mpp-web.service"  # restarted if it runs; None: leave it
    run: Callable[[list[str]], int] = field(
        default=lambda argv: subprocess.run(argv, check=False, timeout=60).returncode
    )


def install_broker_files(out_dir: Path, etc_dir: Path) -> list[str]:
    """Copy the changed broker files where Mosquitto reads them (readable by its group, as
    broker_config/README.md installs them); the names of the files that changed."""
    if out_dir.resolve() == etc_dir.resolve():  # written in place: only the modes to set
        hand_to_mosquitto(etc_dir)
        return ["(written in place)"]
    changed = []
    gid = None
    if os.geteuid() == 0:
        with contextlib.suppress(KeyError):
            gid = grp.getgrnam("mosquitto").gr_gid
    etc_dir.mkdir(parents=True, exist_ok=True)
    for source in sorted(out_dir.iterdir()):
        if not source.is_file() or source.name.startswith("."):
            continue
        target = etc_dir / source.name
        if target.exists() and filecmp.cmp(source, target, shallow=False):
            continue
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o640 if source.name in PRIVATE or source.name == PASSWD else 0o644)
        if gid is not None:
            os.chown(tmp, 0, gid)
        os.replace(tmp, target)  # a broker reloading meanwhile never reads half a file
        changed.append(source.name)
    return changed


def _signal(pid: int, what: str) -> None:
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise ProvisioningError(f"{what}: no process {pid}") from None


def reload_broker(targets: Targets) -> None:
    """Mosquitto rereads its password file and ACL (SIGHUP)."""
    if targets.broker_pid is not None:
        _signal(targets.broker_pid, "--broker-pid")
    elif targets.run(["systemctl", "reload", "mosquitto.service"]) != 0:
        raise ProvisioningError(
            "`systemctl reload mosquitto` failed; reload the broker by hand (its files are "
            "installed)"
        )


def reload_hub(targets: Targets) -> None:
    """The hub rereads its inventory file (SIGHUP) and swaps it in, or refuses it."""
    if targets.hub_pid is not None:
        _signal(targets.hub_pid, "--hub-pid")
    elif targets.run(["systemctl", "reload", "mpp-hub.service"]) != 0:
        raise ProvisioningError("`systemctl reload mpp-hub` failed; is the hub installed?")


def restart_web(targets: Targets) -> bool:
    """Restart the web app if it runs (it reads the inventory at start)."""
    if targets.web_unit is None:
        return False
    return targets.run(["systemctl", "try-restart", targets.web_unit]) == 0


def install_hub_site(text: str, path: Path) -> bool:
    """Write the hub's inventory file; False when it already holds exactly that."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, text, 0o644)
    return True


def conf_changed(changed: list[str]) -> bool:
    """Whether mosquitto.conf changed: listeners and the bridge need a restart, not a reload."""
    return CONF in changed
