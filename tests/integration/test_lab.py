"""The lab frame: faults (Python API, control API, `dcc lab fault`), scenario, inventory, model."""

from __future__ import annotations

import argparse
import asyncio
import stat
import statistics
from pathlib import Path

import pytest
import yaml

from console import cli_lab
from console.inventory.load import load_inventory
from console.lab import FRAME_FAULTS, FaultError, Lab, LabClock, SimHost
from console.lab.control import ControlClient, LabNotRunning
from console.lab.faults import FaultBook
from console.lab.scenario import load_scenario, resolve_scenario
from console.transports.http import HttpClient
from console.transports.ssh import SshPool
from tests.integration.conftest import labtest_plugin, small_inventory, wait_for


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_keys_and_token_are_private_and_host_keys_persist(tmp_path: Path):
    state = tmp_path / "lab"
    first = Lab(small_inventory(), state, [labtest_plugin()])
    await first.start()
    key_before = (state / "hostkeys" / "gpu01_ed25519").read_bytes()
    port_before = first.hosts["gpu01"].port
    await first.stop()
    second = Lab(small_inventory(), state, [labtest_plugin()])
    await second.start()
    try:
        assert (state / "hostkeys" / "gpu01_ed25519").read_bytes() == key_before
        for private in ("id_ed25519", "control.token", "hostkeys/gpu01_ed25519"):
            assert _mode(state / private) == 0o600, private
        assert _mode(state) == 0o700
        known = (state / "known_hosts").read_text()
        port = second.hosts["gpu01"].port
        assert f"[127.0.0.1]:{port} ssh-ed25519 " in known
        assert port_before is not None and port is not None
    finally:
        await second.stop()


async def test_a_lab_can_be_built_from_an_inventory_document(tmp_path: Path):
    doc = small_inventory().doc
    lab = Lab(doc, tmp_path / "lab", [])
    await lab.start()
    try:
        assert list(lab.hosts) == ["gpu01", "gpu02", "inf01", "cpu01", "stor01"]
        assert lab.faults.names() == sorted(FRAME_FAULTS)
    finally:
        await lab.stop()


async def test_the_effective_inventory_points_at_the_lab(lab: Lab, lab_emulation):
    inv = lab.inventory
    assert inv.demo
    node = inv.nodes["inf01"]
    assert (node.ssh.host, node.ssh.port, node.ssh.user) == (
        "127.0.0.1",
        lab.hosts["inf01"].port,
        "ops",
    )
    assert node.ssh.identity == f"file:{lab.state_dir / 'id_ed25519'}"
    assert node.ssh.known_hosts == str(lab.state_dir / "known_hosts")
    assert node.rack == "R01" and node.role == "gpu-infer"
    assert inv.doc.plugins["labtest"]["url"] == lab_emulation.url
    http = HttpClient()
    try:
        resp = await http.request("GET", lab_emulation.url + "/hello", timeout=5)
    finally:
        await http.close()
    assert resp.text() == "hello from the lab"


async def test_write_inventory_round_trips_through_the_loader(lab: Lab, tmp_path: Path):
    path = lab.write_inventory(tmp_path / "inventory.yaml")
    loaded = load_inventory(path)
    assert loaded.demo
    assert list(loaded.nodes) == list(lab.inventory.nodes)
    for name, node in loaded.nodes.items():
        want = lab.inventory.nodes[name]
        assert node.ssh == want.ssh, name
        assert (node.role, node.rack, node.u, node.hardware) == (
            want.role,
            want.rack,
            want.u,
            want.hardware,
        )
    pool = SshPool(connect_timeout=2)
    try:
        assert (await pool.run(loaded.nodes["stor01"], "hostname", timeout=5)).stdout == "stor01\n"
    finally:
        await pool.close()
    assert yaml.safe_load((lab.state_dir / "inventory.yaml").read_text())["demo"] is True


async def test_faults_are_validated_injected_listed_and_cleared(lab: Lab):
    with pytest.raises(FaultError, match=r"unknown fault 'host\.melted'"):
        lab.faults.inject("host.melted", "gpu01")
    with pytest.raises(FaultError, match="unknown host 'gpu99'"):
        lab.faults.inject("host.down", "gpu99")
    assert "labtest.broken" in lab.faults.names()  # from the emulation
    fid = lab.faults.inject("labtest.broken", "gpu01", {"why": "test"})
    assert lab.hosts["gpu01"].fault("labtest.broken") == {"why": "test"}
    assert [f.id for f in lab.faults.active()] == [fid]
    pool = SshPool(connect_timeout=2)
    try:
        out = await pool.run(lab.inventory.nodes["gpu01"], "echo-fault", timeout=5)
        assert out.stdout == "{'why': 'test'}\n"
        assert lab.faults.clear(fid) and not lab.faults.clear(fid)
        out = await pool.run(lab.inventory.nodes["gpu01"], "echo-fault", timeout=5)
        assert out.stdout == "None\n"
    finally:
        await pool.close()


def test_a_fault_with_a_duration_expires_on_the_lab_clock():
    now = [100.0]
    book = FaultBook(lambda: now[0])
    book.inject("host.slow", "gpu01", {"seconds": 1}, duration=30)
    assert book.get("host.slow", "gpu01") == {"seconds": 1}
    now[0] = 131.0
    assert book.get("host.slow", "gpu01") is None
    assert book.active() == []


async def test_power_off_zeroes_load_and_power_falls_to_standby(lab: Lab):
    host = lab.hosts["gpu01"]
    lab.faults.inject("host.power_off", "gpu01")
    host.tick(1.0)
    assert not host.powered and host.load == 0.0
    assert host.power_w < 50
    assert host.exhaust_c == pytest.approx(host.inlet_c, abs=1.0)


async def test_the_control_api_needs_the_token_and_manages_faults(lab: Lab):
    client = ControlClient(lab.state_dir)
    added = await client.call("POST", "/faults", {"name": "host.down", "target": "cpu01"})
    assert lab.hosts["cpu01"].fault("host.down") == {}
    listed = await client.call("GET", "/faults")
    assert [f["id"] for f in listed["faults"]] == [added["id"]]
    with pytest.raises(FaultError, match="unknown fault"):
        await client.call("POST", "/faults", {"name": "nope", "target": "cpu01"})
    await client.call("DELETE", f"/faults/{added['id']}")
    assert lab.faults.active() == []
    http = HttpClient()
    try:
        resp = await http.request(
            "GET",
            f"http://127.0.0.1:{lab.control_port}/faults",
            timeout=5,
            headers={"Authorization": "Bearer wrong"},
        )
    finally:
        await http.close()
    assert resp.status == 401


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dcc")
    cli_lab.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


async def test_dcc_lab_fault_add_list_and_clear_talk_to_the_running_lab(lab: Lab, capsys):
    state = str(lab.state_dir)
    args = _parse(["lab", "--state-dir", state, "fault", "add", "host.slow", "gpu02",
                   "--param", "seconds=2", "--for", "60"])  # fmt: skip
    assert await asyncio.to_thread(cli_lab.run, args, []) == 0
    assert lab.hosts["gpu02"].fault("host.slow") == {"seconds": 2}
    fid = lab.faults.active()[0].id
    assert f"{fid}: host.slow on gpu02 for 60s" in capsys.readouterr().out
    args = _parse(["lab", "fault", "list", "--state-dir", state])
    assert await asyncio.to_thread(cli_lab.run, args, []) == 0
    assert "host.slow" in capsys.readouterr().out
    args = _parse(
        ["lab", "fault", "add", "host.slow", "gpu02", "--param", "oops", "--state-dir", state]
    )
    assert await asyncio.to_thread(cli_lab.run, args, []) == 2
    assert "must be KEY=VALUE" in capsys.readouterr().err
    args = _parse(["lab", "fault", "clear", "--all", "--state-dir", state])
    assert await asyncio.to_thread(cli_lab.run, args, []) == 0
    assert lab.faults.active() == []


def test_dcc_lab_fault_without_a_running_lab_says_so(tmp_path: Path, capsys):
    args = _parse(["lab", "--state-dir", str(tmp_path), "fault", "list"])
    assert cli_lab.run(args, []) == 2
    err = capsys.readouterr().err
    assert "no running lab found" in err and "Traceback" not in err
    with pytest.raises(LabNotRunning):
        asyncio.run(ControlClient(tmp_path).call("GET", "/faults"))


async def test_a_scenario_injects_its_faults_on_schedule(tmp_path: Path, caplog):
    scenario = tmp_path / "quick.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "steps": [
                    {"at": 0.5, "fault": "host.down", "target": "cpu01", "for": 1.0},
                    {"at": 0.6, "fault": "nosuchplugin.fault", "target": "x"},
                    {"at": 0.7, "fault": "labtest.broken", "target": "gpu01"},
                ]
            }
        )
    )
    lab = Lab(small_inventory(), tmp_path / "lab", [labtest_plugin()], speed=2.0,
              scenario=scenario)  # fmt: skip
    await lab.start()
    try:
        assert "no emulation knows fault nosuchplugin.fault" in caplog.text
        await wait_for(lambda: lab.hosts["cpu01"].fault("host.down") is not None, 3, "host.down")
        assert lab.servers["cpu01"].mode == "down"
        await wait_for(lambda: lab.hosts["gpu01"].fault("labtest.broken") is not None, 3, "plugin")
        await wait_for(lambda: lab.servers["cpu01"].mode == "up", 4, "host.down to expire")
        assert lab.scenario_runner is not None
        assert [s.fault for s, _ in lab.scenario_runner.injected] == ["host.down", "labtest.broken"]
    finally:
        await lab.stop()


def test_the_demo_scenario_is_valid_and_loops():
    scenario = load_scenario(resolve_scenario("demo"))
    assert scenario.loop
    names = {s.fault for s in scenario.steps}
    assert {"host.down", "host.slow", "services.slow", "services.down"} <= names


def test_the_model_is_believable_by_role_and_seeded():
    inv = small_inventory()
    clock = LabClock(speed=1.0)
    book = FaultBook(clock.now)

    def run(seed: int) -> dict[str, list[float]]:
        hosts = {n: SimHost(node, clock, book, seed) for n, node in inv.nodes.items()}
        loads: dict[str, list[float]] = {n: [] for n in hosts}
        for _ in range(600):
            for n, h in hosts.items():
                h.tick(1.0)
                loads[n].append(h.load)
                assert 0.0 <= h.load <= 1.0
                assert h.exhaust_c > h.inlet_c
        return loads

    loads = run(3)
    assert statistics.mean(loads["gpu01"]) > 0.75
    assert statistics.mean(loads["stor01"]) < 0.3
    assert 0.3 < statistics.mean(loads["cpu01"]) < 0.6
    assert run(3)["gpu01"] == loads["gpu01"]  # same seed, same walk
    assert run(4)["gpu01"] != loads["gpu01"]
