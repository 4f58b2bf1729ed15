"""Fixtures for the integration tests: a started lab, and a real OpenSSH sshd on loopback."""

from __future__ import annotations

import asyncio
import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from console.inventory.load import inventory_from_data
from console.inventory.model import Inventory, Node, SshAccess
from console.lab import Lab
from console.plugin import CommandReply, LabHostContext, Plugin
from tests.integration.prom_support import prom_lab  # noqa: F401 - the session fixture

SSHD = Path("/usr/sbin/sshd")
BIG_OUTPUT = 3 * 1024 * 1024


def small_inventory_data() -> dict[str, Any]:
    """Five hosts in two racks, one of each role the lab models, and a test plugin section."""
    return {
        "site": {"name": "lab-test"},
        "rooms": [
            {
                "name": "hall",
                "racks": [
                    {"name": "R01", "power_budget_kw": 40},
                    {"name": "R02", "power_budget_kw": 20},
                ],
            }
        ],
        "ssh": {"user": "ops"},
        "nodes": [
            {
                "nodes": "gpu[01-02]",
                "role": "gpu-train",
                "rack": "R01",
                "u_start": 1,
                "u_height": 4,
                "hardware": {"gpu_count": 8},
            },
            {"nodes": "inf01", "role": "gpu-infer", "rack": "R01", "u_start": 10},
            {"nodes": "cpu01", "role": "cpu", "rack": "R02", "u_start": 1},
            {"nodes": "stor01", "role": "storage", "rack": "R02", "u_start": 2},
        ],
        "plugins": {"labtest": {"url": "http://unset.invalid"}},
    }


def small_inventory() -> Inventory:
    return inventory_from_data(small_inventory_data(), None)


@dataclass
class LabTestEmulation:
    """A tiny plugin emulation: commands for the transport tests, one HTTP endpoint."""

    running: int = 0
    peak: int = 0
    url: str = ""
    hits: list[str] = field(default_factory=list)

    async def start(self, lab: Any) -> None:
        app = web.Application()

        async def hello(_: web.Request) -> web.Response:
            return web.Response(text="hello from the lab")

        app.router.add_get("/hello", hello)
        host, port = await lab.serve_http(app)
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        return None

    async def command(self, host: LabHostContext, command: str) -> CommandReply | None:
        self.hits.append(command)
        if command == "big-output":
            return CommandReply(stdout="x" * BIG_OUTPUT)
        if command.startswith("nap "):
            self.running += 1
            self.peak = max(self.peak, self.running)
            try:
                await asyncio.sleep(float(command.split()[1]))
            finally:
                self.running -= 1
            return CommandReply(stdout="rested\n")
        if command == "echo-fault":
            return CommandReply(stdout=f"{host.fault('labtest.broken')}\n")
        if command == "load":
            return CommandReply(stdout=f"{host.load:.3f} {host.powered}\n")
        return None

    def tick(self, now: float) -> None:
        return None

    def rewrite_config(self, section: dict[str, Any]) -> dict[str, Any]:
        return {**section, "url": self.url}

    def fault_names(self) -> Sequence[str]:
        return ("labtest.broken",)


def labtest_plugin(emulation: LabTestEmulation | None = None) -> Plugin:
    emu = emulation or LabTestEmulation()
    return Plugin(name="labtest", description="test emulation", lab=lambda: emu)


@pytest.fixture
def lab_emulation() -> LabTestEmulation:
    return LabTestEmulation()


@pytest.fixture
async def lab(tmp_path: Path, lab_emulation: LabTestEmulation) -> AsyncIterator[Lab]:
    """A started lab of five hosts (keys made in a fresh state dir), stopped after the test."""
    the_lab = Lab(small_inventory(), tmp_path / "lab", [labtest_plugin(lab_emulation)], seed=7)
    await the_lab.start()
    try:
        yield the_lab
    finally:
        await the_lab.stop()


def node_with(node: Node, **ssh: Any) -> Node:
    """A copy of a node with some SSH fields changed."""
    return node.model_copy(update={"ssh": node.ssh.model_copy(update=ssh)})


# --------------------------------------------------------------------------- OpenSSH sshd


@dataclass(frozen=True)
class OpenSshServer:
    host: str
    port: int
    user: str
    directory: Path
    client_key: Path
    known_hosts: Path
    host_key_pub: str

    def node(self, name: str = "sshd01", **ssh: Any) -> Node:
        access = SshAccess(
            host=self.host,
            port=self.port,
            user=self.user,
            identity=f"file:{self.client_key}",
            known_hosts=str(self.known_hosts),
        )
        return Node(name=name, role="cpu", ssh=access.model_copy(update=ssh))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def openssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenSshServer]:
    """OpenSSH's sshd on 127.0.0.1 and a free port, with generated keys; stopped at the end."""
    if not SSHD.exists() or shutil.which("ssh-keygen") is None:
        pytest.fail(
            "OpenSSH sshd is not installed: run `sudo scripts/install-peers.sh` "
            "(or apt-get install openssh-server openssh-client)"
        )
    d = tmp_path_factory.mktemp("sshd")
    _keygen(d / "host_ed25519")
    _keygen(d / "client_ed25519")
    (d / "authorized_keys").write_text((d / "client_ed25519.pub").read_text())
    (d / "authorized_keys").chmod(0o600)
    port = _free_port()
    config = d / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1:{port}\n"
        f"HostKey {d / 'host_ed25519'}\n"
        f"PidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n"
        "MaxStartups 500\nLogLevel INFO\n"
    )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [str(SSHD), "-D", "-f", str(config), "-E", str(d / "sshd.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    host_pub = (d / "host_ed25519.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            log = (d / "sshd.log").read_text() if (d / "sshd.log").exists() else ""
            pytest.fail(f"sshd exited with {proc.returncode}: {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                if s.recv(4).startswith(b"SSH-"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("sshd did not start listening within 10 s")
        time.sleep(0.05)
    try:
        yield OpenSshServer(
            host="127.0.0.1",
            port=port,
            user=getpass.getuser(),
            directory=d,
            client_key=d / "client_ed25519",
            known_hosts=d / "known_hosts",
            host_key_pub=" ".join(host_pub[:2]),
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_for(predicate: Any, timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true (a small loop with a deadline, not a sleep to sync)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def fleet_lab(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Lab]:
    """A started lab of generated GPU hosts (50, or the indirect parameter), spread over
    127.0.0.0/8 like `dcc lab --hosts N` (see tests/integration/fleet_support.py)."""
    from tests.integration.fleet_support import FLEET_HOSTS, running_fleet

    async with running_fleet(tmp_path / "fleet", getattr(request, "param", FLEET_HOSTS)) as lab:
        yield lab
