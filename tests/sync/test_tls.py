"""HTTPS: the configured CA bundle is trusted, anything else is refused as unavailable."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kiosk.settings import ConfigError
from kiosk.sync.client import ServerUnavailable, SyncClient
from tests.sync.conftest import sync_settings
from tests.sync.test_garbage import Bad, Handler


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test loan server")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def https(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """A tiny HTTPS server answering like a loan server: (url, its cert, a token file)."""
    cert, key = self_signed(tmp_path)
    server = Bad(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    token = tmp_path / "token"
    token.write_text("tls-test-token", encoding="utf-8")
    try:
        yield f"https://127.0.0.1:{server.server_port}", cert, token
    finally:
        server.shutdown()
        server.server_close()


def test_the_configured_ca_is_trusted_and_the_system_cas_are_not_enough(https) -> None:
    url, cert, token = https
    trusted = SyncClient(sync_settings(url, token, ca_bundle=str(cert)))
    assert trusted.get("/staff") == {"items": []}
    stranger = SyncClient(sync_settings(url, token))
    with pytest.raises(ServerUnavailable, match="TLS failed"):
        stranger.get("/staff")


def test_a_missing_ca_bundle_is_a_configuration_error(tmp_path: Path) -> None:
    settings = sync_settings("https://127.0.0.1:9", tmp_path, ca_bundle=str(tmp_path / "no.pem"))
    with pytest.raises(ConfigError, match="does not exist"):
        SyncClient(settings, token="t")
