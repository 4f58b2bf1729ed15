"""The InfiniBand emulation for the lab: HCAs per node and a small fat tree.

Each node with ``hardware.ib_ports: N`` gets N single-port ConnectX HCAs
(``mlx5_0`` ...) at ``ib_rate_gbps`` (400 NDR, 200 HDR, 100 EDR); each rack
gets a leaf switch (hosts on ports 1..32, uplinks on 33+), two spines join the
leaves. The node collector's script is answered in the real tools' formats
(``head -v`` of sysfs, ``ibstat``, ``perfquery``); the fabric node answers
``iblinkinfo``; ``perfquery -R`` clears a port; ``ibportstate`` disables/enables
a switch port (its HCA then goes Down/Polling; on an inter-switch link both ends
go down, and for ``reroute_s`` -- until the subnet manager's sweep has routed
around it -- the hosts under that leaf drop a few packets: ``PortXmitDiscards``
and ``PortXmitWait`` climb, then stop).

Faults (target: a host; param ``port``: ``mlx5_0/1`` by default):

- ``infiniband.flapping``: the link goes down and retrains every ``period_s`` (20).
- ``infiniband.low_rate``: trained at ``gbps`` (half the expected) or ``width`` 2X.
- ``infiniband.symbol_errors``: symbol errors climb at ``per_min`` (120).
- ``infiniband.port_down``: the port is Down, physical state Polling (no peer).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from console.plugin import CommandReply, LabHostContext
from plugins.infiniband.config import InfinibandConfig
from plugins.infiniband.dump import FABRIC_MARK, NODE_MARK

FAULTS = {
    "infiniband.flapping": "the link goes down and retrains every period_s (default 20)",
    "infiniband.low_rate": "the port trained at a lower rate (param gbps) or width (param width)",
    "infiniband.symbol_errors": "symbol errors climb at per_min (default 120)",
    "infiniband.port_down": "the port is Down/Polling (param port, default mlx5_0/1)",
}
SPEEDS = {400: "NDR", 200: "HDR", 100: "EDR", 56: "FDR", 40: "QDR", 20: "DDR", 10: "SDR"}
LANE_GBPS = {
    "NDR": 106.25,
    "HDR": 53.125,
    "EDR": 25.78125,
    "FDR": 14.0625,
    "QDR": 10.0,
    "DDR": 5.0,
    "SDR": 2.5,
}
HOST_PORTS = 32
FLAP_DOWN_S = 3.0


@dataclass(slots=True)
class PortSim:
    host: str
    device: str
    lid: int
    guid: int
    gbps: int
    leaf: str
    leaf_port: int
    counters: dict[str, float] = field(default_factory=dict)
    last_flap: float | None = None
    switch_disabled: bool = False

    @property
    def key(self) -> str:
        return f"{self.device}/1"


@dataclass(slots=True)
class SwitchSim:
    name: str
    lid: int
    guid: int
    links: dict[int, tuple[str, int]] = field(default_factory=dict)
    """port -> (peer name, peer port) for switch-to-switch links."""
    disabled: set[int] = field(default_factory=set)
    """Ports disabled with ibportstate (inter-switch links)."""


class InfinibandLab:
    """``console.plugin.LabEmulation`` for the infiniband plugin."""

    def __init__(self, reroute_s: float = 3.0) -> None:
        """``reroute_s``: lab seconds the subnet manager takes to route around a lost link."""
        self.reroute_s = reroute_s
        self.rerouting: dict[str, float] = {}
        """leaf -> lab time its routes are fixed (an inter-switch link went down)."""
        self.reroutes: list[tuple[str, float]] = []
        """(leaf, lab time) of every reroute the subnet manager finished."""
        self._lab: Any = None
        self.ports: dict[tuple[str, str], PortSim] = {}
        self.switches: dict[str, SwitchSim] = {}
        self.fabric_node: str | None = None
        self._last_tick: float | None = None
        self.cleared: list[tuple[str, str]] = []
        self.port_changes: list[tuple[str, int, str]] = []
        self.exporters: dict[str, Any] = {}
        """``node``: node_exporter per host with HCAs (plugins.infiniband.lab_exporter)."""

    # ------------------------------------------------------------------ lifecycle

    async def start(self, lab: Any) -> None:
        self._lab = lab
        section = lab.source.doc.plugins.get("infiniband") or {}
        self.fabric_node = InfinibandConfig.model_validate(section).fabric_node
        nodes = [n for _, n in sorted(lab.source.nodes.items()) if n.hardware.ib_ports > 0]
        racks = sorted({n.rack or "none" for n in nodes})
        next_lid = 1
        for i in (1, 2):
            self.switches[f"spine0{i}"] = SwitchSim(f"spine0{i}", next_lid, 0x200000 + next_lid)
            next_lid += 1
        for i, _rack in enumerate(racks, 1):
            leaf = SwitchSim(f"leaf{i:02d}", next_lid, 0x200000 + next_lid)
            next_lid += 1
            for s, spine in enumerate(("spine01", "spine02")):
                leaf.links[HOST_PORTS + 1 + s] = (spine, i)
                self.switches[spine].links[i] = (leaf.name, HOST_PORTS + 1 + s)
            self.switches[leaf.name] = leaf
        used: dict[str, int] = {}
        for n in nodes:
            leaf = self.switches[f"leaf{racks.index(n.rack or 'none') + 1:02d}"]
            for d in range(n.hardware.ib_ports):
                used[leaf.name] = used.get(leaf.name, 0) + 1
                p = PortSim(
                    n.name,
                    f"mlx5_{d}",
                    next_lid,
                    0x946DAE0300000000 + next_lid,
                    n.hardware.ib_rate_gbps or 200,
                    leaf.name,
                    used[leaf.name],
                )
                next_lid += 1
                # Some history, so the demo's totals are not all zero.
                p.counters = {
                    "port_xmit_data": lab.rng.uniform(1e12, 5e12),
                    "port_rcv_data": lab.rng.uniform(1e12, 5e12),
                    "port_xmit_packets": lab.rng.uniform(1e9, 5e9),
                    "port_rcv_packets": lab.rng.uniform(1e9, 5e9),
                    "link_downed": 1.0,
                }
                self.ports[(n.name, p.device)] = p
        from plugins.infiniband.lab_exporter import start_exporters

        await start_exporters(self, lab)

    async def stop(self) -> None:
        for exporter in self.exporters.values():
            await exporter.stop()

    def rewrite_inventory(self, data: dict[str, Any]) -> dict[str, Any]:
        """Each node with HCAs declares its node_exporter's address (``exporters.node``)."""
        from console.lab.exporters import declare_exporters

        node = self.exporters.get("node")
        return declare_exporters(data, "node", node.instances) if node is not None else data

    def fault_names(self) -> Sequence[str]:
        return sorted(FAULTS)

    def rewrite_config(self, section: dict[str, Any]) -> dict[str, Any]:
        return section

    # ------------------------------------------------------------------ dynamics

    def _fault(self, p: PortSim, name: str) -> Mapping[str, Any] | None:
        host = self._lab.hosts.get(p.host) if self._lab else None
        params = host.fault(name) if host is not None else None
        if params is None:
            return None
        return params if str(params.get("port", "mlx5_0/1")) == p.key else None

    def tick(self, now: float) -> None:
        dt = 0.0 if self._last_tick is None else max(0.0, now - self._last_tick)
        self._last_tick = now
        if dt == 0.0 or self._lab is None:
            return
        for p in self.ports.values():
            host = self._lab.hosts.get(p.host)
            if host is None or not host.powered or not self._up(p, now):
                continue
            if p.leaf in self.rerouting:
                # Packets routed to the lost link are dropped until the SM's sweep.
                p.counters["port_xmit_discards"] = p.counters.get("port_xmit_discards", 0.0) + 4
                p.counters["port_xmit_wait"] = p.counters.get("port_xmit_wait", 0.0) + 5e5 * dt
            octets = p.gbps * 1e9 / 8 * (0.05 + 0.6 * host.load) * dt / 4
            for c in ("port_xmit_data", "port_rcv_data"):
                p.counters[c] = p.counters.get(c, 0.0) + octets
            for c in ("port_xmit_packets", "port_rcv_packets"):
                p.counters[c] = p.counters.get(c, 0.0) + octets * 4 / 4096
            sym = self._fault(p, "infiniband.symbol_errors")
            if sym is not None:
                per_min = float(sym.get("per_min", 120))
                p.counters["symbol_error"] = p.counters.get("symbol_error", 0.0) + per_min * dt / 60
                p.counters["port_rcv_errors"] = (
                    p.counters.get("port_rcv_errors", 0.0) + per_min * dt / 600
                )
            flap = self._fault(p, "infiniband.flapping")
            if flap is not None:
                period = float(flap.get("period_s", 20))
                if p.last_flap is None or now - p.last_flap >= period:
                    p.last_flap = now
                    for c in ("link_downed", "link_error_recovery"):
                        p.counters[c] = p.counters.get(c, 0.0) + 1
        for leaf, until in list(self.rerouting.items()):
            if now >= until:  # the subnet manager's sweep is done: routes avoid the link
                del self.rerouting[leaf]
                self.reroutes.append((leaf, now))

    def _up(self, p: PortSim, now: float) -> bool:
        if p.switch_disabled or self._fault(p, "infiniband.port_down") is not None:
            return False
        if self._fault(p, "infiniband.flapping") is not None and p.last_flap is not None:
            return now - p.last_flap >= FLAP_DOWN_S
        return True

    def _rate(self, p: PortSim) -> tuple[int, int, str]:
        """(Gb/s, width, speed) as trained now."""
        low = self._fault(p, "infiniband.low_rate")
        gbps, width = p.gbps, 4
        if low is not None:
            if "width" in low:
                width = int(low["width"])
                gbps = gbps * width // 4
            else:
                gbps = int(low.get("gbps", gbps // 2))
        speed = SPEEDS.get(gbps * 4 // width, SPEEDS.get(gbps, "HDR"))
        return gbps, width, speed

    # ------------------------------------------------------------------ commands

    async def command(self, host: LabHostContext, command: str) -> CommandReply | None:
        if command.startswith(NODE_MARK):
            return CommandReply(stdout=self._node_dump(host))
        if command.startswith(FABRIC_MARK):
            if host.name != self.fabric_node:
                return CommandReply(stdout="@@ iblinkinfo\nibwarn: no fabric here\n@@ rc 1\n")
            return CommandReply(stdout="@@ iblinkinfo\n" + self.iblinkinfo(host.now) + "@@ rc 0\n")
        try:
            argv = shlex.split(command)
        except ValueError:
            return None
        if argv[:1] == ["perfquery"]:
            return self._perfquery(host, argv)
        if argv[:1] == ["ibportstate"]:
            return self._ibportstate(host, argv)
        return None

    def _host_ports(self, host: str) -> list[PortSim]:
        return sorted(
            (p for p in self.ports.values() if p.host == host),
            key=lambda p: int(p.device.split("_")[1]),
        )

    def _state(self, p: PortSim, now: float) -> tuple[str, str]:
        if p.switch_disabled:
            return "1: DOWN", "2: Polling"
        if not self._up(p, now):
            return "1: DOWN", "2: Polling"
        return "4: ACTIVE", "5: LinkUp"

    def _node_dump(self, host: LabHostContext) -> str:
        root = "/sys/class/infiniband"
        out = ["@@ sysfs"]
        ports = self._host_ports(host.name)
        for p in ports:
            d = f"{root}/{p.device}"
            files = {
                f"{d}/fw_ver": "28.39.1002",
                f"{d}/hca_type": "MT4129",
                f"{d}/node_guid": _guid(p.guid),
            }
            state, phys = self._state(p, host.now)
            gbps, width, speed = self._rate(p)
            pd = f"{d}/ports/1"
            files |= {
                f"{pd}/cap_mask": "0xa751e848",
                f"{pd}/lid": hex(p.lid),
                f"{pd}/link_layer": "InfiniBand",
                f"{pd}/phys_state": phys,
                f"{pd}/rate": f"{gbps} Gb/sec ({width}X {speed})",
                f"{pd}/sm_lid": "0x1",
                f"{pd}/state": state,
            }
            for c in _COUNTER_FILES:
                files[f"{pd}/counters/{c}"] = str(int(p.counters.get(c, 0.0)))
            out += [f"==> {k} <==\n{v}\n" for k, v in files.items()]
        out.append("@@ ibstat")
        for p in ports:
            state, phys = self._state(p, host.now)
            gbps, _w, _s = self._rate(p)
            out.append(
                f"CA '{p.device}'\n\tCA type: MT4129\n\tNumber of ports: 1\n"
                f"\tFirmware version: 28.39.1002\n\tHardware version: 0\n"
                f"\tNode GUID: {_guid(p.guid)}\n\tSystem image GUID: {_guid(p.guid)}\n"
                f"\tPort 1:\n\t\tState: {state.split(': ')[1].title()}\n"
                f"\t\tPhysical state: {phys.split(': ')[1]}\n\t\tRate: {gbps}\n"
                f"\t\tBase lid: {p.lid}\n\t\tLMC: 0\n\t\tSM lid: 1\n"
                f"\t\tCapability mask: 0xa751e848\n\t\tPort GUID: {_guid(p.guid)}\n"
                "\t\tLink layer: InfiniBand"
            )
        out.append("@@ rc 0")
        return "\n".join(out) + "\n"

    def _find(self, host: str, argv: list[str]) -> PortSim | None:
        dev = argv[argv.index("-C") + 1] if "-C" in argv[:-1] else "mlx5_0"
        return self.ports.get((host, dev))

    def _perfquery(self, host: LabHostContext, argv: list[str]) -> CommandReply:
        p = self._find(host.name, argv)
        if p is None:
            return CommandReply(stderr="ibpanic: [1] main: can't resolve CA\n", exit_status=255)
        if "-R" in argv:  # like the real tool: resets, prints nothing
            for c in _COUNTER_FILES:
                p.counters[c] = 0.0
            self.cleared.append((host.name, p.key))
            return CommandReply()
        return CommandReply(stdout=perfquery_text(p))

    def _ibportstate(self, host: LabHostContext, argv: list[str]) -> CommandReply:
        if host.name != self.fabric_node:
            return CommandReply(stderr="ibportstate: iberror: no fabric access\n", exit_status=255)
        args = [a for a in argv[1:] if not a.startswith("-")]
        if len(args) != 3 or not args[1].isdigit():
            return CommandReply(stderr="usage: ibportstate <dest> <port> <op>\n", exit_status=255)
        dest, port, op = args[0], int(args[1]), args[2]
        by_guid = "-G" in argv
        sw = next(
            (
                s
                for s in self.switches.values()
                if (by_guid and int(dest, 16) == s.guid) or (not by_guid and dest == str(s.lid))
            ),
            None,
        )
        if sw is None:
            return CommandReply(stderr="ibportstate: iberror: failed: smp query\n", exit_status=255)
        hcas = [p for p in self.ports.values() if p.leaf == sw.name and p.leaf_port == port]
        if op in ("disable", "enable"):
            for p in hcas:
                p.switch_disabled = op == "disable"
            if port in sw.links:
                self._isl(sw, port, op == "disable", host.now)
            self.port_changes.append((sw.name, port, op))
        elif op != "query":
            return CommandReply(stderr=f"ibportstate: unknown op {op}\n", exit_status=255)
        disabled = any(p.switch_disabled for p in hcas) or port in sw.disabled
        state = "Down" if disabled else "Active"
        phys = "Disabled" if disabled else "LinkUp"
        return CommandReply(
            stdout=f"Switch PortInfo:\n# Port info: Lid {sw.lid} port {port}\n"
            f"LinkState:.......................{state}\nPhysLinkState:...................{phys}\n"
        )

    def _isl(self, sw: SwitchSim, port: int, disable: bool, now: float) -> None:
        """An inter-switch link disabled or enabled: the leaf at either end reroutes."""
        if disable:
            sw.disabled.add(port)
        else:
            sw.disabled.discard(port)
        peer, _ = sw.links[port]
        leaf = sw.name if sw.name.startswith("leaf") else peer
        self.rerouting[leaf] = now + self.reroute_s

    def _isl_down(self, sw: SwitchSim, port: int) -> bool:
        peer, pport = sw.links[port]
        return port in sw.disabled or pport in self.switches[peer].disabled

    def iblinkinfo(self, now: float) -> str:
        lines = []
        for p in self.ports.values():
            sw = self.switches[p.leaf]
            lines.append(f"CA: {p.host} {p.device}:")
            if self._up(p, now):
                _gbps, width, speed = self._rate(p)
                lane = LANE_GBPS.get(speed, 53.125)
                lines.append(
                    f"      {_guid(p.guid)} {p.lid:>6}    1[  ] ==( {width}X {lane:>13} Gbps "
                    f'Active/  LinkUp)==> {sw.lid:>7} {p.leaf_port:>4}[  ] "{sw.name}" ( )'
                )
            else:
                lines.append(
                    f"      {_guid(p.guid)} {p.lid:>6}    1[  ] ==("
                    '                Down/ Polling)==>             [  ] "" ( )'
                )
        for sw in self.switches.values():
            lines.append(f"Switch: {_guid(sw.guid)} {sw.name}:")
            hcas = {p.leaf_port: p for p in self.ports.values() if p.leaf == sw.name}
            top = max([*hcas, *sw.links, 1])
            for port in range(1, top + 1):
                head = f"{sw.lid:>12} {port:>4}[  ] ==("
                if port in sw.disabled:
                    lines.append(
                        f'{head}                Down/Disabled)==>      "Port not available"'
                    )
                elif port in sw.links and self._isl_down(sw, port):
                    lines.append(f'{head}                Down/ Polling)==>             [  ] "" ( )')
                elif port in sw.links:
                    peer, pport = sw.links[port]
                    plid = self.switches[peer].lid
                    lines.append(
                        f"{head} 4X        53.125 Gbps Active/  LinkUp)==>"
                        f'{plid:>8} {pport:>4}[  ] "{peer}" ( )'
                    )
                elif port in hcas and hcas[port].switch_disabled:
                    lines.append(
                        f'{head}                Down/Disabled)==>      "Port not available"'
                    )
                elif port in hcas and self._up(hcas[port], now):
                    p = hcas[port]
                    _gbps, width, speed = self._rate(p)
                    lane = LANE_GBPS.get(speed, 53.125)
                    lines.append(
                        f"{head} {width}X {lane:>13} Gbps Active/  LinkUp)==>"
                        f'{p.lid:>8}    1[  ] "{p.host} {p.device}" ( )'
                    )
                else:
                    lines.append(f'{head}                Down/ Polling)==>             [  ] "" ( )')
        return "\n".join(lines) + "\n"


_COUNTER_FILES = (
    "symbol_error",
    "link_error_recovery",
    "link_downed",
    "port_rcv_errors",
    "port_rcv_remote_physical_errors",
    "port_rcv_switch_relay_errors",
    "port_xmit_discards",
    "port_xmit_constraint_errors",
    "port_rcv_constraint_errors",
    "local_link_integrity_errors",
    "excessive_buffer_overrun_errors",
    "VL15_dropped",
    "port_xmit_data",
    "port_rcv_data",
    "port_xmit_packets",
    "port_rcv_packets",
    "port_xmit_wait",
)
_PQ_ORDER = (
    ("PortXmitData", "port_xmit_data"),
    ("PortRcvData", "port_rcv_data"),
    ("PortXmitPkts", "port_xmit_packets"),
    ("PortRcvPkts", "port_rcv_packets"),
    ("SymbolErrorCounter", "symbol_error"),
    ("LinkErrorRecoveryCounter", "link_error_recovery"),
    ("LinkDownedCounter", "link_downed"),
    ("PortRcvErrors", "port_rcv_errors"),
    ("PortRcvRemotePhysicalErrors", "port_rcv_remote_physical_errors"),
    ("PortXmitDiscards", "port_xmit_discards"),
    ("LocalLinkIntegrityErrors", "local_link_integrity_errors"),
    ("ExcessiveBufferOverrunErrors", "excessive_buffer_overrun_errors"),
    ("PortXmitWait", "port_xmit_wait"),
)


def perfquery_text(p: PortSim) -> str:
    """``perfquery -x`` for one port, in the tool's dotted format."""
    lines = [
        f"# Port extended counters: Lid {p.lid} port 1 (CapMask: 0x5A00 CapMask2: 0x0000000)",
        "PortSelect:......................1",
        "CounterSelect:...................0x0000",
    ]
    for name, c in _PQ_ORDER:
        lines.append(f"{name}:".ljust(33, ".") + str(int(p.counters.get(c, 0.0))))
    return "\n".join(lines) + "\n"


def _guid(n: int) -> str:
    return f"0x{n:016x}"
