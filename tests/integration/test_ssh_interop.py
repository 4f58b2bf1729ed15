"""Interoperability with OpenSSH: our pool against sshd, OpenSSH's client against the lab."""

from __future__ import annotations

import asyncssh
import pytest

from console.lab import Lab
from console.transports import HostKeyRejected
from console.transports.proc import ProcRunner
from console.transports.ssh import SshPool
from tests.integration.conftest import OpenSshServer

pytestmark = pytest.mark.peer


async def test_pool_runs_a_command_on_openssh_sshd(openssh_server: OpenSshServer):
    pool = SshPool(connect_timeout=5)
    try:
        result = await pool.run(openssh_server.node(), "echo hi; exit 3", timeout=10)
        again = await pool.run(openssh_server.node(), "echo again", timeout=10)
    finally:
        await pool.close()
    assert result.stdout == "hi\n"
    assert result.exit_status == 3
    assert again.stdout == "again\n"
    assert pool.stats.connects == 1


async def test_a_changed_host_key_on_sshd_is_refused(openssh_server: OpenSshServer, tmp_path):
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{openssh_server.port} {other[0]} {other[1]}\n")
    pool = SshPool(connect_timeout=5)
    try:
        with pytest.raises(HostKeyRejected, match=r"HOST KEY REJECTED for sshd01 \(127\.0\.0\.1:"):
            await pool.run(openssh_server.node(known_hosts=str(known)), "true", timeout=10)
    finally:
        await pool.close()


def _ssh_argv(lab: Lab, name: str, command: str) -> list[str]:
    host = lab.hosts[name]
    return [
        "ssh",
        "-F", "/dev/null",
        "-i", str(lab.state_dir / "id_ed25519"),
        "-o", f"UserKnownHostsFile={lab.state_dir / 'known_hosts'}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes",
        "-p", str(host.port),
        f"ops@{lab.bind}",
        command,
    ]  # fmt: skip


async def test_openssh_client_verifies_and_runs_a_command_on_a_lab_host(lab: Lab):
    result = await ProcRunner().run(_ssh_argv(lab, "gpu02", "hostname"), timeout=20)
    assert result.exit_status == 0, result.stderr
    assert result.stdout == "gpu02\n"
    assert lab.hosts["gpu02"].commands == ["hostname"]


async def test_openssh_client_refuses_a_rotated_lab_host_key(lab: Lab):
    lab.faults.inject("host.key_rotated", "gpu02")
    result = await ProcRunner().run(_ssh_argv(lab, "gpu02", "hostname"), timeout=20)
    assert result.exit_status == 255
    assert "HOST IDENTIFICATION HAS CHANGED" in result.stderr
    assert lab.hosts["gpu02"].commands == []
