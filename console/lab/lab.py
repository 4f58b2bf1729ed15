"""The lab: a simulated datacenter speaking real protocols on loopback.

The frame knows no subsystem. It runs one SSH server per host (own port, own
persisted key, a known_hosts file a console verifies like any site's), a
clock and a load/power/temperature model, the host faults, a scenario, and a
control API. Plugins' ``lab`` factories add their subsystems (commands,
HTTP endpoints, their own faults).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import random
import socket
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncssh
from aiohttp import web

from console.inventory.model import Inventory, InventoryDoc
from console.lab import control
from console.lab.addresses import BMC_PLANE, HOST_PLANE, require_loopback, spread_address
from console.lab.deadman import DeadmanBook
from console.lab.effective import dump_inventory, effective_inventory, resolve_doc
from console.lab.faults import FRAME_FAULTS, FaultBook
from console.lab.keys import (
    ensure_private_dir,
    host_key_path,
    known_hosts_line,
    load_or_create_key,
)
from console.lab.scenario import (
    ScenarioRunner,
    load_scenario,
    resolve_scenario,
    usable_steps,
)
from console.lab.sim import LabClock, SimHost, rack_inlets
from console.lab.sshd import HostServer
from console.lab.timers import HostTimers
from console.plugin import CommandReply, LabEmulation, Plugin

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
HOSTS_PER_TICK_SECOND = 250
"""Past this many hosts the lab's clock ticks less often (4 s at 1,000 hosts)."""


class Lab:
    """The simulated datacenter. ``await start()``, use, ``await stop()``."""

    def __init__(
        self,
        doc_or_inventory: InventoryDoc | Inventory,
        state_dir: Path,
        plugins: Sequence[Plugin],
        *,
        seed: int = 0,
        speed: float = 1.0,
        scenario: str | Path | None = None,
        bind: str = "127.0.0.1",
        spread: bool = False,
    ) -> None:
        if not ipaddress.ip_address(bind).is_loopback:
            raise ValueError(f"the lab binds only to loopback, not {bind}")
        self.spread = spread
        """One loopback address per host (127.1.x.y) and per BMC (127.2.x.y), as a
        large site has (console.lab.addresses); otherwise everything on ``bind``."""
        self.source = (
            doc_or_inventory
            if isinstance(doc_or_inventory, Inventory)
            else resolve_doc(doc_or_inventory)
        )
        self.state_dir = Path(state_dir).expanduser().resolve()
        self.plugins = list(plugins)
        self.seed = seed
        self.bind = bind
        self.rng = random.Random(seed)
        self.clock = LabClock(speed)
        self.emulations: dict[str, LabEmulation] = {}
        self.faults = FaultBook(
            self.clock.now, known_names=self._fault_names, known_targets=lambda: self.hosts
        )
        self.deadman = DeadmanBook(self.faults, self.clock)
        self.timers = HostTimers(self.clock.now, self.clock.speed, self._answer_named)
        """``systemd-run --on-active`` timers on the hosts (a drill's dead man's switch)."""
        """Restores armed by drills, fired by the lab if nobody cancels them in time."""
        self.hosts: dict[str, SimHost] = {}
        self.servers: dict[str, HostServer] = {}
        self.scenario_name = scenario
        self.scenario_runner: ScenarioRunner | None = None
        self._inventory: Inventory | None = None
        self._runners: list[web.AppRunner] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.control_port: int | None = None
        self.started = False

    # ------------------------------------------------------------ public

    @property
    def inventory(self) -> Inventory:
        """The effective inventory (lab addresses, keys, plugin sections); after start."""
        if self._inventory is None:
            raise RuntimeError("the lab is not started")
        return self._inventory

    def write_inventory(self, path: Path) -> Path:
        dump_inventory(self.inventory, path)
        return path

    async def serve_http(
        self,
        app: web.Application,
        ssl_context: ssl.SSLContext | None = None,
        *,
        address: str | None = None,
    ) -> tuple[str, int]:
        """Serve an emulation's aiohttp app on loopback, ephemeral port; closed at stop.

        With ``ssl_context`` it serves HTTPS (a BMC's self-signed certificate);
        ``address`` (a host's or BMC's own, see ``SimHost.address``) defaults to ``bind``.
        """
        where = require_loopback(address) if address is not None else self.bind
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((where, 0))
        except OSError:
            sock.close()
            await runner.cleanup()
            raise
        port = int(sock.getsockname()[1])
        await web.SockSite(runner, sock, ssl_context=ssl_context).start()
        self._runners.append(runner)
        return where, port

    async def start(self) -> None:
        ensure_private_dir(self.state_dir)
        (self.state_dir / "hostkeys").mkdir(mode=0o700, exist_ok=True)
        client_key = load_or_create_key(self.state_dir / "id_ed25519")
        authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
        for plugin in self.plugins:
            if plugin.lab is not None:
                self.emulations[plugin.name] = plugin.lab()
        inlets = rack_inlets([r.name for _, r in self.source.racks()], self.seed)
        for i, (name, node) in enumerate(self.source.nodes.items()):
            host = self.hosts[name] = SimHost(
                node, self.clock, self.faults, self.seed, inlets.get(node.rack or "", 22.0)
            )
            if self.spread:
                host.address = spread_address(i, HOST_PLANE)
                host.bmc_address = spread_address(i, BMC_PLANE)
            else:
                host.address = host.bmc_address = self.bind
        try:
            await self._start_servers(authorized)
            self._write_known_hosts()
            for pname, emu in self.emulations.items():
                try:
                    await emu.start(self)
                except Exception:
                    log.exception("lab: the %s emulation failed to start", pname)
                    raise
            self._inventory = effective_inventory(
                self.source,
                {n: s.port for n, s in self.servers.items()},
                self.bind,
                self.state_dir,
                self.emulations,
                self.plugins,
                addresses={n: h.address for n, h in self.hosts.items()},
            )
            self.write_inventory(self.state_dir / "inventory.yaml")
            await self._start_control()
            self.faults.on_change(self._sync_servers)
            self._tasks.append(asyncio.create_task(self._ticker()))
            if self.scenario_name is not None:
                self._start_scenario(self.scenario_name)
        except BaseException:
            await self.stop()
            raise
        self.started = True
        log.info("lab: %d hosts on %s, state in %s", len(self.hosts), self.bind, self.state_dir)

    async def stop(self) -> None:
        self.deadman.cancel_all()
        self.timers.cancel_all()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for emu in self.emulations.values():
            try:
                await emu.stop()
            except Exception:  # one broken emulation must not keep ports open
                log.exception("lab: an emulation failed to stop")
        await asyncio.gather(*(s.stop() for s in self.servers.values()))
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        with contextlib.suppress(OSError):
            (self.state_dir / control.INFO_FILE).unlink()
        self.started = False

    def describe(self) -> dict[str, Any]:
        """What `dcc lab` and the control API report."""
        return {
            "state_dir": str(self.state_dir),
            "bind": self.bind,
            "hosts": {
                n: {
                    "address": s.bind,
                    "port": s.port,
                    "mode": s.mode,
                    "user": self.hosts[n].node.ssh.user,
                }
                for n, s in self.servers.items()
            },
            "fault_names": self.faults.names(),
            "faults": [f.as_dict() for f in self.faults.active()],
            "scenario": str(self.scenario_name) if self.scenario_name is not None else None,
        }

    # ------------------------------------------------------------ commands

    async def answer(self, host: SimHost, command: str) -> CommandReply:
        """The frame's commands first, then each emulation's, else "command not found"."""
        cmd = command.strip()
        if cmd == "hostname":
            return CommandReply(stdout=host.name + "\n")
        if cmd == "true":
            return CommandReply()
        if cmd == "uptime":
            return CommandReply(stdout=host.uptime())
        if cmd == "cat /proc/loadavg":
            return CommandReply(stdout=host.loadavg())
        timer = self.timers.answer(host.name, cmd)
        if timer is not None:
            return timer
        for pname, emu in self.emulations.items():
            try:
                reply = await emu.command(host, command)
            except Exception:
                log.exception("lab: the %s emulation failed on %r", pname, command)
                return CommandReply(stderr=f"lab: {pname} emulation error\n", exit_status=1)
            if reply is not None:
                return reply
        word = cmd.split()[0] if cmd.split() else cmd
        return CommandReply(stderr=f"bash: {word}: command not found\n", exit_status=127)

    async def _answer_named(self, name: str, command: str) -> CommandReply:
        """A command run on a host by the lab itself (a timer that fired)."""
        host = self.hosts[name]
        if not host.powered or host.fault("host.down") is not None:
            return CommandReply(stderr="lab: the host is down\n", exit_status=255)
        return await self.answer(host, command)

    # ------------------------------------------------------------ internals

    def _fault_names(self) -> list[str]:
        names = set(FRAME_FAULTS)
        for emu in self.emulations.values():
            names.update(emu.fault_names())
        return sorted(names)

    async def _start_servers(self, authorized: asyncssh.SSHAuthorizedKeys) -> None:
        hostkeys = self.state_dir / "hostkeys"
        for name, host in self.hosts.items():
            key = load_or_create_key(host_key_path(self.state_dir, name))

            def rotated(name: str = name) -> asyncssh.SSHKey:
                return load_or_create_key(host_key_path(self.state_dir, name, rotated=True))

            server = HostServer(host, host.address, key, rotated, authorized, self.answer)
            self.servers[name] = server
            host.port = await server.start()
        os.chmod(hostkeys, 0o700)

    def _write_known_hosts(self) -> None:
        lines = [
            "# Written by the dcconsole lab: its hosts' keys on their ports (rewritten at start).\n"
        ]
        for name, server in self.servers.items():
            lines.append(known_hosts_line(server.bind, server.port, server.host_key, name))
        (self.state_dir / "known_hosts").write_text("".join(lines), encoding="utf-8")

    async def _start_control(self) -> None:
        token = control.new_token(self.state_dir)
        _, port = await self.serve_http(control.make_app(self, token))
        self.control_port = port
        info = {"pid": os.getpid(), "control_host": self.bind, "control_port": port}
        (self.state_dir / control.INFO_FILE).write_text(json.dumps(info), encoding="utf-8")

    def _start_scenario(self, name: str | Path) -> None:
        scenario = load_scenario(resolve_scenario(name))
        steps = usable_steps(scenario, self._fault_names(), self.hosts)
        self.scenario_runner = ScenarioRunner(scenario, steps, self.faults, self.clock)
        self._tasks.append(asyncio.create_task(self.scenario_runner.run()))

    def _sync_servers(self) -> None:
        for server in self.servers.values():
            server.sync()

    async def _ticker(self) -> None:
        # A fleet ticks less often (the model takes any dt): 1,000 hosts' dynamics every
        # second were a tenth of a core, which a benchmark's client would not get.
        period = TICK_SECONDS * max(1.0, len(self.hosts) / HOSTS_PER_TICK_SECOND)
        dt = period * self.clock.speed
        while True:
            await asyncio.sleep(period)
            now = self.clock.now()
            for host in self.hosts.values():
                host.tick(dt)
            for pname, emu in self.emulations.items():
                try:
                    emu.tick(now)
                except Exception:
                    log.exception("lab: the %s emulation failed to tick", pname)
            self.faults.expire()
            self._sync_servers()  # also retries a port that could not be reopened
