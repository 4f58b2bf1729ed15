"""The Prometheus client against a real Prometheus behind TLS and basic auth (its
``--web.config.file``): the certificate verified against a CA file, the password
read from its reference, a refusal said as such."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from console.inventory.model import PrometheusSource
from console.lab.prometheus_peer import PrometheusPeer, find_binary
from console.lab.tls import ensure_cert
from console.transports.prometheus import PromClient, PromError, PromUnavailable, read_ref
from tests.integration.support import open_transports

PASSWORD = "lab-prom-password"  # a throwaway password of a test peer


@pytest.fixture(scope="module")
def secure_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusPeer]:
    if find_binary() is None:
        pytest.fail("prometheus is not installed: run `sudo scripts/install-peers.sh`")
    folder = tmp_path_factory.mktemp("secure-prom")
    cert, key = ensure_cert(folder / "tls", "dcconsole test prometheus")
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    web = folder / "web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        f"basic_auth_users:\n  dcc: '{hashed}'\n",
        encoding="utf-8",
    )
    peer = PrometheusPeer(
        folder / "prom", {}, web_config=web, ca_file=cert, basic_auth=("dcc", PASSWORD)
    )
    peer.start(wait_targets=False)
    try:
        yield peer
    finally:
        peer.stop()


def server(peer: PrometheusPeer, folder: Path, **fields: object) -> PrometheusSource:
    (folder / "password").write_text(PASSWORD + "\n", encoding="utf-8")
    base = {
        "url": peer.url,
        "username": "dcc",
        "password": "file:password",
        "ca_file": str(peer.ca_file),
    }
    return PrometheusSource.model_validate({**base, **fields})


async def test_tls_verified_against_the_ca_file_and_the_password_from_its_file(
    secure_peer: PrometheusPeer, tmp_path: Path
):
    async with open_transports() as transports:
        client = PromClient(transports.http, server(secure_peer, tmp_path), base_dir=tmp_path)
        result = await client.query("vector(1)")
    assert [s.value for s in result.samples] == [1.0]


async def test_a_wrong_password_is_said_to_be_refused(secure_peer: PrometheusPeer, tmp_path):
    async with open_transports() as transports:
        src = server(secure_peer, tmp_path)
        (tmp_path / "wrong").write_text("nope\n", encoding="utf-8")
        client = PromClient(
            transports.http, src.model_copy(update={"password": "file:wrong"}), base_dir=tmp_path
        )
        with pytest.raises(PromError) as err:
            await client.query("vector(1)")
    assert err.value.error_type == "auth" and err.value.status == 401
    assert "nope" not in str(err.value) and PASSWORD not in str(err.value)


async def test_an_unverified_certificate_is_refused(secure_peer: PrometheusPeer, tmp_path):
    async with open_transports() as transports:
        src = server(secure_peer, tmp_path).model_copy(update={"ca_file": None})
        client = PromClient(transports.http, src, base_dir=tmp_path)
        with pytest.raises(PromUnavailable, match="TLS certificate not trusted"):
            await client.query("vector(1)")


def test_a_bearer_token_is_read_from_its_reference_when_sent(monkeypatch, tmp_path):
    monkeypatch.setenv("DCC_TEST_PROM_TOKEN", "t0ken")
    src = PrometheusSource(url="https://p:9090", token="env:DCC_TEST_PROM_TOKEN")
    client = PromClient(None, src, base_dir=tmp_path)  # type: ignore[arg-type]
    assert client._headers()["Authorization"] == "Bearer t0ken"
    monkeypatch.delenv("DCC_TEST_PROM_TOKEN")
    with pytest.raises(PromError, match="DCC_TEST_PROM_TOKEN is not set"):
        read_ref("env:DCC_TEST_PROM_TOKEN", tmp_path)
