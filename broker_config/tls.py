"""The site's own certificate authority and the broker's server certificate (`cryptography`).

Devices trust only the site CA: a broker (or a laptop pretending to be one) without a
certificate from it is refused. The server certificate names every address devices use to
reach the site server, plus 127.0.0.1 for tests and the server itself.

    ca = make_ca("mpp-banjarbaru")
    server = make_server_cert(ca, ["mpp-server.local", "192.168.10.2"])
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from protocol.errors import MppError

# Pis have no real-time clock: before NTP answers, a fresh card's clock is the image's build
# date. Certificates are therefore valid from well before they were made.
BACKDATE = timedelta(days=730)
CA_LIFETIME = timedelta(days=20 * 365)
SERVER_LIFETIME = timedelta(days=10 * 365)
ALWAYS_SERVED = ("127.0.0.1", "localhost")


class CertificateError(MppError, ValueError):
    """A certificate or key that cannot be used (wrong file, unreadable, expired)."""


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate with its PEM private key."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        """The parsed certificate."""
        return x509.load_pem_x509_certificate(self.cert_pem)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_ca(site_id: str, now: datetime | None = None) -> KeyPair:
    """A new certificate authority for one site."""
    now = now or datetime.now(UTC)
    key = _key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Mal Pelayanan Publik"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"MPP site CA {site_id}"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pem(key))


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def server_hosts(hosts: list[str] | tuple[str, ...]) -> list[str]:
    """The names a server certificate must carry: the given ones, then loopback."""
    out: list[str] = []
    for host in [*hosts, *ALWAYS_SERVED]:
        if host and host not in out:
            out.append(host)
    return out


def make_server_cert(ca: KeyPair, hosts: list[str], now: datetime | None = None) -> KeyPair:
    """A TLS server certificate for the site broker, signed by the site CA."""
    now = now or datetime.now(UTC)
    try:
        ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
        ca_cert = ca.cert
    except ValueError as exc:
        raise CertificateError(f"the site CA cannot be read: {exc}") from None
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise CertificateError("the site CA key is not an EC key made by `mpp-provision init`")
    names = server_hosts(hosts)
    key = _key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + SERVER_LIFETIME, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([_general_name(h) for h in names]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pem(key))


def cert_hosts(cert_pem: bytes) -> list[str]:
    """The DNS names and IP addresses a certificate is valid for."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(name.value) for name in san]


def expires_at(cert_pem: bytes) -> datetime:
    """When a certificate stops being valid."""
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc
