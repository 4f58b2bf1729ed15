"""`dcc lab --hosts N`: a generated fleet on loopback, every host answering SSH and its BMC,
and a clear refusal when the open-file limit cannot hold it."""

from __future__ import annotations

import ipaddress
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from console.lab import Lab
from console.lab.limits import hosts_that_fit
from console.poller import Poller
from console.registry import discover
from console.store import Store
from console.transports import Transports
from tests.integration.fleet_support import FLEET_HOSTS, configured

REPO = Path(__file__).resolve().parents[2]


async def test_every_host_of_a_fleet_lab_answers_ssh_and_its_bmc(fleet_lab: Lab) -> None:
    inventory = configured(fleet_lab)
    assert len(inventory.nodes) == FLEET_HOSTS
    wanted = {"gpu.fast", "power.bmc"}
    collectors = [(p, c) for p, c in discover().collectors() if c.id in wanted]
    assert {c.id for _, c in collectors} == wanted
    store = Store()
    transports = Transports.create()
    poller = Poller(store, inventory, transports, collectors)
    try:
        ok = await poller.poll_once()
    finally:
        await transports.close()
    failing = [(s.collector, s.target, s.last_error) for s in store.collector_statuses()]
    assert ok == 2 * FLEET_HOSTS, [f for f in failing if f[2]][:5]
    for name in inventory.nodes:
        assert store.value(f"{name}/7", "gpu.util_pct") is not None  # 8 GPUs answered
        assert store.value(name, "power.power_w") is not None  # the BMC answered
    assert transports.ssh.stats.connects == FLEET_HOSTS


def test_a_fleet_lab_gives_each_host_and_each_bmc_its_own_loopback_address(
    fleet_lab: Lab,
) -> None:
    inventory = fleet_lab.inventory
    ssh = {n.ssh.host for n in inventory.nodes.values()}
    bmc = {n.bmc.address for n in inventory.nodes.values() if n.bmc is not None}
    assert len(ssh) == len(bmc) == FLEET_HOSTS
    for address in ssh:
        assert ipaddress.ip_address(address) in ipaddress.ip_network("127.1.0.0/16")
    for address in bmc:
        assert ipaddress.ip_address(address) in ipaddress.ip_network("127.2.0.0/16")
    known = (fleet_lab.state_dir / "known_hosts").read_text().splitlines()
    assert sum(1 for line in known if line.startswith("[127.1.")) == FLEET_HOSTS
    racks = {n.rack for n in inventory.nodes.values()}
    assert len(racks) == FLEET_HOSTS // 4 + (FLEET_HOSTS % 4 > 0)


def _with_nofile(soft: int, hard: int):  # type: ignore[no-untyped-def]
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return limit


def test_dcc_lab_refuses_a_fleet_the_open_file_limit_cannot_hold_and_says_what_fits(
    tmp_path: Path,
) -> None:
    state = tmp_path / "lab"
    done = subprocess.run(
        [sys.executable, "-m", "console", "lab", "--hosts", "5000", "--state-dir", str(state)],
        preexec_fn=_with_nofile(512, 512),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 2
    fit = hosts_that_fit(512)
    assert f"at most {fit} hosts fit" in done.stderr
    assert "hard limit is 512" in done.stderr
    assert f"--hosts {fit}" in done.stderr and "ulimit -Hn" in done.stderr
    assert "Nothing was started" in done.stderr
    assert not (state / "lab.json").exists()


def test_dcc_lab_raises_the_soft_open_file_limit_up_to_the_hard_one(tmp_path: Path) -> None:
    state = tmp_path / "lab"
    log = tmp_path / "lab.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "console", "lab", "--hosts", "20", "--state-dir", str(state)],
            preexec_fn=_with_nofile(300, 4096),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
        )
    try:
        deadline = time.monotonic() + 60
        while "Ctrl-C stops the lab" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        text = log.read_text()
        assert "raised the open-file limit from 300 to" in text
        assert "20 simulated hosts on 127.1.0.0/16" in text
        limits = (Path("/proc") / str(proc.pid) / "limits").read_text()
        line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
        assert int(line.split()[3]) > 300
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
    assert not os.path.exists(state / "lab.json")  # the control info goes with the lab
