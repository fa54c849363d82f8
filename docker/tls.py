"""A self-signed TLS certificate for nginx, made once when none is there yet.

    python docker/tls.py DIRECTORY

writes DIRECTORY/certificate.pem and DIRECTORY/key.pem (an ECDSA P-256 key, readable by its
owner only) unless both exist, for the names in TLS_HOSTNAMES (comma-separated; default
"localhost,127.0.0.1"). compose.yml runs it before nginx starts; a real deployment gives
nginx its own certificate instead (TLS_CERTIFICATE, TLS_CERTIFICATE_KEY), and the one made
here is never used. Browsers and clients will not trust a self-signed certificate: it
encrypts, but proves nothing about the server until a client pins it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 397  # the longest validity browsers accept for a server certificate


def subject_names(hostnames: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for name in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    return names


def self_signed(hostnames: list[str]) -> tuple[bytes, bytes]:
    """A new key and a certificate for ``hostnames`` signed with it, both PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(subject_names(hostnames)), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def write_new(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` whole or not at all (a temporary file renamed into place)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    temporary.replace(path)


def main(directory: Path) -> None:
    certificate, key = directory / "certificate.pem", directory / "key.pem"
    if certificate.exists() and key.exists():
        print(f"tls: keeping the certificate in {directory}")
        return
    hostnames = [name.strip() for name in os.environ.get("TLS_HOSTNAMES", "localhost,127.0.0.1").split(",")]
    certificate_pem, key_pem = self_signed([name for name in hostnames if name])
    write_new(key, key_pem, 0o600)
    write_new(certificate, certificate_pem, 0o644)
    print(f"tls: made a self-signed certificate for {', '.join(hostnames)} in {directory}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
