"""A hostile ~/.ssh/config cannot switch host-key checking off (RELIABILITY.md §0.2, F4, S3)."""

from __future__ import annotations

from pathlib import Path

import asyncssh
import pytest

from console.lab import Lab
from console.transports import HostKeyRejected
from console.transports.ssh import SshPool, connect_verified, load_identity
from tests.integration.conftest import node_with

HOSTILE = "Host *\n    UserKnownHostsFile none\n    StrictHostKeyChecking no\n"


@pytest.fixture
def hostile_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(HOSTILE)
    monkeypatch.setenv("HOME", str(home))
    return home


async def test_the_hostile_config_does_disable_checking_for_asyncssh_defaults(
    lab: Lab, hostile_home: Path
):
    """The control: plain asyncssh, left to its defaults, trusts an unknown host here."""
    node = lab.inventory.nodes["cpu01"]
    keys = load_identity(node.ssh.identity, node.name)
    async with asyncssh.connect(
        "127.0.0.1", node.ssh.port, username="ops", client_keys=keys, agent_path=None
    ) as conn:
        assert (await conn.run("hostname")).stdout == "cpu01\n"


async def test_an_unknown_host_is_refused_despite_a_hostile_config(
    lab: Lab, hostile_home: Path, tmp_path: Path
):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    node = node_with(lab.inventory.nodes["cpu01"], known_hosts=str(empty))
    pool = SshPool(connect_timeout=2)
    try:
        with pytest.raises(HostKeyRejected, match="HOST KEY REJECTED for cpu01"):
            await pool.run(node, "hostname", timeout=5)
    finally:
        await pool.close()
    assert lab.hosts["cpu01"].commands == []
    assert lab.hosts["cpu01"].auth_attempts == 0


async def test_a_rotated_key_is_refused_despite_a_hostile_config(lab: Lab, hostile_home: Path):
    lab.faults.inject("host.key_rotated", "gpu01")
    node = lab.inventory.nodes["gpu01"]
    with pytest.raises(HostKeyRejected):
        await connect_verified(
            "127.0.0.1",
            node.ssh.port,
            username="ops",
            known_hosts=node.ssh.known_hosts,
            client_keys=load_identity(node.ssh.identity, node.name),
            label="gpu01",
            connect_timeout=2,
        )
    assert lab.hosts["gpu01"].auth_attempts == 0
    assert lab.hosts["gpu01"].sessions == 0
