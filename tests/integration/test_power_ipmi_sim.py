"""The power plugin against real ipmi_sim BMCs (OpenIPMI) through ipmitool and freeipmi."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from console.inventory.load import inventory_from_data
from console.inventory.model import Inventory
from console.plugin import Target
from console.transports import Transports
from plugins.power.actions import ACTIONS, read_state
from plugins.power.collect import collect_bmc
from plugins.power.config import PowerConfig
from tests.integration.support import action_runner, by_metric, ctx_for, open_transports

PEER = Path(__file__).resolve().parents[2] / "scripts" / "peers" / "ipmi"
SPEC = {a.id.split(".")[1]: a for a in ACTIONS}

EMU = """mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
sensor_add 0x20 0 0 35 0x6f event-only
sensor_add 0x20 0 1 0x01 0x01
sensor_set_value 0x20 0 1 {inlet} 0
sensor_set_threshold 0x20 0 1 settable 111000 0x50 0x46 0x3c 00 00 00
sensor_add 0x20 0 2 0x01 0x01
sensor_set_value 0x20 0 2 61 0
sensor_add 0x20 0 3 0x04 0x01
sensor_set_value 0x20 0 3 84 0
sensor_add 0x20 0 4 0x03 0x01
sensor_set_value 0x20 0 4 65 0
mc_enable 0x20
"""

LAN = """name "{name}"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 {port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "{chassis} {state}"
  user 2 true  "admin" "secret" admin 10 none md2 md5 straight
"""


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Bmcs:
    ports: dict[str, int]
    root: Path


@pytest.fixture(scope="session")
def ipmi_sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bmcs]:
    """Two ipmi_sim BMCs on loopback, started once per test session."""
    missing = [
        t for t in ("ipmi_sim", "sdrcomp", "ipmitool", "ipmi-sensors") if shutil.which(t) is None
    ]
    if missing:
        if os.geteuid() == 0:
            pytest.fail(f"IPMI peers missing ({', '.join(missing)}): run scripts/install-peers.sh")
        pytest.skip(f"IPMI peers missing: {', '.join(missing)}")
    root = tmp_path_factory.mktemp("ipmi")
    subprocess.run(
        ["sdrcomp", "-8", "-o", str(root / "bmc.bsdr"), str(PEER / "bmc.sdrs")], check=True
    )
    procs, ports = [], {}
    for name, inlet in (("ipmi01", 24), ("ipmi02", 35)):
        d = root / name
        (d / "state" / "ipmi_sim" / name).mkdir(parents=True)
        shutil.copy(root / "bmc.bsdr", d / "state" / "ipmi_sim" / name / "sdr.20.main")
        port = _free_udp_port()
        ports[name] = port
        (d / "lan.conf").write_text(
            LAN.format(name=name, port=port, chassis=PEER / "chassis.sh", state=d / "power.state")
        )
        (d / "bmc.emu").write_text(EMU.format(inlet=inlet))
        log = open(d / "sim.log", "w")  # noqa: SIM115 - closed with the process
        procs.append(
            subprocess.Popen(
                ["ipmi_sim", "-c", "lan.conf", "-f", "bmc.emu", "-s", "state", "-n"],
                cwd=d,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    env = dict(os.environ, IPMI_PASSWORD="secret")
    try:
        for name, port in ports.items():
            deadline = time.monotonic() + 10
            while (
                subprocess.run(
                    [
                        "ipmitool",
                        "-I",
                        "lanplus",
                        "-C",
                        "3",
                        "-H",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "-U",
                        "admin",
                        "-E",
                        "-N",
                        "1",
                        "-R",
                        "1",
                        "mc",
                        "info",
                    ],
                    env=env,
                    capture_output=True,
                ).returncode
                != 0
            ):
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"ipmi_sim {name} did not answer: {(root / name / 'sim.log').read_text()}"
                    )
                time.sleep(0.1)
        yield Bmcs(ports, root)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


def ipmi_inventory(bmcs: Bmcs) -> Inventory:
    secret = bmcs.root / "secret"
    secret.write_text("secret\n")
    secret.chmod(0o600)
    groups = [
        {
            "nodes": name,
            "role": "cpu",
            "rack": "R01",
            "u_start": i + 1,
            "bmc": {
                "address": "127.0.0.1",
                "port": port,
                "protocol": "ipmi",
                "user": "admin",
                "password": f"file:{secret}",
            },
        }
        for i, (name, port) in enumerate(bmcs.ports.items())
    ]
    inv = inventory_from_data(
        {
            "site": {"name": "ipmi"},
            "rooms": [{"name": "h", "racks": [{"name": "R01", "power_budget_kw": 10}]}],
            "nodes": groups,
        },
        None,
    )
    cfg = PowerConfig(
        cipher_suite=3, timeout=2, freeipmi_nodes="ipmi02", freeipmi_workaround="opensesspriv"
    )
    return inv.model_copy(update={"plugin_configs": {"power": cfg}})


@pytest.fixture
async def transports() -> AsyncIterator[Transports]:
    async with open_transports() as t:
        yield t


async def test_sensors_and_power_state_read_through_ipmitool_and_freeipmi(
    ipmi_sims: Bmcs, transports
):
    inv = ipmi_inventory(ipmi_sims)
    ctx = ctx_for(inv, transports, "power")
    one = by_metric(await collect_bmc(ctx, Target("node", "ipmi01", node="ipmi01")))
    two = by_metric(await collect_bmc(ctx, Target("node", "ipmi02", node="ipmi02")))
    for r, inlet in ((one, 24), (two, 35)):
        assert r["power.bmc_ok"].value is True, r["power.bmc_ok"].detail
        assert r["power.inlet_c"].value == inlet
        assert r["power.power_w"].value == 650  # no DCMI in ipmi_sim: the PSU power sensor
        assert r["power.fans"].value == 1 and r["power.fans_failed"].value == 0
    assert one["power.state"].value == "on"
    assert "no DCMI power reading" in one["power.sensors"].detail


async def test_a_wrong_password_is_a_failed_reading_not_a_crash(ipmi_sims: Bmcs, transports):
    inv = ipmi_inventory(ipmi_sims)
    (ipmi_sims.root / "secret").write_text("wrong\n")
    try:
        ctx = ctx_for(inv, transports, "power")
        r = by_metric(await collect_bmc(ctx, Target("node", "ipmi01", node="ipmi01")))
        assert r["power.bmc_ok"].value is False
    finally:
        (ipmi_sims.root / "secret").write_text("secret\n")


async def test_power_off_on_and_cycle_change_the_bmc_state_through_the_runner(
    ipmi_sims: Bmcs, transports, tmp_path: Path
):
    inv = ipmi_inventory(ipmi_sims)
    ctx = ctx_for(inv, transports, "power")
    async with action_runner(
        inv, transports, tmp_path / "audit.db", user="bob", fallback=tmp_path / "fb.jsonl"
    ) as runner:
        for name in ("ipmi01", "ipmi02"):
            target = Target("node", name, node=name)
            plan = await runner.plan(SPEC["off"], [target], {})
            assert "-E" in plan.previews[0].lines[0] or "--config-file" in plan.previews[0].lines[0]
            assert "secret" not in " ".join(plan.previews[0].lines)
            (res,) = await runner.execute(plan, name)
            assert res.outcome == "ok", res.detail
            assert (await read_state(ctx, inv.nodes[name]))[0] == "off"  # type: ignore[arg-type]
            (res,) = await runner.execute(await runner.plan(SPEC["on"], [target], {}), None)
            assert res.outcome == "ok", res.detail
            (res,) = await runner.execute(await runner.plan(SPEC["cycle"], [target], {}), name)
            assert res.outcome == "ok", res.detail
            assert (await read_state(ctx, inv.nodes[name]))[0] == "on"  # type: ignore[arg-type]
        log = (ipmi_sims.root / "ipmi01" / "power.state.log").read_text()
        assert "power=0" in log and "power=1" in log
        assert all("secret" not in (r.detail or "") for r in runner.audit.page())
