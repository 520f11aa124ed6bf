"""The secrets directory: outside git, private, idempotent; revoke, rotate, replace."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from broker_config.passwords import verify_password
from broker_config.tls import cert_hosts
from protocol.site import parse_site
from provisioning.inventory import ProvisioningError
from provisioning.site_secrets import SiteSecrets
from tests.conftest import example_text


@pytest.fixture
def site():
    return parse_site(example_text())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_private_secrets(tmp_path: Path, site) -> None:
    store = SiteSecrets(tmp_path / "s")
    report = store.init(site, ["mpp-server.local", "192.168.10.2"])
    assert report.created_ca and report.issued_server_cert
    assert len(report.new_accounts) == 44  # 40 devices, the hub, the web app, the monitor, uplink
    assert mode(store.root) == 0o700
    for name in ("ca.key", "server.key", "web.key", "accounts.json"):
        assert mode(store.root / name) == 0o600, name
    assert (store.root / ".gitignore").read_text() == "*\n"
    assert cert_hosts(store.server.cert_pem) == [
        "mpp-server.local",
        "192.168.10.2",
        "127.0.0.1",
        "localhost",
    ]
    passwords = {name: store.password(name) for name in store.accounts}
    assert len(set(passwords.values())) == 44  # every account its own random password
    assert cert_hosts(store.web_tls.cert_pem) == cert_hosts(store.server.cert_pem)
    for name, record in store.accounts.items():
        assert verify_password(passwords[name], record["hash"])
        assert record["role"] == (
            name if name in ("hub", "web", "monitor", "uplink") else site.devices[name].role
        )


def test_init_is_idempotent(tmp_path: Path, site) -> None:
    store = SiteSecrets(tmp_path / "s")
    store.init(site, ["mpp-server.local"])
    before = (store.root / "accounts.json").read_bytes(), store.ca.cert_pem, store.server.cert_pem
    report = SiteSecrets(tmp_path / "s").init(site)
    assert not report.created_ca and not report.issued_server_cert and not report.new_accounts
    store = SiteSecrets.open(tmp_path / "s")
    assert before == (
        (store.root / "accounts.json").read_bytes(),
        store.ca.cert_pem,
        store.server.cert_pem,
    )
    # A new server name means a new server certificate, same CA.
    report = store.init(site, ["mpp-server.local", "10.0.0.2"])
    assert report.issued_server_cert and not report.created_ca
    assert "10.0.0.2" in cert_hosts(store.server.cert_pem)


def test_init_refuses_a_git_work_tree(tmp_path: Path, site) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    with pytest.raises(ProvisioningError, match=r"inside the git work tree .*keep secrets out"):
        SiteSecrets(tmp_path / "repo" / "secrets").init(site)
    assert not (tmp_path / "repo" / "secrets").exists()
    # A directory the work tree ignores (e.g. a dotfiles repo in $HOME) is fine.
    (tmp_path / "repo" / ".gitignore").write_text("mpp-secrets/\n")
    SiteSecrets(tmp_path / "repo" / "mpp-secrets" / "site").init(site)


def test_secrets_of_another_site_are_refused(tmp_path: Path, site) -> None:
    SiteSecrets(tmp_path / "s").init(site)
    other = parse_site(example_text().replace('id = "mpp-banjarbaru"', 'id = "mpp-other"'))
    with pytest.raises(
        ProvisioningError, match=r"secrets of site 'mpp-banjarbaru', not 'mpp-other'"
    ):
        SiteSecrets.open(tmp_path / "s").check_site(other)


def test_open_without_init_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ProvisioningError, match=r"run `mpp-provision init` first"):
        SiteSecrets.open(tmp_path / "nothing")


def test_revoke_rotate_replace(tmp_path: Path, site) -> None:
    store = SiteSecrets(tmp_path / "s")
    store.init(site)
    old = store.password("caller-03")
    store.revoke("caller-03")
    assert "caller-03" not in {a.username for a in store.broker_accounts()}
    with pytest.raises(ProvisioningError, match=r"caller-03 was revoked .*rotate caller-03"):
        store.password("caller-03")
    with pytest.raises(ProvisioningError, match=r"already revoked"):
        store.revoke("caller-03")
    # init does not quietly bring a revoked device back
    assert SiteSecrets.open(store.root).init(site).skipped_revoked == ["caller-03"]
    new = store.rotate("caller-03", "caller")
    assert new != old and store.password("caller-03") == new
    store.replace("caller-04", "caller-04b")
    assert store.accounts["caller-04b"]["role"] == "caller"
    assert store.revoked["caller-04"]["replaced_by"] == "caller-04b"
    with pytest.raises(ProvisioningError, match=r"'hub' is the hub account"):
        store.revoke("hub")
