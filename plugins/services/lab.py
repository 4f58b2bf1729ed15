"""The services emulation for the lab: health endpoints over HTTP and systemd over SSH.

Every HTTP check of the inventory is served from one aiohttp app on loopback
(``/<check>/<path>``) with the body its product really returns; TCP checks get
a listening port each. ``systemctl show/restart/is-active/start/stop`` are
answered per host in systemd's own format.

Faults (target: a host name, a check name, or ``svc:<check>``; on a host, the
param ``service`` narrows it to one check):

- ``services.down``: HTTP 503 and the unit failed; a restart fails while it lasts.
- ``services.slow``: answers ``delay_ms`` (default 1500) late.
- ``services.degraded``: the body says degraded (Elasticsearch yellow, Gitea warn,
  a Harbor component unhealthy ...).
- ``services.unit_failed``: the unit crashed (exit-code) and the port is closed;
  ``systemctl restart`` brings it back.

A powered-off or down host's services do not answer. Checks with ``backends``
(a VIP, a gateway) and MinIO's objects and replication are in ``lab_ha.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from console.plugin import CommandReply, LabHostContext
from plugins.services.config import ServiceCheck, ServicesConfig
from plugins.services.lab_bodies import body_for
from plugins.services.lab_ha import LAB_ACCESS_KEY, HaLab
from plugins.services.parse import SHOW_PROPERTIES

log = logging.getLogger(__name__)

FAULTS = {
    "services.down": "HTTP 503 and the unit failed (param service: one check on a host)",
    "services.slow": "health answers late (param delay_ms, default 1500)",
    "services.degraded": "the health body reports degraded (ES yellow, Gitea warn ...)",
    "services.unit_failed": "the unit crashed; a systemctl restart brings it back",
}

ACTIVATION_S = (0.4, 1.0)
"""Lab seconds a unit spends ``activating`` after a (re)start."""

# The order systemd prints properties in: the service's own, then the unit's.
_PRINT_ORDER = (
    "Result",
    "NRestarts",
    "ExecMainStatus",
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "ActiveEnterTimestamp",
)


def _stamp(t: float | None) -> str:
    return "" if t is None else time.strftime("%a %Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


@dataclass(slots=True)
class UnitSim:
    """A simulated systemd unit."""

    active: str = "active"
    sub: str = "running"
    result: str = "success"
    n_restarts: int = 0
    since: float | None = None
    """When it entered its current state."""
    entered: float | None = None
    """When it last became active (``ActiveEnterTimestamp``)."""
    main_status: int = 0
    activating_until: float | None = None
    failed_by: str | None = None
    """The fault that failed it: ``services.down`` recovers by itself (Restart=on-failure)
    once the fault ends; ``services.unit_failed`` needs a restart (start limit hit)."""
    crash_cleared: bool = False
    """A restart after ``services.unit_failed`` brought it back while the fault lasts."""


class ServicesLab:
    """``console.plugin.LabEmulation`` for the services plugin."""

    def __init__(self, takeover_s: float = 5.0, replication_lag_s: float = 2.0) -> None:
        """
        Args:
            takeover_s: lab seconds a failover address stays unanswered before a
                surviving member takes it over.
            replication_lag_s: lab seconds before a MinIO write reaches its peers.
        """
        self._lab: Any = None
        self._checks: dict[str, ServiceCheck] = {}
        self.ha = HaLab(takeover_s, replication_lag_s, self._member_up)
        self._s3_secret_file: str | None = None
        self._units: dict[tuple[str, str], UnitSim] = {}
        self._checks_of_unit: dict[tuple[str, str], list[ServiceCheck]] = {}
        self._http: tuple[str, int] | None = None
        self._tcp: dict[str, asyncio.Server] = {}
        self._tcp_ports: dict[str, int] = {}
        self.restarts: list[tuple[str, str]] = []
        """Every ``systemctl restart`` run: (host, unit), for tests and the demo log."""

    # ------------------------------------------------------------------ lifecycle

    async def start(self, lab: Any) -> None:
        self._lab = lab
        section = lab.source.doc.plugins.get("services") or {}
        config = ServicesConfig.model_validate(section)
        now = lab.clock.now()
        for check in config.checks:
            self._checks[check.name] = check
            if check.systemd is not None and check.node is not None:
                key = (check.node, check.systemd.unit)
                # Started a while ago, so the demo does not look freshly booted.
                since = now - lab.rng.uniform(3600, 30 * 86400)
                self._units.setdefault(key, UnitSim(since=since, entered=since))
                self._checks_of_unit.setdefault(key, []).append(check)
        self.ha.configure(self._checks)
        folder = lab.state_dir / "services"
        folder.mkdir(mode=0o700, exist_ok=True)
        secret_file = folder / "s3.secret"
        secret = secrets.token_urlsafe(24)
        secret_file.write_text(secret + "\n", encoding="utf-8")
        secret_file.chmod(0o600)
        self._s3_secret_file = str(secret_file)
        app = web.Application(client_max_size=1 << 20)
        app.router.add_route("GET", "/{check}/{tail:.*}", self._handle)
        app.router.add_route("PUT", "/{check}/{tail:.*}", self._handle)
        self._http = await lab.serve_http(app)
        for check in config.checks:
            if check.tcp is not None:
                self._tcp_ports[check.name] = 0
                await self._open_tcp(check.name)

    async def stop(self) -> None:
        for server in self._tcp.values():
            server.close()
        for server in self._tcp.values():
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._tcp.clear()

    def fault_names(self) -> Sequence[str]:
        return sorted(FAULTS)

    def rewrite_config(self, section: dict[str, Any]) -> dict[str, Any]:
        """Point every HTTP check at the lab's app and every TCP check at its port."""
        if self._http is None:
            return section
        host, port = self._http
        config = ServicesConfig.model_validate(section)
        checks = []
        for check in config.checks:
            data = check.model_dump(mode="json", exclude_none=True)
            if check.http is not None:
                http = dict(data["http"])
                path = self._path(check)
                for gone in ("scheme", "port", "path", "tls_fingerprint", "ca_file"):
                    http.pop(gone, None)  # the lab serves plain HTTP on loopback
                http["url"] = f"http://{host}:{port}/{check.name}{path}"
                data["http"] = http
            if check.tcp is not None:
                data["tcp"] = {**data["tcp"], "host": host, "port": self._tcp_ports[check.name]}
            if self.ha.speaks_s3(check) and self._s3_secret_file is not None:
                access = (check.s3.access_key if check.s3 else None) or LAB_ACCESS_KEY
                self.ha.secrets[access] = self._read_secret()
                data["s3"] = {
                    **(data.get("s3") or {}),
                    "access_key": access,
                    "secret_key": f"file:{self._s3_secret_file}",
                }
            checks.append(data)
        return {**section, "checks": checks}

    def tick(self, now: float) -> None:
        for key in self._units:
            self._settle(key, now)
        self.ha.tick(now)
        for name in list(self._tcp_ports):
            self._schedule_tcp_sync(name)

    # ------------------------------------------------------------------ state

    @staticmethod
    def _path(check: ServiceCheck) -> str:
        http = check.http
        assert http is not None
        if http.url is not None:
            return urlsplit(http.url).path or "/"
        entry = check.entry
        return http.path or (entry.path if entry else "/")

    def _fault(self, name: str, check: ServiceCheck) -> Mapping[str, Any] | None:
        faults = self._lab.faults
        for target in (check.name, check.target_name):
            params = faults.get(name, target)
            if params is not None:
                return dict(params)
        if check.node is not None:
            params = faults.get(name, check.node)
            if params is not None and params.get("service") in (None, check.name):
                return dict(params)
        return None

    def _host_up(self, check: ServiceCheck) -> bool:
        if check.node is None or self._lab is None:
            return True
        if check.backends is not None and check.backends.mode == "failover":
            return True  # a failover address floats: its members decide
        host = self._lab.hosts.get(check.node)
        return host is None or (host.powered and host.fault("host.down") is None)

    def _settle(self, key: tuple[str, str], now: float) -> UnitSim:
        """Bring a unit up to date with the clock and the faults."""
        unit = self._units[key]
        checks = self._checks_of_unit.get(key, [])
        down = any(self._fault("services.down", c) is not None for c in checks)
        crash = any(self._fault("services.unit_failed", c) is not None for c in checks)
        if not crash:
            unit.crash_cleared = False
        if unit.activating_until is not None:
            if now < unit.activating_until:
                return unit
            unit.activating_until = None
            if down:
                self._fail(unit, now, "services.down")
            else:
                unit.active, unit.sub, unit.result, unit.since = "active", "running", "success", now
                unit.entered = now
                unit.main_status = 0
            return unit
        if unit.active == "active" and down:
            self._fail(unit, now, "services.down")
        elif unit.active == "active" and crash and not unit.crash_cleared:
            self._fail(unit, now, "services.unit_failed")
        elif unit.active == "failed" and unit.failed_by == "services.down" and not down:
            # systemd's Restart=on-failure brings it back once the cause is gone.
            unit.n_restarts += 1
            self._activate(unit, now)
        return unit

    @staticmethod
    def _fail(unit: UnitSim, now: float, cause: str) -> None:
        unit.active, unit.sub, unit.result = "failed", "failed", "exit-code"
        unit.main_status = 1
        unit.since = now
        unit.failed_by = cause

    def _activate(self, unit: UnitSim, now: float) -> None:
        unit.active, unit.sub, unit.result = "activating", "start", "success"
        unit.failed_by = None
        unit.activating_until = now + self._lab.rng.uniform(*ACTIVATION_S)

    def _read_secret(self) -> str:
        assert self._s3_secret_file is not None
        with open(self._s3_secret_file, encoding="utf-8") as f:
            return f.read().strip()

    def _member_up(self, check: ServiceCheck) -> bool:
        """A backend answers: its host up, no services.down, its unit active."""
        return (
            self._host_up(check)
            and self._fault("services.down", check) is None
            and self._service_running(check)
        )

    def _service_running(self, check: ServiceCheck) -> bool:
        """The process answers: host up and (if it has a unit) the unit active."""
        if not self._host_up(check):
            return False
        if check.systemd is None or check.node is None:
            return True
        key = (check.node, check.systemd.unit)
        return self._settle(key, self._lab.clock.now()).active == "active"

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        check = self._checks.get(request.match_info["check"])
        if check is None:
            raise web.HTTPNotFound(text="404 page not found\n")
        if request.method == "PUT" or (
            self.ha.speaks_s3(check) and not request.match_info["tail"].startswith("minio/")
        ):
            return await self._s3(request, check)
        down = self._fault("services.down", check)
        if (
            check.backends is not None
            and down is None
            and self._host_up(check)
            and not self.ha.serving(check, self._lab.clock.now())
        ):
            if check.backends.mode == "failover":
                # Nobody holds the address: nothing answers on it.
                if request.transport is not None:
                    request.transport.abort()
                raise web.HTTPServiceUnavailable()
            return web.json_response(
                {"message": "failure to get a peer from the ring-balancer"}, status=503
            )
        if not self._host_up(check) or (down is None and not self._service_running(check)):
            # Nothing listens: drop the connection, as a refused/reset port would.
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()
        rng = self._lab.rng
        delay_ms = rng.uniform(1.5, 6.0) + rng.expovariate(1.0)  # a few ms, a tail
        slow = self._fault("services.slow", check)
        if slow is not None:
            delay_ms += float(slow.get("delay_ms", 1500))
        await asyncio.sleep(delay_ms / 1000.0)
        if down is not None:
            return web.Response(status=503, text="Service Unavailable\n")
        degraded = self._fault("services.degraded", check) is not None
        path = "/" + request.match_info["tail"]
        return body_for(check.entry, path, degraded)

    async def _s3(self, request: web.Request, check: ServiceCheck) -> web.StreamResponse:
        """An S3 request: to the MinIO itself, or to whichever member holds the address."""
        if not self.ha.speaks_s3(check):
            raise web.HTTPMethodNotAllowed(request.method, ["GET"])
        now = self._lab.clock.now()
        served = self.ha.serving(check, now)
        member = self._checks[served[0]] if served else None
        if member is None or not self._host_up(member) or not self._host_up(check):
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()
        if not self._member_up(member):
            return web.Response(status=503, text="Service Unavailable\n")
        return await self.ha.handle_s3(request, check, member.name, now)

    # ------------------------------------------------------------------ TCP

    async def _open_tcp(self, name: str) -> None:
        if name in self._tcp or self._lab is None:
            return

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        port = self._tcp_ports.get(name, 0)
        try:
            server = await asyncio.start_server(accept, self._lab.bind, port)
        except OSError as exc:  # the port was taken meanwhile: try again next tick
            log.warning("lab services: cannot reopen port %s for %s: %s", port, name, exc)
            return
        self._tcp[name] = server
        self._tcp_ports[name] = server.sockets[0].getsockname()[1]

    def _schedule_tcp_sync(self, name: str) -> None:
        check = self._checks[name]
        running = self._service_running(check) and self._fault("services.down", check) is None
        if running and name not in self._tcp:
            asyncio.get_running_loop().create_task(self._open_tcp(name))
        elif not running and name in self._tcp:
            self._tcp.pop(name).close()

    # ------------------------------------------------------------------ systemctl

    async def command(self, host: LabHostContext, command: str) -> CommandReply | None:
        try:
            argv = shlex.split(command)
        except ValueError:
            return None
        if not argv or argv[0] != "systemctl":
            return None
        verb = next((a for a in argv[1:] if not a.startswith("-")), None)
        now = host.now
        if verb is None:
            return CommandReply(stderr="lab: systemctl without a verb\n", exit_status=1)
        if verb == "show":
            return self._show(host.name, argv, now)
        units = [self._unit_name(a) for a in argv[argv.index(verb) + 1 :] if not a.startswith("-")]
        if verb == "is-active":
            states = [self._get(host.name, u, now) for u in units]
            out = "".join(f"{s.active if s else 'inactive'}\n" for s in states)
            ok = all(s is not None and s.active == "active" for s in states)
            return CommandReply(stdout=out, exit_status=0 if ok else 3)
        if verb in ("restart", "start", "stop"):
            return self._change(host.name, verb, units, now)
        return CommandReply(stderr=f"lab: systemctl {verb} is not emulated\n", exit_status=1)

    @staticmethod
    def _unit_name(arg: str) -> str:
        return arg if "." in arg else arg + ".service"

    def _get(self, host: str, unit: str, now: float) -> UnitSim | None:
        key = (host, unit)
        return self._settle(key, now) if key in self._units else None

    def _show(self, host: str, argv: list[str], now: float) -> CommandReply:
        props: list[str] = list(_PRINT_ORDER)
        units: list[str] = []
        args = iter(argv[2:])
        for arg in args:
            if arg in ("-p", "--property"):
                props = next(args, "").split(",")
            elif arg.startswith("--property="):
                props = arg.split("=", 1)[1].split(",")
            elif arg.startswith("-p") and len(arg) > 2:
                props = arg[2:].split(",")
            elif arg == "--":
                continue
            elif not arg.startswith("-"):
                units.append(self._unit_name(arg))
        wanted = [p for p in _PRINT_ORDER if p in props] + [
            p for p in props if p not in _PRINT_ORDER and p in SHOW_PROPERTIES
        ]
        blocks = []
        for name in units:
            unit = self._get(host, name, now)
            values = self._properties(name, unit)
            blocks.append("".join(f"{p}={values.get(p, '')}\n" for p in wanted))
        return CommandReply(stdout="\n".join(blocks))

    @staticmethod
    def _properties(name: str, unit: UnitSim | None) -> dict[str, str]:
        if unit is None:
            return {
                "Id": name,
                "LoadState": "not-found",
                "ActiveState": "inactive",
                "SubState": "dead",
                "Result": "success",
                "NRestarts": "0",
                "ExecMainStatus": "0",
                "ActiveEnterTimestamp": "",
            }
        return {
            "Id": name,
            "LoadState": "loaded",
            "ActiveState": unit.active,
            "SubState": unit.sub,
            "Result": unit.result,
            "NRestarts": str(unit.n_restarts),
            "ExecMainStatus": str(unit.main_status),
            "ActiveEnterTimestamp": _stamp(unit.entered),
        }

    def _change(self, host: str, verb: str, units: list[str], now: float) -> CommandReply:
        for name in units:
            if (host, name) not in self._units:
                return CommandReply(
                    stderr=f"Failed to {verb} {name}: Unit {name} not found.\n", exit_status=5
                )
        for name in units:
            unit = self._units[(host, name)]
            if verb == "restart":
                self.restarts.append((host, name))
            if verb == "stop":
                unit.active, unit.sub, unit.activating_until = "inactive", "dead", None
                unit.since = now
                continue
            if verb == "start" and unit.active == "active":
                continue
            unit.crash_cleared = True
            self._activate(unit, now)
        return CommandReply()
