"""A private CA, a server certificate for 127.0.0.1 and a client certificate, generated for one test."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(folder: Path, stem: str, certificate: x509.Certificate, key) -> tuple[Path, Path]:
    cert_path, key_path = folder / f"{stem}.crt", folder / f"{stem}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _issue(subject: str, key, issuer: str, issuer_key, ca: bool, ip: str | None = None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_certificates(folder: Path) -> dict[str, Path]:
    """Paths of ca, cert and key (the broker's), client_cert and client_key, and other_ca (a CA that signed
    nothing here)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_path, _ = _write(folder, "ca", _issue("edge test CA", ca_key, "edge test CA", ca_key, ca=True), ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    cert, key = _write(
        folder, "broker", _issue("127.0.0.1", server_key, "edge test CA", ca_key, ca=False, ip="127.0.0.1"), server_key
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert, client_key_path = _write(
        folder, "box", _issue("box", client_key, "edge test CA", ca_key, ca=False), client_key
    )
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_ca, _ = _write(
        folder, "other-ca", _issue("another CA", other_key, "another CA", other_key, ca=True), other_key
    )
    return {
        "ca": ca_path,
        "cert": cert,
        "key": key,
        "client_cert": client_cert,
        "client_key": client_key_path,
        "other_ca": other_ca,
    }
