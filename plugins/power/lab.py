"""The lab's Redfish BMCs: one HTTPS server per node with a BMC, coupled to its SimHost.

Resources follow the DMTF schemas and the sample JSON: Systems/1 (PowerState,
Reset, LocationIndicatorActive), Chassis/1 with legacy Thermal and Power and
the newer ThermalSubsystem (ThermalMetrics, Fans), PowerSubsystem
(PowerSupplies, Metrics) and EnvironmentMetrics, a SEL log service, and a
SessionService with a session limit (4; the fifth login gets 503).
Power, inlet and exhaust come from the SimHost (load -> watts); a reset
changes the SimHost's power (the frame's ``host.power_off``), so SSH to a
powered-off node fails as it would.

Faults (target: node name): ``power.psu_lost``, ``power.fan_failed``,
``power.inlet_rising`` (param rate_c_per_min, default 2), ``power.bmc_down``
(accepts, never answers), ``power.bmc_slow`` (param delay_s, default 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from console.lab.tls import ensure_cert, fingerprint, server_context
from console.plugin import CommandReply, LabHostContext

log = logging.getLogger(__name__)

FAULTS = {
    "power.psu_lost": "PSU 2 loses its input: redundancy lost",
    "power.fan_failed": "fan 2 stops (0 RPM, critical)",
    "power.inlet_rising": "the inlet warms by rate_c_per_min (default 2) while it lasts",
    "power.bmc_down": "the BMC accepts connections and never answers",
    "power.bmc_slow": "the BMC answers delay_s (default 3) late",
}
SESSION_LIMIT = 4
USER = "admin"
PSU_CAPACITY_W = 3000.0


@dataclass(slots=True)
class Bmc:
    name: str
    port: int = 0
    address: str = "127.0.0.1"
    """Its own loopback address in a spread lab (the management network), else the lab's."""
    sessions: dict[str, str] = field(default_factory=dict)
    """token -> session id."""
    next_id: int = 1
    identify: bool = False
    log: list[dict[str, Any]] = field(default_factory=list)
    pending: list[tuple[float, str]] = field(default_factory=list)
    """(lab time, "on"/"off"): power changes that land later (an OS shutting down)."""
    logins: int = 0
    seen_faults: set[str] = field(default_factory=set)


BMC_KEY: web.AppKey[Bmc] = web.AppKey("bmc", Bmc)


class PowerLab:
    """``console.plugin.LabEmulation`` for the power plugin."""

    def __init__(self) -> None:
        self._lab: Any = None
        self.bmcs: dict[str, Bmc] = {}
        self.password = ""
        self.password_file = ""
        self.fingerprint = ""
        self._stopping = asyncio.Event()
        self.exporters: dict[str, Any] = {}
        """``ipmi``: an ipmi_exporter beside each BMC (plugins.power.lab_exporter)."""

    # ------------------------------------------------------------ lifecycle

    async def start(self, lab: Any) -> None:
        self._lab = lab
        folder = lab.state_dir / "bmc"
        cert, key = ensure_cert(folder, "dcconsole lab BMC")
        self.fingerprint = fingerprint(cert)
        pw = folder / "password"
        if not pw.exists():
            pw.write_text(secrets.token_urlsafe(18) + "\n", encoding="utf-8")
        pw.chmod(0o600)
        self.password = pw.read_text(encoding="utf-8").strip()
        self.password_file = str(pw)
        ctx = server_context(cert, key)
        for name, host in lab.hosts.items():
            if host.node.bmc is None:
                continue
            bmc = Bmc(name)
            where = getattr(host, "bmc_address", None)
            bmc.address, bmc.port = await lab.serve_http(
                self._app(bmc), ssl_context=ctx, address=where
            )
            self.bmcs[name] = bmc
        from plugins.power.lab_exporter import start_exporters

        await start_exporters(self, lab)

    async def stop(self) -> None:
        self._stopping.set()
        for exporter in self.exporters.values():
            await exporter.stop()

    def fault_names(self) -> Sequence[str]:
        return list(FAULTS)

    def rewrite_config(self, section: dict[str, Any]) -> dict[str, Any]:
        return section

    def rewrite_inventory(self, data: dict[str, Any]) -> dict[str, Any]:
        """Point every node's BMC at its lab server, with the certificate pinned."""
        for group in data.get("nodes", []):
            bmc = self.bmcs.get(group.get("nodes", ""))
            if bmc is None or "bmc" not in group:
                continue
            group["bmc"] = {
                "address": bmc.address,
                "port": bmc.port,
                "protocol": "redfish",
                "user": USER,
                "password": f"file:{self.password_file}",
                "tls_fingerprint": self.fingerprint,
            }
        ipmi = self.exporters.get("ipmi")
        if ipmi is not None:
            from console.lab.exporters import declare_exporters

            data = declare_exporters(data, "ipmi", ipmi.instances)
        return data

    async def command(self, host: LabHostContext, command: str) -> CommandReply | None:
        return None

    def tick(self, now: float) -> None:
        for name, bmc in self.bmcs.items():
            host = self.host(name)
            for fault, message in (
                ("power.psu_lost", "Power Supply 2: input lost, redundancy lost"),
                ("power.fan_failed", "Fan Bay 2: failure detected"),
            ):
                active = host.fault(fault) is not None
                if active and fault not in bmc.seen_faults:
                    self._event(name, "Critical", message)
                    bmc.seen_faults.add(fault)
                elif not active:
                    bmc.seen_faults.discard(fault)
            due = [p for p in bmc.pending if p[0] <= now]
            bmc.pending = [p for p in bmc.pending if p[0] > now]
            for _, want in due:
                self.set_power(name, want == "on")

    # ------------------------------------------------------------ model

    def host(self, name: str) -> Any:
        return self._lab.hosts[name]

    def set_power(self, name: str, on: bool) -> None:
        faults = self._lab.faults
        host = self.host(name)
        if on:
            for f in faults.active():
                if f.name == "host.power_off" and f.target == name:
                    faults.clear(f.id)
        elif host.powered:
            faults.inject("host.power_off", name)
        host._update_thermal()  # the BMC reads the new draw at once
        self._event(name, "OK", f"System power {'on' if on else 'off'}")

    def _event(self, name: str, severity: str, message: str) -> None:
        bmc = self.bmcs[name]
        bmc.log.append(
            {
                "Id": str(len(bmc.log) + 1),
                "Created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._lab.clock.now())),
                "Severity": severity,
                "Message": message,
                "EntryType": "SEL",
            }
        )
        del bmc.log[:-100]

    def inlet(self, name: str) -> float:
        host = self.host(name)
        rising = host.fault("power.inlet_rising")
        extra = 0.0
        if rising is not None:
            f = next(
                (
                    f
                    for f in self._lab.faults.active()
                    if f.name == "power.inlet_rising" and f.target == name
                ),
                None,
            )
            since = f.since if f is not None else host.now
            extra = float(rising.get("rate_c_per_min", 2.0)) * (host.now - since) / 60.0
        return round(float(host.inlet_c) + extra, 1)

    def exhaust(self, name: str) -> float:
        host = self.host(name)
        return round(float(host.exhaust_c) + self.inlet(name) - float(host.inlet_c), 1)

    # ------------------------------------------------------------ HTTP

    def _app(self, bmc: Bmc) -> web.Application:
        app = web.Application(middlewares=[self._middleware(bmc)])
        r = app.router
        r.add_get("/redfish/v1/", self._root)
        r.add_get("/redfish/v1", self._root)
        r.add_post("/redfish/v1/SessionService/Sessions", self._login)
        r.add_delete("/redfish/v1/SessionService/Sessions/{sid}", self._logout)
        r.add_route("*", "/redfish/v1/{tail:.*}", self._resource)
        app[BMC_KEY] = bmc
        return app

    def _middleware(self, bmc: Bmc) -> Any:
        @web.middleware
        async def mw(request: web.Request, handler: Any) -> web.StreamResponse:
            host = self.host(bmc.name)
            if host.fault("power.bmc_down") is not None:
                # Silent, not refusing: hold the request until the fault ends or the lab stops.
                while host.fault("power.bmc_down") is not None and not self._stopping.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), 0.5)
                if self._stopping.is_set():
                    return _error(503, "Base.1.8.ServiceShuttingDown", "shutting down")
            slow = host.fault("power.bmc_slow")
            if slow is not None:
                await asyncio.sleep(float(slow.get("delay_s", 3.0)))
            public = request.path.rstrip("/") == "/redfish/v1" or (
                request.method == "POST" and request.path == "/redfish/v1/SessionService/Sessions"
            )
            if not public and request.headers.get("X-Auth-Token") not in bmc.sessions:
                return _error(401, "Base.1.8.NoValidSession", "No valid session")
            response: web.StreamResponse = await handler(request)
            return response

        return mw

    async def _root(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "@odata.id": "/redfish/v1",
                "@odata.type": "#ServiceRoot.v1_11_0.ServiceRoot",
                "Id": "RootService",
                "RedfishVersion": "1.15.0",
                "Systems": {"@odata.id": "/redfish/v1/Systems"},
                "Chassis": {"@odata.id": "/redfish/v1/Chassis"},
                "SessionService": {"@odata.id": "/redfish/v1/SessionService"},
                "Links": {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}},
            }
        )

    async def _login(self, request: web.Request) -> web.Response:
        bmc: Bmc = request.app[BMC_KEY]
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "Base.1.8.MalformedJSON", "The request body is not JSON")
        if (
            not isinstance(body, dict)
            or body.get("UserName") != USER
            or body.get("Password") != self.password
        ):
            return _error(401, "Base.1.8.InsufficientPrivilege", "Invalid user name or password")
        if len(bmc.sessions) >= SESSION_LIMIT:
            return _error(
                503, "Base.1.8.SessionLimitExceeded", "The session limit has been exceeded"
            )
        sid = str(bmc.next_id)
        bmc.next_id += 1
        bmc.logins += 1
        token = secrets.token_hex(16)
        bmc.sessions[token] = sid
        uri = f"/redfish/v1/SessionService/Sessions/{sid}"
        return web.json_response(
            {"@odata.id": uri, "Id": sid, "UserName": USER},
            status=201,
            headers={"X-Auth-Token": token, "Location": uri},
        )

    async def _logout(self, request: web.Request) -> web.Response:
        bmc: Bmc = request.app[BMC_KEY]
        sid = request.match_info["sid"]
        for token, s in list(bmc.sessions.items()):
            if s == sid:
                del bmc.sessions[token]
                return web.Response(status=204)
        return _error(404, "Base.1.8.ResourceMissingAtURI", "No such session")

    async def _resource(self, request: web.Request) -> web.StreamResponse:
        from plugins.power.lab_resources import resource

        bmc: Bmc = request.app[BMC_KEY]
        path = "/redfish/v1/" + request.match_info["tail"].rstrip("/")
        if request.method == "POST" and path.endswith("/Actions/ComputerSystem.Reset"):
            return await self._reset(bmc, request)
        if request.method == "PATCH" and path == "/redfish/v1/Systems/1":
            body = await request.json()
            if isinstance(body, dict) and isinstance(body.get("LocationIndicatorActive"), bool):
                bmc.identify = body["LocationIndicatorActive"]
                return web.Response(status=204)
            return _error(
                400, "Base.1.8.PropertyUnknown", "Only LocationIndicatorActive can be changed"
            )
        if request.method != "GET":
            return _error(405, "Base.1.8.OperationNotAllowed", "Method not allowed")
        data = resource(self, bmc, path)
        if data is None:
            return _error(404, "Base.1.8.ResourceMissingAtURI", f"{path} not found")
        return web.json_response(data)

    async def _reset(self, bmc: Bmc, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "Base.1.8.MalformedJSON", "The request body is not JSON")
        rtype = body.get("ResetType") if isinstance(body, dict) else None
        now = self._lab.clock.now()
        on = self.host(bmc.name).powered
        if rtype in ("On", "ForceOn"):
            bmc.pending.clear()
            bmc.pending.append((now + 1.0, "on"))
        elif rtype == "ForceOff":
            bmc.pending.clear()
            self.set_power(bmc.name, False)
        elif rtype == "GracefulShutdown":
            if on:
                bmc.pending.append((now + 3.0, "off"))  # the OS takes a moment
        elif rtype == "PowerCycle":
            self.set_power(bmc.name, False)
            bmc.pending.append((now + 2.0, "on"))
        elif rtype in ("ForceRestart", "GracefulRestart"):
            if not on:
                return _error(409, "Base.1.8.ActionNotSupported", "The system is off")
            self._event(bmc.name, "OK", f"System reset ({rtype})")
        else:
            return _error(
                400, "Base.1.8.ActionParameterNotSupported", f"ResetType {rtype!r} is not supported"
            )
        return web.Response(status=204)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {
            "error": {
                "code": code,
                "message": message,
                "@Message.ExtendedInfo": [{"MessageId": code}],
            }
        },
        status=status,
    )
