"""The power plugin against a real Redfish peer: ``sushy-emulator --fake`` (sushy-tools).

One emulator per test session, HTTPS on loopback with a self-signed certificate
pinned by fingerprint, HTTP Basic auth from an htpasswd file (sushy has no
SessionService). It has Systems, Reset and Chassis Thermal, but no Power
resource, and it applies power changes 1-11 s late (so verification polls).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from console.inventory.load import apply_plugin_configs, inventory_from_data
from console.inventory.model import Inventory
from console.lab.tls import ensure_cert, fingerprint
from console.plugin import Target
from console.transports import Transports
from plugins.power.actions import ACTIONS, read_state
from plugins.power.collect import collect_bmc
from plugins.power.config import PowerConfig
from tests.integration.support import action_runner, by_metric, ctx_for, open_transports

SPEC = {a.id.split(".")[1]: a for a in ACTIONS}
PASSWORD = "sushy-secret"
SYSTEM = "00000000-0000-0000-0000-0000000000a1"


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sushy:
    port: int
    pin: str
    password_file: Path


def _emulator() -> str:
    beside = Path(sys.executable).with_name("sushy-emulator")
    found = str(beside) if beside.exists() else shutil.which("sushy-emulator")
    if found is None:
        pytest.fail("sushy-emulator is not installed: pip install -e '.[test]' (sushy-tools)")
    return found


@pytest.fixture(scope="session")
def sushy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sushy]:
    """One sushy-emulator (fake driver) on 127.0.0.1, started once, stopped at the end."""
    import bcrypt  # sushy-tools depends on it (htpasswd with bcrypt hashes)

    root = tmp_path_factory.mktemp("sushy")
    cert, key = ensure_cert(root / "tls")
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    (root / "htpasswd").write_text(f"admin:{hashed}\n")
    secret = root / "bmc.password"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(PASSWORD)
    port = _free_tcp_port()
    (root / "sushy.conf").write_text(
        f"SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\n"
        f"SUSHY_EMULATOR_LISTEN_PORT = {port}\n"
        f"SUSHY_EMULATOR_FAKE_DRIVER = True\n"
        f"SUSHY_EMULATOR_STATE_DIR = {str(root / 'state')!r}\n"
        f"SUSHY_EMULATOR_AUTH_FILE = {str(root / 'htpasswd')!r}\n"
        f"SUSHY_EMULATOR_FAKE_SYSTEMS = [{{'uuid': {SYSTEM!r}, 'name': 'rf01',"
        f" 'power_state': 'On', 'nics': []}}]\n"
    )
    log = open(root / "sushy.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [
            _emulator(),
            "--config",
            str(root / "sushy.conf"),
            "--fake",
            "--ssl-certificate",
            str(cert),
            "--ssl-key",
            str(key),
        ],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        tls = ssl.create_default_context(cafile=str(cert))
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail(f"sushy-emulator exited: {(root / 'sushy.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(
                    f"https://127.0.0.1:{port}/redfish/v1/", context=tls, timeout=2
                ):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("sushy-emulator did not answer within 20 s")
                time.sleep(0.1)
        yield Sushy(port, fingerprint(cert), secret)
    finally:
        # The real PID (Popen ran the emulator itself, no shell in between).
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def sushy_inventory(s: Sushy) -> Inventory:
    inv = inventory_from_data(
        {
            "site": {"name": "sushy-test"},
            "rooms": [{"name": "hall", "racks": [{"name": "R01", "power_budget_kw": 30}]}],
            "ssh": {"user": "ops"},
            "nodes": [
                {
                    "nodes": "rf01",
                    "role": "cpu",
                    "rack": "R01",
                    "u_start": 1,
                    "bmc": {
                        "address": "127.0.0.1",
                        "port": s.port,
                        "protocol": "redfish",
                        "user": "admin",
                        "password": f"file:{s.password_file}",
                        "tls_fingerprint": s.pin,
                    },
                }
            ],
            "plugins": {"power": {"timeout": 5.0}},
        },
        None,
    )
    return apply_plugin_configs(inv, {"power": PowerConfig})


@pytest.fixture
async def transports() -> AsyncIterator[Transports]:
    async with open_transports() as t:
        yield t


async def test_sushy_systems_and_thermal_are_read_over_pinned_tls_and_basic_auth(
    sushy: Sushy, transports: Transports
):
    inv = sushy_inventory(sushy)
    ctx = ctx_for(inv, transports, "power")
    readings = await collect_bmc(ctx, Target("node", "rf01", node="rf01"))
    r = by_metric(readings)
    assert r["power.bmc_ok"].value is True, r["power.bmc_ok"].detail
    assert r["power.state"].value in ("on", "off")
    # Chassis Thermal's static template: 'Chassis Intake Temp' 25, two fans at ~2100 RPM.
    assert r["power.inlet_c"].value == 25
    assert r["power.fans"].value == 2 and r["power.fans_failed"].value == 0
    assert "BaseBoard System Fan" in r["power.sensors"].value
    # No Power resource: power and PSUs are unknown (None), never 0, and the card says why.
    assert r["power.power_w"].value is None
    assert r["power.psus"].value is None and r["power.psus_failed"].value is None
    assert r["power.redundancy"].value is None
    assert "no Power or PowerSubsystem" in r["power.sensors"].detail


async def test_a_wrong_password_against_sushy_is_a_refusal_not_silence(
    sushy: Sushy, transports: Transports, tmp_path: Path
):
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password")
    wrong.chmod(0o600)
    inv = sushy_inventory(Sushy(sushy.port, sushy.pin, wrong))
    ctx = ctx_for(inv, transports, "power")
    readings = await collect_bmc(ctx, Target("node", "rf01", node="rf01"))
    (bmc,) = readings
    assert bmc.metric == "power.bmc_ok" and bmc.value is False
    assert "401" in bmc.detail


async def test_a_power_cycle_on_sushy_falls_back_to_forceoff_then_on_and_reads_it_back(
    sushy: Sushy, transports: Transports, tmp_path: Path
):
    inv = sushy_inventory(sushy)
    target = Target("node", "rf01", node="rf01")
    ctx = ctx_for(inv, transports, "power")
    before, system = await read_state(ctx, inv.nodes["rf01"])  # type: ignore[arg-type]
    assert "PowerCycle" not in system["reset_types"] and "ForceOff" in system["reset_types"]
    async with action_runner(inv, transports, tmp_path / "audit.db") as runner:
        plan = await runner.plan(SPEC["cycle"], [target], {})
        assert plan.confirm_text == "rf01"
        (preview,) = plan.previews
        assert f"https://127.0.0.1:{sushy.port}/redfish/v1/Systems/<id>" in "\n".join(preview.lines)
        started = time.monotonic()
        (result,) = await runner.execute(plan, "rf01")
        took = time.monotonic() - started
        assert result.outcome == "ok", result.detail
        assert "read back" in result.detail and "power on" in result.detail
        rows = runner.audit.page(newest_first=False)
        assert [r.phase for r in rows] == ["intent", "result"]
        assert rows[-1].outcome == "ok" and rows[-1].action == "power.cycle"
        assert "ResetType ForceOff then On accepted" in rows[-1].detail
        # sushy applies each change 1-11 s late: the off step was waited for, not assumed.
        if before == "on":
            assert took >= 1.0
        after, _ = await read_state(ctx, inv.nodes["rf01"])  # type: ignore[arg-type]
        assert after == "on"
