"""The small parts that let the console and the lab reach 1,000 hosts."""

from __future__ import annotations

import asyncio
import gc
import logging
import resource
from pathlib import Path

import asyncssh
import pytest

from console.gc_policy import GcPolicy
from console.inventory.load import inventory_from_data
from console.lab.addresses import BMC_PLANE, MAX_SPREAD, require_loopback, spread_address
from console.lab.fleet import fleet_document, host_name
from console.lab.limits import FDS_BASE, LabTooBig, ensure_fd_budget, fds_needed, hosts_that_fit
from console.transports import HostKeyRejected
from console.transports.pacing import LoopPacer
from console.transports.ssh import parsed_known_hosts


def test_spread_addresses_stay_in_127_0_0_0_8_and_never_use_0_or_255() -> None:
    assert spread_address(0) == "127.1.0.1"
    assert spread_address(249) == "127.1.0.250"
    assert spread_address(250) == "127.1.1.1"
    assert spread_address(999, BMC_PLANE) == "127.2.3.250"
    last = spread_address(MAX_SPREAD - 1)
    assert last == "127.1.255.250"
    with pytest.raises(ValueError, match="at most"):
        spread_address(MAX_SPREAD)


def test_the_lab_refuses_to_bind_outside_loopback() -> None:
    assert require_loopback("127.3.4.5") == "127.3.4.5"
    for bad in ("10.0.0.1", "0.0.0.0", "::1", "localhost"):
        with pytest.raises(ValueError, match=r"loopback|127"):
            require_loopback(bad)


def test_a_generated_fleet_has_node_sets_four_hosts_a_rack_and_a_bmc_each() -> None:
    data = fleet_document(1001)
    assert data["nodes"][0]["nodes"] == "gpu[0001-0004]"
    assert data["nodes"][-1]["nodes"] == "gpu1001"  # the last rack has one host
    inventory = inventory_from_data(data, None)
    assert len(inventory.nodes) == 1001 and host_name(1001, 1001) in inventory.nodes
    assert len(list(inventory.racks())) == 251
    assert len(inventory.doc.rooms) == 7  # 40 racks a hall
    node = inventory.nodes["gpu0005"]
    assert node.rack == "R002" and node.hardware.gpu_count == 8 and node.hardware.ib_ports == 8
    assert node.bmc is not None and node.bmc.protocol == "redfish"
    with pytest.raises(ValueError, match="between 1 and"):
        fleet_document(0)


def test_the_fd_budget_counts_hosts_and_says_how_many_fit() -> None:
    assert fds_needed(1000) == FDS_BASE + 1000 * 10
    assert hosts_that_fit(FDS_BASE + 55) == 5
    assert hosts_that_fit(100) == 0


def test_the_fd_budget_raises_the_soft_limit_and_refuses_beyond_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (400, hard))
        budget = ensure_fd_budget(10)  # 356 needed
        assert budget.raised_from is None and "enough" in budget.note
        budget = ensure_fd_budget(20)  # 456 needed
        assert budget.raised_from == 400 and budget.soft == fds_needed(20)
        assert "raised the open-file limit from 400" in budget.note
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == fds_needed(20)
        if hard != resource.RLIM_INFINITY:
            too_many = hosts_that_fit(hard) + 1
            with pytest.raises(LabTooBig, match=f"at most {too_many - 1} hosts fit"):
                ensure_fd_budget(too_many)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_the_pacer_lets_a_few_through_per_loop_iteration_and_all_eventually() -> None:
    pacer = LoopPacer(per_tick=2)
    order: list[tuple[int, int]] = []
    iteration = 0

    async def tick() -> None:
        nonlocal iteration
        while True:
            await asyncio.sleep(0)
            iteration += 1

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)

    async def one(i: int) -> None:
        await pacer.turn()
        order.append((i, iteration))

    await asyncio.gather(*(one(i) for i in range(10)))
    ticker.cancel()
    assert sorted(i for i, _ in order) == list(range(10))
    per_iteration = [sum(1 for _, it in order if it == x) for x in {it for _, it in order}]
    assert max(per_iteration) <= 2 * pacer.per_tick
    assert pacer.deferred >= 6
    with pytest.raises(ValueError):
        LoopPacer(0)


async def test_the_gc_policy_freezes_survivors_and_restores_the_collector_at_stop() -> None:
    before = gc.get_threshold()
    policy = GcPolicy(freeze_every_s=0.01, full_every_s=0.05)
    policy.start()
    try:
        kept = [object() for _ in range(1000)]
        deadline = asyncio.get_running_loop().time() + 5
        while (
            policy.freezes == 0 or policy.thaws == 0
        ) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        assert policy.freezes > 0 and policy.thaws > 0
        assert gc.get_threshold()[2] >= 100
        assert kept
    finally:
        await policy.stop()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def _kh(path: Path, key: asyncssh.SSHKey, port: int) -> None:
    pub = key.export_public_key("openssh").decode().split()
    path.write_text(f"[127.1.0.1]:{port} {pub[0]} {pub[1]} h\n")


def test_known_hosts_are_parsed_once_and_read_again_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    first = asyncssh.generate_private_key("ssh-ed25519")
    _kh(path, first, 2201)
    parsed = parsed_known_hosts(path)
    assert parsed_known_hosts(path) is parsed  # not parsed again
    assert parsed.match("127.1.0.1", "127.1.0.1", 2201)[0]
    second = asyncssh.generate_private_key("ssh-ed25519")
    _kh(path, second, 2202)  # a reinstall: the file is rewritten
    again = parsed_known_hosts(path)
    assert again is not parsed
    assert again.match("127.1.0.1", "127.1.0.1", 2202)[0]
    assert not again.match("127.1.0.1", "127.1.0.1", 2201)[0]
    path.unlink()
    with pytest.raises(HostKeyRejected, match="cannot be read"):
        parsed_known_hosts(path)


def test_asyncssh_log_calls_are_formatted_only_when_their_level_is_enabled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Exploding:
        def __str__(self) -> str:
            raise AssertionError("formatted while disabled")

    logger = asyncssh.logging.logger.get_child("dcc-test")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    logger.info("quiet %s", [Exploding()])  # would raise if asyncssh formatted it
    with caplog.at_level(logging.INFO, logger="asyncssh"):
        logger.info("shown %s", [b"bytes"])
    assert any("shown bytes" in r.getMessage() for r in caplog.records)
