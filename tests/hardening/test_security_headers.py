"""Security headers and transport (issue 8, item 5): no server version, CORS closed, nosniff,
no-store, and HTTPS through ``tearline serve --ssl-keyfile/--ssl-certfile``."""

from __future__ import annotations

import datetime
import ssl
import time

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import TAXII

pytestmark = pytest.mark.e2e


def _assert_hardened(headers) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert headers["x-frame-options"] == "DENY"
    assert "access-control-allow-origin" not in headers
    server = headers.get("server", "")
    assert "uvicorn" not in server.lower() and not any(ch.isdigit() for ch in server), server


def test_every_answer_carries_the_security_headers(raw_client, analyst, api):
    for method, url, headers in [
        ("GET", "/healthz", {}),
        ("GET", "/taxii2/", analyst),
        ("GET", "/taxii2/", {}),
        ("GET", f"{api}/collections/nope/objects/", analyst),
        ("GET", "/api/v1/items", {}),
        ("GET", "/no/such/path", {}),
    ]:
        response = raw_client.request(method, url, headers=headers)
        _assert_hardened(response.headers)


def test_cors_is_closed_by_default(raw_client, analyst):
    """A browser preflight from any origin gets no Access-Control-Allow-* header, nor does a simple request."""
    for url in ("/taxii2/", "/api/v1/items", "/healthz"):
        preflight = raw_client.options(
            url,
            headers={
                "Origin": "https://evil.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code >= 400 or not any(
            name.startswith("access-control-") for name in preflight.headers
        ), preflight.headers
        assert not any(name.startswith("access-control-") for name in preflight.headers)
        simple = raw_client.get(url, headers=analyst | {"Origin": "https://evil.example"})
        assert not any(name.startswith("access-control-") for name in simple.headers)


def test_live_server_sends_no_server_header(settings, server_factory):
    server = server_factory(settings)
    response = httpx.get(f"{server.base_url}/taxii2/", headers={"Accept": TAXII})
    assert response.status_code == 401
    assert "server" not in response.headers, response.headers
    _assert_hardened(response.headers)


def _self_signed(directory) -> tuple:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "tls.key", directory / "tls.crt"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def test_serve_speaks_https_with_the_ssl_options(settings, server_factory, tmp_path):
    key_path, cert_path = _self_signed(tmp_path)
    server = server_factory(
        settings, args=["--ssl-keyfile", str(key_path), "--ssl-certfile", str(cert_path)], wait=False
    )
    url = f"https://127.0.0.1:{server.port}/healthz"
    context = ssl.create_default_context(cafile=str(cert_path))
    deadline = time.monotonic() + 60  # a guard against a server that never comes up, not a timing assertion
    while True:
        assert server.process.poll() is None, server.log_path.read_text()[-2000:]
        try:
            response = httpx.get(url, verify=context)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, server.log_path.read_text()[-2000:]
            time.sleep(0.2)
    assert response.status_code == 200
    assert "server" not in response.headers
    with pytest.raises(httpx.TransportError):  # plain HTTP on the TLS port gets no answer
        httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5).raise_for_status()
