"""The site's secrets directory: site CA, broker server certificate, one account per machine.

Kept on the technician's laptop (or the site server), never in git: `init` refuses a directory
inside a git work tree and writes a `.gitignore` that ignores everything in it.

    store = SiteSecrets.open("~/mpp-secrets/mpp-banjarbaru")
    store.password("caller-03")        # for that device's bundle
    store.revoke("caller-03")          # then regenerate the broker files and reload

Layout: `site.json` (site id, server names), `ca.crt`/`ca.key`, `server.crt`/`server.key`,
`accounts.json` (per account: role, random password, its `$7$` hash; revoked accounts).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from broker_config.acl import HUB, MONITOR, RESERVED_USERS, UPLINK, WEB
from broker_config.files import Account
from broker_config.passwords import hash_password, new_password, verify_password
from broker_config.tls import KeyPair, cert_hosts, make_ca, make_server_cert, server_hosts
from protocol.site import Site
from provisioning.inventory import ProvisioningError

SITE_FILE = "site.json"
ACCOUNTS_FILE = "accounts.json"
CA_CERT, CA_KEY = "ca.crt", "ca.key"
SERVER_CERT, SERVER_KEY = "server.crt", "server.key"
# The web process's https certificate (staff pages), for the same names as the broker's.
WEB_CERT, WEB_KEY = "web.crt", "web.key"
BROKER_SETTINGS = "broker.json"
README = """\
Secrets of MPP site {site}, made by `mpp-provision init`.
Keep this directory private (it holds every device's broker password and the site CA key)
and out of git. Back it up encrypted: without it, every device must be re-provisioned.
"""


def write_private(path: Path, data: bytes | str, mode: int = 0o600) -> None:
    """Write a file atomically, readable by its owner only (or `mode`)."""
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(raw)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def git_work_tree(path: Path) -> Path | None:
    """The git work tree that would track `path`, if any (an ignored path is not tracked)."""
    resolved = path.resolve()
    probe = resolved
    while not probe.exists():
        probe = probe.parent
    tree = next((c for c in [probe, *probe.parents] if (c / ".git").exists()), None)
    if tree is None:
        return None
    try:
        ignored = subprocess.run(
            ["git", "-C", str(tree), "check-ignore", "-q", str(resolved)],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return tree  # cannot tell: assume it would be tracked
    return None if ignored.returncode == 0 else tree


def now_iso() -> str:
    """The current UTC time, to the second, as stored in accounts.json."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass
class InitReport:
    """What `init` created or kept."""

    created_ca: bool = False
    issued_server_cert: bool = False
    new_accounts: list[str] = field(default_factory=list)
    skipped_revoked: list[str] = field(default_factory=list)
    stale_accounts: list[str] = field(default_factory=list)


class SiteSecrets:
    """One site's secrets directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self.info: dict[str, Any] = {}
        self.accounts: dict[str, dict[str, str]] = {}
        self.revoked: dict[str, dict[str, str]] = {}

    # -- opening --------------------------------------------------------------------------
    @staticmethod
    def initialised(root: str | Path) -> bool:
        """True when `root` holds a site's secrets (`init` has run there)."""
        return (Path(root).expanduser() / SITE_FILE).exists()

    @classmethod
    def open(cls, root: str | Path) -> SiteSecrets:
        """An initialised secrets directory; raises with the fix when it is not."""
        store = cls(root)
        if not (store.root / SITE_FILE).exists():
            raise ProvisioningError(
                f"{store.root} holds no site secrets; run `mpp-provision init` first "
                "(or pass --secrets DIR)"
            )
        store._load()
        return store

    def _load(self) -> None:
        try:
            self.info = json.loads((self.root / SITE_FILE).read_text())
            data = json.loads((self.root / ACCOUNTS_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise ProvisioningError(
                f"{self.root}: secrets unreadable ({exc}); restore them"
            ) from None
        self.accounts = data.get("accounts", {})
        self.revoked = data.get("revoked", {})

    def _save(self) -> None:
        data = {"accounts": self.accounts, "revoked": self.revoked}
        write_private(self.root / ACCOUNTS_FILE, json.dumps(data, indent=2, sort_keys=True) + "\n")

    @property
    def site_id(self) -> str:
        """The site these secrets belong to."""
        return str(self.info["site"])

    @property
    def servers(self) -> list[str]:
        """Names and addresses of the site server, as devices reach it (first: in bundles)."""
        return list(self.info.get("servers", []))

    def check_site(self, site: Site) -> None:
        """Refuse to mix one site's secrets with another site's inventory."""
        if site.site.id != self.site_id:
            raise ProvisioningError(
                f"{self.root} holds the secrets of site {self.site_id!r}, not {site.site.id!r}; "
                "pass the right --secrets directory"
            )

    # -- init -----------------------------------------------------------------------------
    def init(self, site: Site, servers: list[str] | None = None) -> InitReport:
        """Create what is missing: directory, CA, server certificate, accounts. Idempotent."""
        tree = git_work_tree(self.root)
        if tree is not None:
            raise ProvisioningError(
                f"{self.root} is inside the git work tree {tree}; keep secrets out of git: "
                f"choose e.g. --secrets ~/mpp-secrets/{site.site.id}"
            )
        report = InitReport()
        if (self.root / SITE_FILE).exists():
            self._load()
            self.check_site(site)
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            self.info = {"site": site.site.id, "servers": [], "created": now_iso()}
        self.root.chmod(0o700)
        write_private(self.root / ".gitignore", "*\n", 0o644)
        write_private(self.root / "README.txt", README.format(site=site.site.id), 0o644)
        if servers:
            self.info["servers"] = list(dict.fromkeys(servers))
        elif not self.info.get("servers"):
            self.info["servers"] = [site.broker.host]
        write_private(self.root / SITE_FILE, json.dumps(self.info, indent=2) + "\n", 0o644)

        if not (self.root / CA_KEY).exists():
            ca = make_ca(site.site.id)
            write_private(self.root / CA_KEY, ca.key_pem)
            write_private(self.root / CA_CERT, ca.cert_pem, 0o644)
            report.created_ca = True
        wanted = server_hosts(self.servers)
        server_cert = self.root / SERVER_CERT
        if (
            report.created_ca
            or not server_cert.exists()
            or cert_hosts(server_cert.read_bytes()) != wanted
        ):
            server = make_server_cert(self.ca, self.servers)
            write_private(self.root / SERVER_KEY, server.key_pem)
            write_private(server_cert, server.cert_pem, 0o644)
            report.issued_server_cert = True
        web_cert = self.root / WEB_CERT
        if (
            report.created_ca
            or not web_cert.exists()
            or cert_hosts(web_cert.read_bytes()) != wanted
        ):
            web = make_server_cert(self.ca, self.servers)
            write_private(self.root / WEB_KEY, web.key_pem)
            write_private(web_cert, web.cert_pem, 0o644)

        wanted_roles = {HUB: HUB, WEB: WEB, MONITOR: MONITOR, UPLINK: UPLINK} | {
            d: dev.role for d, dev in site.devices.items()
        }
        for name, role in wanted_roles.items():
            if name in self.accounts:
                continue
            if name in self.revoked:
                report.skipped_revoked.append(name)
                continue
            self._issue(name, role)
            report.new_accounts.append(name)
        report.stale_accounts = sorted(set(self.accounts) - set(wanted_roles))
        self._save()
        return report

    def _issue(self, name: str, role: str) -> str:
        password = new_password()
        self.accounts[name] = {
            "role": role,
            "password": password,
            "hash": hash_password(password),
            "issued": now_iso(),
        }
        self.revoked.pop(name, None)
        return password

    # -- reading --------------------------------------------------------------------------
    @property
    def ca(self) -> KeyPair:
        """The site CA (certificate and key)."""
        return KeyPair((self.root / CA_CERT).read_bytes(), (self.root / CA_KEY).read_bytes())

    @property
    def server(self) -> KeyPair:
        """The broker's TLS certificate and key."""
        return KeyPair(
            (self.root / SERVER_CERT).read_bytes(), (self.root / SERVER_KEY).read_bytes()
        )

    @property
    def web_tls(self) -> KeyPair:
        """The web process's https certificate and key (made by `init`)."""
        if not (self.root / WEB_CERT).exists():
            raise ProvisioningError(
                f"{self.root} has no {WEB_CERT}: run `mpp-provision init` again to make it"
            )
        return KeyPair((self.root / WEB_CERT).read_bytes(), (self.root / WEB_KEY).read_bytes())

    def password(self, name: str) -> str:
        """The broker password of account `name`."""
        if name in self.revoked:
            raise ProvisioningError(
                f"{name} was revoked on {self.revoked[name].get('revoked', '?')}; "
                f"give it new credentials with `mpp-provision rotate {name}`"
            )
        if name not in self.accounts:
            raise ProvisioningError(f"{name} has no broker account; run `mpp-provision init`")
        return self.accounts[name]["password"]

    def broker_accounts(self) -> list[Account]:
        """Every live account, for the password file and the ACL."""
        for name, record in self.accounts.items():
            if not verify_password(record["password"], record["hash"]):
                raise ProvisioningError(f"{name}: stored hash does not match; rotate it")
        return [
            Account(name, record["role"], record["hash"])
            for name, record in sorted(self.accounts.items())
        ]

    # -- changes --------------------------------------------------------------------------
    def revoke(self, name: str) -> None:
        """Remove an account: once the broker files are rewritten and reloaded, it is refused."""
        if name in RESERVED_USERS:
            raise ProvisioningError(
                f"{name!r} is the {name} account; use `mpp-provision rotate {name}` instead"
            )
        if name not in self.accounts:
            known = "already revoked" if name in self.revoked else "no such account"
            raise ProvisioningError(f"{name}: {known}")
        record = self.accounts.pop(name)
        self.revoked[name] = {"role": record["role"], "revoked": now_iso()}
        self._save()

    def rotate(self, name: str, role: str) -> str:
        """New random password for `name` (the old one stops working after reload)."""
        password = self._issue(name, role)
        self._save()
        return password

    def replace(self, old: str, new: str) -> str:
        """Move `old`'s slot to a new device id: new account, old one revoked."""
        if new in self.accounts:
            raise ProvisioningError(f"{new} already has a broker account; choose an unused id")
        role = self.accounts.get(old, self.revoked.get(old, {})).get("role")
        if role is None:
            raise ProvisioningError(f"{old}: no such account in {self.root}")
        if old in self.accounts:
            record = self.accounts.pop(old)
            self.revoked[old] = {"role": record["role"], "revoked": now_iso(), "replaced_by": new}
        password = self._issue(new, role)
        self._save()
        return password

    # -- broker settings of the last `broker` run ------------------------------------------
    def save_broker_settings(self, settings: dict[str, Any]) -> None:
        """Remember how `broker` was run, so revoke/replace can rewrite the same files."""
        write_private(self.root / BROKER_SETTINGS, json.dumps(settings, indent=2) + "\n")

    def broker_settings(self) -> dict[str, Any] | None:
        """The settings of the last `broker` run, if any."""
        path = self.root / BROKER_SETTINGS
        return json.loads(path.read_text()) if path.exists() else None
