"""`mpp-provision region-broker`: the regional Mosquitto's files from the region configuration.

The regional CA, the broker's server certificate and one account per site (plus the region
service's) are made once and kept in the region's secrets directory (outside git, 0600); a
site added to the configuration gets an account at the next run, a removed one loses it. Each
site's bridge password is written to `SECRETS/bridges/<site>` for that site's technician
(`MPP_BRIDGE_PASSWORD=... mpp-provision --site SITE.toml broker --bridge HOST:PORT
--bridge-ca region-ca.crt`).

    written = write_region_broker(config, Path("~/mpp-secrets/region-kalsel"), out, layout,
                                  servers=["region.kalsel.go.id"])
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from broker_config.files import write_broker_files
from broker_config.passwords import hash_password, new_password
from broker_config.region import REGION_USER, RegionLayout, render_region_broker
from broker_config.tls import KeyPair, cert_hosts, make_ca, make_server_cert
from region.config import RegionConfig

SECRETS_FILE = "region-secrets.json"
SERVICE_PASSWORD = "region-broker-password"


def _load(path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return {}


def _save(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)


def write_region_broker(
    config: RegionConfig,
    secrets_dir: Path,
    out_dir: Path,
    layout: RegionLayout,
    servers: list[str],
) -> list[Path]:
    """Write the regional broker's files to `out_dir` (and the bridges' passwords to
    `secrets_dir/bridges/`); returns the paths written."""
    secrets_dir = secrets_dir.expanduser()
    store_path = secrets_dir / SECRETS_FILE
    data = _load(store_path)
    if "ca" not in data:
        ca = make_ca(f"region {config.region.id}")
        data["ca"] = {"cert": ca.cert_pem.decode(), "key": ca.key_pem.decode()}
    ca = KeyPair(data["ca"]["cert"].encode(), data["ca"]["key"].encode())
    server = data.get("server")
    if server is None or (
        servers and cert_hosts(server["cert"].encode())[: len(servers)] != servers
    ):
        made = make_server_cert(ca, servers)
        server = {"cert": made.cert_pem.decode(), "key": made.key_pem.decode()}
        data["server"] = server
    accounts = data.setdefault("accounts", {})
    wanted = [REGION_USER, *(site.id for site in config.sites)]
    for user in list(accounts):
        if user not in wanted:
            del accounts[user]  # a site removed from the configuration loses its account
    for user in wanted:
        if user not in accounts:
            password = new_password()
            accounts[user] = {"password": password, "hash": hash_password(password)}
    _save(store_path, data)
    files = render_region_broker(
        config.region.id,
        config.region.name,
        layout,
        config.broker.prefix,
        {user: accounts[user]["hash"] for user in wanted},
        ca_cert_pem=ca.cert_pem,
        server_cert_pem=server["cert"].encode(),
        server_key_pem=server["key"].encode(),
    )
    files[SERVICE_PASSWORD] = accounts[REGION_USER]["password"].encode() + b"\n"
    written = write_broker_files(out_dir, files)
    os.chmod(out_dir / SERVICE_PASSWORD, 0o600)
    bridges = secrets_dir / "bridges"
    bridges.mkdir(parents=True, exist_ok=True, mode=0o700)
    for site in config.sites:
        path = bridges / site.id
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(accounts[site.id]["password"] + "\n")
        written.append(path)
    return written
