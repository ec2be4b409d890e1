"""TLS for the relay: a development certificate on first run, TLS 1.2+ server contexts, reload on SIGHUP."""

import datetime
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_self_signed(cert_path: Path, key_path: Path, *, hostname: str, days: int = 825) -> None:
    """Write a self-signed certificate for `hostname` (and localhost, 127.0.0.1, ::1) with its private key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    alt_names = {x509.DNSName(hostname), x509.DNSName("localhost"),
                 x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))}
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sorted(alt_names, key=str)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    key_path.touch(mode=0o600, exist_ok=True)
    key_path.chmod(0o600)
    key_path.write_bytes(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure_certificate(cert: str | Path, key: str | Path, *, hostname: str) -> bool:
    """Make a development certificate when neither file exists; True when one was made."""
    cert, key = Path(cert), Path(key)
    if cert.exists() and key.exists():
        return False
    if cert.exists() != key.exists():
        missing = key if cert.exists() else cert
        raise FileNotFoundError(f"TLS {'key' if missing == key else 'certificate'} {missing} is missing")
    make_self_signed(cert, key, hostname=hostname)
    return True


def server_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """A server context offering TLS 1.2 and 1.3 only (RFC 8996 deprecates 1.0 and 1.1)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(str(cert), str(key))
    return context


class TlsStore:
    """The current server context; every new connection takes it from here, so reload() affects new ones only."""

    def __init__(self, cert: str | Path, key: str | Path):
        self.cert, self.key = Path(cert), Path(key)
        self.context = server_context(self.cert, self.key)

    def reload(self) -> None:
        # Built completely before the swap: a broken new file leaves the old certificate in service.
        self.context = server_context(self.cert, self.key)


def tls_version(transport) -> str:
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    return ssl_object.version() if ssl_object is not None else ""
