"""The SSH pool against lab hosts: pooling, caps, timeouts and host faults."""

from __future__ import annotations

import asyncio
import time

import pytest

from console.lab import Lab
from console.transports import (
    MAX_OUTPUT_BYTES,
    AuthenticationFailed,
    CommandTimeout,
    HostKeyRejected,
    HostUnreachable,
)
from console.transports.ssh import SshPool
from tests.integration.conftest import LabTestEmulation, node_with, wait_for


@pytest.fixture
async def pool():
    p = SshPool(connect_timeout=2, login_timeout=3)
    yield p
    await p.close()


async def test_runs_a_command_and_reports_stdout_and_exit_status(lab: Lab, pool: SshPool):
    node = lab.inventory.nodes["gpu01"]
    result = await pool.run(node, "hostname", timeout=5)
    assert result.stdout == "gpu01\n"
    assert result.exit_status == 0 and result.ok
    missing = await pool.run(node, "ibstat", timeout=5)
    assert missing.exit_status == 127
    assert "bash: ibstat: command not found" in missing.stderr


async def test_frame_answers_uptime_and_loadavg(lab: Lab, pool: SshPool):
    node = lab.inventory.nodes["cpu01"]
    uptime = await pool.run(node, "uptime", timeout=5)
    assert "load average:" in uptime.stdout
    loadavg = await pool.run(node, "cat /proc/loadavg", timeout=5)
    assert len(loadavg.stdout.split()) == 5
    assert (await pool.run(node, "true", timeout=5)).exit_status == 0


async def test_many_commands_on_one_host_share_one_connection(lab: Lab, pool: SshPool):
    node = lab.inventory.nodes["gpu02"]
    results = await asyncio.gather(*(pool.run(node, "hostname", timeout=5) for _ in range(20)))
    assert all(r.stdout == "gpu02\n" for r in results)
    assert pool.stats.connects == 1
    assert pool.stats.commands == 20
    assert lab.hosts["gpu02"].connections == 1
    assert lab.hosts["gpu02"].sessions == 20


async def test_global_concurrency_cap_is_respected(lab: Lab, lab_emulation: LabTestEmulation):
    pool = SshPool(max_concurrency=3, connect_timeout=2)
    try:
        nodes = list(lab.inventory.nodes.values())
        jobs = [pool.run(nodes[i % len(nodes)], "nap 0.15", timeout=5) for i in range(12)]
        results = await asyncio.gather(*jobs)
    finally:
        await pool.close()
    assert all(r.stdout == "rested\n" for r in results)
    assert pool.peak_in_flight == 3
    assert lab_emulation.peak <= 3


async def test_output_past_the_cap_is_cut_and_flagged(lab: Lab, pool: SshPool):
    result = await pool.run(lab.inventory.nodes["cpu01"], "big-output", timeout=10)
    assert result.truncated
    assert len(result.stdout) == MAX_OUTPUT_BYTES
    assert result.exit_status is None


async def test_a_command_that_overruns_raises_command_timeout(lab: Lab, pool: SshPool):
    start = time.monotonic()
    with pytest.raises(CommandTimeout, match="outcome is unknown"):
        await pool.run(lab.inventory.nodes["cpu01"], "nap 5", timeout=0.3)
    assert time.monotonic() - start < 2
    # the connection survives a timed-out command
    assert (await pool.run(lab.inventory.nodes["cpu01"], "true", timeout=5)).ok


async def test_a_rotated_host_key_is_refused_and_nothing_is_sent(lab: Lab, pool: SshPool):
    lab.faults.inject("host.key_rotated", "inf01")
    with pytest.raises(HostKeyRejected) as info:
        await pool.run(lab.inventory.nodes["inf01"], "hostname", timeout=5)
    message = str(info.value)
    assert message.startswith("HOST KEY REJECTED for inf01 (127.0.0.1:")
    assert str(lab.state_dir / "known_hosts") in message
    host = lab.hosts["inf01"]
    assert host.connections == 1
    assert host.auth_attempts == 0
    assert host.sessions == 0 and host.commands == []


async def test_a_key_rotated_under_a_pooled_connection_is_refused_on_reconnect(
    lab: Lab, pool: SshPool
):
    node = lab.inventory.nodes["gpu01"]
    assert (await pool.run(node, "hostname", timeout=5)).ok
    lab.faults.inject("host.key_rotated", "gpu01")  # a reinstall drops the sessions
    with pytest.raises(HostKeyRejected):
        await pool.run(node, "hostname", timeout=5)
    assert lab.hosts["gpu01"].commands == ["hostname"]


async def test_an_unknown_host_is_refused(lab: Lab, pool: SshPool, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    node = node_with(lab.inventory.nodes["cpu01"], known_hosts=str(empty))
    with pytest.raises(HostKeyRejected, match="HOST KEY REJECTED for cpu01"):
        await pool.run(node, "hostname", timeout=5)
    assert lab.hosts["cpu01"].auth_attempts == 0
    assert lab.hosts["cpu01"].commands == []


async def test_a_node_without_known_hosts_is_refused_before_connecting(lab: Lab, pool: SshPool):
    node = node_with(lab.inventory.nodes["cpu01"], known_hosts=None)
    with pytest.raises(HostKeyRejected, match="no known_hosts configured for cpu01"):
        await pool.run(node, "hostname", timeout=5)
    assert lab.hosts["cpu01"].connections == 0


async def test_a_wrong_client_key_is_an_authentication_failure(lab: Lab, pool: SshPool, tmp_path):
    import asyncssh

    other = tmp_path / "other_key"
    other.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    node = node_with(lab.inventory.nodes["cpu01"], identity=f"file:{other}")
    with pytest.raises(AuthenticationFailed, match="cpu01"):
        await pool.run(node, "hostname", timeout=5)
    assert lab.hosts["cpu01"].commands == []


async def test_an_identity_from_the_environment_is_used(lab: Lab, pool: SshPool, monkeypatch):
    key_text = (lab.state_dir / "id_ed25519").read_text()
    monkeypatch.setenv("DCC_TEST_SSH_KEY", key_text)
    node = node_with(lab.inventory.nodes["stor01"], identity="env:DCC_TEST_SSH_KEY")
    assert (await pool.run(node, "hostname", timeout=5)).stdout == "stor01\n"


async def test_a_missing_identity_variable_is_named_without_a_value(lab: Lab, pool: SshPool):
    node = node_with(lab.inventory.nodes["stor01"], identity="env:DCC_TEST_NOT_SET_ANYWHERE")
    with pytest.raises(AuthenticationFailed, match="DCC_TEST_NOT_SET_ANYWHERE is not set"):
        await pool.run(node, "hostname", timeout=5)


async def test_a_blackholed_host_fails_within_the_connect_timeout(lab: Lab):
    lab.faults.inject("host.blackhole", "cpu01")
    pool = SshPool(connect_timeout=0.5, login_timeout=0.5)
    start = time.monotonic()
    try:
        with pytest.raises(HostUnreachable, match="cpu01"):
            await pool.run(lab.inventory.nodes["cpu01"], "hostname", timeout=5)
    finally:
        await pool.close()
    assert time.monotonic() - start < 2.0
    assert lab.hosts["cpu01"].connections == 1  # TCP was accepted: a black hole, not a refusal


async def test_a_down_host_is_unreachable_at_once_and_back_when_cleared(lab: Lab, pool: SshPool):
    node = lab.inventory.nodes["cpu01"]
    fid = lab.faults.inject("host.down", "cpu01")
    start = time.monotonic()
    with pytest.raises(HostUnreachable, match="refused"):
        await pool.run(node, "hostname", timeout=5)
    assert time.monotonic() - start < 1.0
    lab.faults.clear(fid)
    assert (await pool.run(node, "hostname", timeout=5)).stdout == "cpu01\n"


async def test_a_powered_off_host_is_unreachable(lab: Lab, pool: SshPool):
    lab.faults.inject("host.power_off", "stor01")
    assert not lab.hosts["stor01"].powered
    with pytest.raises(HostUnreachable):
        await pool.run(lab.inventory.nodes["stor01"], "hostname", timeout=5)


async def test_a_pooled_connection_lost_while_idle_is_replaced(lab: Lab, pool: SshPool):
    node = lab.inventory.nodes["gpu02"]
    assert (await pool.run(node, "hostname", timeout=5)).ok
    fid = lab.faults.inject("host.down", "gpu02")  # drops the open connection
    lab.faults.clear(fid)
    await wait_for(lambda: pool.connections() == 0, what="the pool to see the loss")
    assert (await pool.run(node, "hostname", timeout=5)).stdout == "gpu02\n"
    assert pool.stats.connects == 2


async def test_a_slow_host_delays_each_reply(lab: Lab, pool: SshPool):
    lab.faults.inject("host.slow", "inf01", {"seconds": 0.4})
    start = time.monotonic()
    assert (await pool.run(lab.inventory.nodes["inf01"], "hostname", timeout=5)).ok
    assert time.monotonic() - start >= 0.4
    with pytest.raises(CommandTimeout):
        await pool.run(lab.inventory.nodes["inf01"], "hostname", timeout=0.2)


async def test_garbage_output_is_decoded_without_a_crash(lab: Lab, pool: SshPool):
    lab.faults.inject("host.garbage", "gpu01")
    results = [
        await pool.run(lab.inventory.nodes["gpu01"], "hostname", timeout=5) for _ in range(5)
    ]
    text = "".join(r.stdout for r in results)
    assert isinstance(text, str) and text
    assert "\ufffd" in text  # invalid UTF-8 was replaced, not raised
    assert "gpu01\n" not in text
