"""``server.tls``: ``breakwater serve`` answers HTTPS with the configured certificate and key, with
one worker and with several; bad files are refused at start with the key path that names them.

The certificate is a throwaway self-signed one made in ``tmp_path`` with ``cryptography``; the
client trusts exactly it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import ssl
import subprocess
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from breakwater.core.config import parse_config
from breakwater.core.config.paths import anchor_paths
from breakwater.runtime.tls import tls_options, tls_problems
from tests.cli.test_cli import _free_port, _spawn


def _certificate(directory: Path, name: str = "gateway", password: bytes | None = None) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    return cert_path, key_path


def _config(tmp_path: Path, tls: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"ledger: {{url: 'sqlite:///{tmp_path}/ledger.db', spool_path: '{tmp_path}/ledger.spool'}}\n"
        "access: {enabled: false}\n"
        f"server: {{tls: {tls}}}\n"
        "providers:\n  m: {type: mock, wire: openai}\n"
        "deployments:\n  d: {provider: m, model: mock-gpt}\n"
        "routes:\n  fast: {deployments: [d]}\n"
    )
    return path


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_answers_https_with_the_configured_certificate(tmp_path: Path, workers: int) -> None:
    cert, _ = _certificate(tmp_path)
    config = _config(tmp_path, "{cert: 'file:gateway.crt', key: 'file:gateway.key'}")  # relative: beside the file
    port = _free_port()
    proc = _spawn("serve", "--config", str(config), "--port", str(port), "--workers", str(workers))
    trusted = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{port}"
    try:
        client = httpx.Client(verify=trusted, timeout=5)
        _wait_ready_tls(client, url, proc)
        for _ in range(2 * workers):  # new connections: with two workers, the kernel spreads them
            r = client.post(
                f"{url}/v1/chat/completions",
                json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]},
                headers={"connection": "close"},
            )
            assert r.status_code == 200 and r.json()["object"] == "chat.completion"
        client.close()
        with pytest.raises(httpx.TransportError):  # plain HTTP on the TLS port gets no answer
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        other, _ = _certificate(tmp_path, "stranger")
        with pytest.raises(httpx.TransportError):  # a client that trusts another certificate refuses it
            httpx.get(f"{url}/healthz", verify=ssl.create_default_context(cafile=str(other)), timeout=2)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert f"listening on {url} " in out
    assert proc.returncode == 0, err


def _wait_ready_tls(client: httpx.Client, url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited early: {proc.communicate()}"
        try:
            if client.get(f"{url}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling a condition with a deadline, not a fixed wait
    pytest.fail("server did not become ready")


def test_an_encrypted_key_takes_its_passphrase_by_reference(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path, password=b"s3cret-passphrase")
    config = parse_config(
        f"server: {{tls: {{cert: 'file:{cert}', key: 'file:{key}', key_password: env:TLS_KEY_PASSWORD}}}}\n"
    )
    assert tls_problems(config.server.tls, {"TLS_KEY_PASSWORD": "s3cret-passphrase"}) == []
    assert tls_options(config.server.tls, {"TLS_KEY_PASSWORD": "s3cret-passphrase"}) == {
        "ssl_certfile": str(cert),
        "ssl_keyfile": str(key),
        "ssl_keyfile_password": "s3cret-passphrase",
    }
    (wrong,) = tls_problems(config.server.tls, {"TLS_KEY_PASSWORD": "guess"})
    assert wrong.path == "server.tls" and "guess" not in wrong.message
    (unset,) = tls_problems(config.server.tls, {})
    assert unset.path == "server.tls.key_password"


def test_bad_files_are_named_at_start(tmp_path: Path) -> None:
    cert, _ = _certificate(tmp_path)
    _, other_key = _certificate(tmp_path, "other")
    missing = parse_config(f"server: {{tls: {{cert: 'file:{cert}', key: 'file:{tmp_path}/nope.key'}}}}")
    (problem,) = tls_problems(missing.server.tls, {})
    assert problem.path == "server.tls.key" and "nope.key" in problem.message
    mismatched = parse_config(f"server: {{tls: {{cert: 'file:{cert}', key: 'file:{other_key}'}}}}")
    (problem,) = tls_problems(mismatched.server.tls, {})
    assert problem.path == "server.tls" and "cannot load" in problem.message
    config = _config(tmp_path, f"{{cert: 'file:{cert}', key: 'file:{other_key}'}}")
    proc = _spawn("serve", "--config", str(config), "--port", str(_free_port()))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "server.tls" in err


def test_tls_files_are_references_anchored_beside_the_config(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="file reference"):
        parse_config("server: {tls: {cert: /etc/x.pem, key: 'file:/etc/x.key'}}")
    config = anchor_paths(parse_config("server: {tls: {cert: 'file:a.crt', key: 'file:/abs/a.key'}}"), tmp_path)
    assert config.server.tls is not None
    assert (config.server.tls.cert, config.server.tls.key) == (f"file:{tmp_path}/a.crt", "file:/abs/a.key")


def test_no_tls_means_no_ssl_options() -> None:
    assert tls_options(None, os.environ) == {}
    assert tls_problems(None, os.environ) == []
