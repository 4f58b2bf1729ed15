"""The plugin's scripts and parsers on the REAL tools against a simulated fabric.

ibsim simulates the fabric in scripts/peers/infiniband/net (two spines, two
leaves, four HCAs; gpu003's link trained at SDR); opensm (under the
libumad2sim preload) brings the ports Active; infiniband-diags' ibstat,
perfquery, iblinkinfo, ibportstate answer for it. ``SIM_HOST`` picks the
HCA a command runs "on". The node and fabric scripts the collectors send over
SSH run here in ``sh`` under the preload, in a scratch directory (umad2sim
writes its fake sysfs there). Started once per session, unix sockets only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from console.inventory.load import inventory_from_data
from plugins.infiniband.actions import clear_command, portstate_command, read_command
from plugins.infiniband.collect import fabric_readings, node_readings
from plugins.infiniband.config import InfinibandConfig
from plugins.infiniband.dump import fabric_script, node_script, parse_fabric_dump, parse_node_dump
from plugins.infiniband.health import CounterTracker
from plugins.infiniband.parse import merge_perf, parse_perfquery

PRELOAD = Path("/usr/lib/x86_64-linux-gnu/umad2sim/libumad2sim.so")
NET = Path(__file__).resolve().parents[2] / "scripts" / "peers" / "infiniband" / "net"
TOOLS = ("ibsim", "opensm", "ibstat", "perfquery", "iblinkinfo", "ibportstate")


@dataclass
class Fabric:
    root: Path
    ctl: Path

    def run(
        self, command: str, host: str, timeout: float = 20.0
    ) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, LD_PRELOAD=str(PRELOAD), SIM_HOST=f"H-{host}-mlx5_0")
        return subprocess.run(
            ["sh", "-c", command],
            env=env,
            cwd=self.root / "scratch",
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def console(self, line: str) -> None:
        """A command to ibsim's console (through its FIFO)."""
        with self.ctl.open("w") as f:
            f.write(line + "\n")


@pytest.fixture(scope="session")
def fabric(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fabric]:
    missing = [t for t in TOOLS if shutil.which(t) is None] + (
        [] if PRELOAD.exists() else [str(PRELOAD)]
    )
    if missing:
        if os.geteuid() == 0:
            pytest.fail(
                f"the InfiniBand peer is not installed ({', '.join(missing)}): "
                "run scripts/install-peers.sh (scripts/peers/infiniband.packages)"
            )
        pytest.skip(f"InfiniBand peer not installed: {', '.join(missing)}")
    root = tmp_path_factory.mktemp("ibsim")
    (root / "scratch").mkdir()
    (root / "osm").mkdir()
    shutil.copy(NET, root / "net")
    ctl = root / "ctl"
    os.mkfifo(ctl)
    procs: list[subprocess.Popen[bytes]] = []
    # ibsim's console must never see EOF: a holder keeps the FIFO's write end open.
    ibsim = subprocess.Popen(
        ["ibsim", "-s", "net"],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=(root / "ibsim.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    procs.append(ibsim)
    holder = subprocess.Popen(
        ["sh", "-c", f"exec cat {ctl} "], cwd=root, stdout=ibsim.stdin, start_new_session=True
    )
    procs.append(holder)
    keep = ctl.open("w")  # so cat on the FIFO does not see EOF between our writes
    env = dict(os.environ, LD_PRELOAD=str(PRELOAD), OSM_CACHE_DIR=str(root / "osm"))
    procs.append(
        subprocess.Popen(
            ["opensm", "-f", str(root / "osm" / "opensm.log")],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=(root / "osm" / "stdout.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    )
    fab = Fabric(root, ctl)
    try:
        deadline = time.monotonic() + 20
        while "State: Active" not in fab.run("ibstat", "gpu001", 5).stdout:
            if time.monotonic() > deadline:
                log = (root / "ibsim.log").read_text(errors="replace")[-500:]
                pytest.fail(f"the simulated fabric did not come up Active in 20 s: {log}")
            time.sleep(0.1)
        yield fab
    finally:
        keep.close()
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)


INV = inventory_from_data(
    {
        "site": {"name": "ibsim"},
        "ssh": {"user": "ops"},
        "nodes": [
            {
                "nodes": "gpu[001-003]",
                "role": "gpu-train",
                "hardware": {"ib_ports": 1, "ib_rate_gbps": 200},
            },
            {
                "nodes": "stor01",
                "role": "storage",
                "hardware": {"ib_ports": 1, "ib_rate_gbps": 200},
            },
        ],
    },
    None,
)


def dump(fabric: Fabric, host: str):  # type: ignore[no-untyped-def]
    out = fabric.run(node_script(), host)
    return parse_node_dump(out.stdout)


def test_real_node_script_reads_the_hca_active_at_hdr(fabric: Fabric):
    d = dump(fabric, "gpu001")
    (p,) = d.ports
    assert (p.device, p.port, p.state, p.phys_state) == ("ibsim0", 1, "ACTIVE", "LinkUp")
    assert (p.rate.width, p.rate.speed, p.link_layer) == (4, "HDR", "InfiniBand")
    # umad2sim fakes no counters/ in sysfs: they come from the real perfquery.
    assert p.counters["symbol_error"] == 0 and p.counters["port_xmit_data"] is not None
    assert d.ibstat is not None and d.ibstat.cas[0].ca_type == "simulator"
    readings = node_readings(
        "gpu001", d, InfinibandConfig(), 1, None, time.time(), CounterTracker()
    )
    health = {r.metric: r.value for r in readings if r.target == "ib:gpu001:ibsim0/1"}
    assert health["infiniband.health"] == "ok"


def test_real_link_trained_at_sdr_is_degraded_against_the_inventory(fabric: Fabric):
    (p,) = dump(fabric, "gpu003").ports
    assert p.rate.gbps == 10.0 and p.rate.speed == "SDR"
    readings = node_readings(
        "gpu003",
        dump(fabric, "gpu003"),
        InfinibandConfig(),
        1,
        200.0,
        time.time(),
        CounterTracker(),
    )
    h = next(r for r in readings if r.metric == "infiniband.health")
    assert h.value == "warning" and "< expected 200 Gb/s" in h.detail


def test_injected_symbol_errors_become_a_rate_and_perfquery_R_resets_them(fabric: Fabric):
    tracker = CounterTracker(window_s=60)
    cfg = InfinibandConfig(rate_window_s=60)
    t0 = time.time()
    node_readings("stor01", dump(fabric, "stor01"), cfg, 1, 200.0, t0, tracker)
    fabric.console('PerformanceSet "H-stor01-mlx5_0"[1] PortCounters.SymbolErrorCounter=600')
    deadline = time.monotonic() + 10
    while (
        merge_perf(
            parse_perfquery(
                fabric.run(
                    read_command("ibsim0", 1) + "; perfquery -C ibsim0 -P 1", "stor01"
                ).stdout
            )
        ).get("symbol_error")
        != 600
    ):
        assert time.monotonic() < deadline, "ibsim did not take the PerformanceSet"
        time.sleep(0.1)
    readings = node_readings("stor01", dump(fabric, "stor01"), cfg, 1, 200.0, t0 + 30, tracker)
    v = {r.metric: r for r in readings if r.target == "ib:stor01:ibsim0/1"}
    assert v["infiniband.err.symbol_error"].value == 600
    assert v["infiniband.rate.symbol_error"].value == pytest.approx(600.0)
    assert v["infiniband.health"].value == "critical"
    assert fabric.run(clear_command("ibsim0", 1), "stor01").returncode == 0
    readings = node_readings("stor01", dump(fabric, "stor01"), cfg, 1, 200.0, t0 + 60, tracker)
    v = {r.metric: r for r in readings if r.target == "ib:stor01:ibsim0/1"}
    assert v["infiniband.err.symbol_error"].value == 0
    assert "symbol_error reset" in str(v["infiniband.counter_events"].value)


def test_real_iblinkinfo_maps_each_hca_to_its_leaf_port(fabric: Fabric):
    out = fabric.run(fabric_script(), "stor01")
    ports = parse_fabric_dump(out.stdout)
    readings = fabric_readings(ports, INV, time.time())
    peers = {r.target: r.value for r in readings if r.metric == "infiniband.peer"}
    assert peers["ib:gpu001:mlx5_0/1"] == "leaf01 [1]"
    assert peers["ib:gpu003:mlx5_0/1"] == "leaf02 [1]"
    sw = {r.target: r.value for r in readings if r.metric == "infiniband.sw_peer"}
    assert sw["ibsw:leaf01/7"] == "spine01 [1]"
    assert sw["ibsw:leaf01/2"] == "gpu002 mlx5_0 [1]"


def test_real_ibportstate_disable_then_enable_shows_in_iblinkinfo(fabric: Fabric):
    lid = next(
        p.lid
        for p in parse_fabric_dump(fabric.run(fabric_script(), "stor01").stdout)
        if p.kind == "SW" and p.name == "leaf01"
    )
    assert fabric.run(portstate_command(str(lid), 2, "disable"), "stor01").returncode == 0
    ports = parse_fabric_dump(fabric.run(fabric_script(), "stor01").stdout)
    p2 = next(p for p in ports if p.kind == "SW" and p.name == "leaf01" and p.port == 2)
    assert p2.phys_state == "Disabled"
    assert fabric.run(portstate_command(str(lid), 2, "enable"), "stor01").returncode == 0
    ports = parse_fabric_dump(fabric.run(fabric_script(), "stor01").stdout)
    p2 = next(p for p in ports if p.kind == "SW" and p.name == "leaf01" and p.port == 2)
    assert p2.phys_state != "Disabled"
