"""Certificates for a TLS cluster: one private CA, and a certificate it signs.

The scheduler, its workers and its users present the same kind of
certificate (distributed checks that the peer's is signed by the cluster's CA;
it does not check host names), so one CA plus one certificate per party is
all a shared cluster needs. Made with the ``cryptography`` package.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ClusterUsageError


@dataclass(frozen=True)
class TLSFiles:
    """PEM files, as a profile's ``tls`` mapping takes them."""

    ca_file: Path
    cert: Path
    key: Path

    def as_profile(self) -> dict[str, str]:
        return {"ca_file": str(self.ca_file), "cert": str(self.cert), "key": str(self.key)}


def make_certificates(directory: str | os.PathLike[str], names: tuple[str, ...] = ("cluster",),
                      hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
                      days: int = 365) -> dict[str, TLSFiles]:
    """Write a new CA and one signed certificate per name into ``directory``.

    Returns ``{name: TLSFiles}``. Keys are written readable by their owner only.
    The CA's own key is not kept: to add a party later, make a new set.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = Path(directory).resolve()  # profiles must work from any directory
    folder.mkdir(parents=True, exist_ok=True)
    taken = [p for n in names for p in (folder / f"{n}.pem", folder / f"{n}-key.pem")]
    taken = [p for p in [folder / "ca.pem", *taken] if p.exists()]
    if taken:
        raise ClusterUsageError(f"not overwriting existing certificate files: {taken[0]}")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "suanli cluster CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = folder / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    made = {}
    for name in names:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        cert_path, key_path = folder / f"{name}.pem", folder / f"{name}-key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
        made[name] = TLSFiles(ca_path, cert_path, key_path)
    return made
