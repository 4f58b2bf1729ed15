"""Pure parsers for InfiniBand/RoCE tool output and sysfs dumps.

Every function here takes text and returns typed values; each raises only
``console.plugin.ParseError``. A value the tool did not give (``N/A (no PMA)``,
a missing file, an unknown speed) is ``None``, never 0.

Formats (see ../shared/peers/RECIPES.md section 7 and the kernel's
drivers/infiniband/core/sysfs.c): state ``4: ACTIVE``, phys_state ``5: LinkUp``,
rate ``200 Gb/sec (4X HDR)`` (umad2sim writes ``10 Gb/sec (4X)``), link_layer
``InfiniBand``/``Ethernet``; ``ibstat`` blocks; ``perfquery`` ``Name:....value``
blocks; ``ibnetdiscover -p`` one line per port; ``iblinkinfo`` per switch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from console.plugin import ParseError

# --------------------------------------------------------------------------- counters

#: perfquery field name -> the sysfs counter file name (the names the plugin uses).
PERFQUERY_NAMES: dict[str, str] = {
    "SymbolErrorCounter": "symbol_error",
    "LinkErrorRecoveryCounter": "link_error_recovery",
    "LinkDownedCounter": "link_downed",
    "PortRcvErrors": "port_rcv_errors",
    "PortRcvRemotePhysicalErrors": "port_rcv_remote_physical_errors",
    "PortRcvSwitchRelayErrors": "port_rcv_switch_relay_errors",
    "PortXmitDiscards": "port_xmit_discards",
    "PortXmitConstraintErrors": "port_xmit_constraint_errors",
    "PortRcvConstraintErrors": "port_rcv_constraint_errors",
    "LocalLinkIntegrityErrors": "local_link_integrity_errors",
    "ExcessiveBufferOverrunErrors": "excessive_buffer_overrun_errors",
    "VL15Dropped": "VL15_dropped",
    "PortXmitData": "port_xmit_data",
    "PortRcvData": "port_rcv_data",
    "PortXmitPkts": "port_xmit_packets",
    "PortRcvPkts": "port_rcv_packets",
    "PortUnicastXmitPkts": "unicast_xmit_packets",
    "PortUnicastRcvPkts": "unicast_rcv_packets",
    "PortMulticastXmitPkts": "multicast_xmit_packets",
    "PortMulticastRcvPkts": "multicast_rcv_packets",
    "PortXmitWait": "port_xmit_wait",
}

#: The error counters judged as rates (issue 5), in the order panes show them.
ERROR_COUNTERS: tuple[str, ...] = (
    "symbol_error",
    "link_error_recovery",
    "link_downed",
    "port_rcv_errors",
    "port_rcv_remote_physical_errors",
    "port_xmit_discards",
    "excessive_buffer_overrun_errors",
    "local_link_integrity_errors",
)

SHORT_NAMES: dict[str, str] = {
    "symbol_error": "symbol",
    "link_error_recovery": "link-recovery",
    "link_downed": "link-downed",
    "port_rcv_errors": "rcv-err",
    "port_rcv_remote_physical_errors": "remote-phys",
    "port_xmit_discards": "xmit-discard",
    "excessive_buffer_overrun_errors": "buf-overrun",
    "local_link_integrity_errors": "link-integrity",
}

#: Bits of each PortCounters field (IBA 16.1.3.5). Error counters *saturate* at
#: all ones; the 32-bit data counters wrap. sysfs data counters are 64-bit.
COUNTER_BITS: dict[str, int] = {
    "symbol_error": 16,
    "link_error_recovery": 8,
    "link_downed": 8,
    "port_rcv_errors": 16,
    "port_rcv_remote_physical_errors": 16,
    "port_rcv_switch_relay_errors": 16,
    "port_xmit_discards": 16,
    "port_xmit_constraint_errors": 8,
    "port_rcv_constraint_errors": 8,
    "local_link_integrity_errors": 4,
    "excessive_buffer_overrun_errors": 4,
    "VL15_dropped": 16,
    "port_xmit_wait": 32,
}

# --------------------------------------------------------------------------- ports


@dataclass(frozen=True, slots=True)
class Rate:
    """A port's rate: ``200 Gb/sec (4X HDR)`` -> 200.0, 4, ``HDR``."""

    gbps: float | None
    width: int | None
    speed: str | None


@dataclass(frozen=True, slots=True)
class Port:
    """One HCA port as the node reports it (sysfs, ibstat or both)."""

    device: str
    port: int
    state: str | None = None
    """``ACTIVE``, ``DOWN``, ``INIT``, ``ARMED``, ``POLLING`` ... upper case."""
    phys_state: str | None = None
    """``LinkUp``, ``Polling``, ``Disabled``, ``LinkErrorRecovery`` ..."""
    rate: Rate = field(default_factory=lambda: Rate(None, None, None))
    link_layer: str | None = None
    """``InfiniBand`` or ``Ethernet`` (RoCE)."""
    lid: int | None = None
    sm_lid: int | None = None
    port_guid: str | None = None
    counters: Mapping[str, int | None] = field(default_factory=dict)
    hw_counters: Mapping[str, int | None] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.device}/{self.port}"


_STATE_RE = re.compile(r"^\s*(\d+)\s*:\s*(\S.*?)\s*$")
_RATE_RE = re.compile(
    r"^\s*(?P<gbps>\d+(?:\.\d+)?)\s*Gb/sec\s*(?:\((?P<width>\d+)X\s*(?P<speed>[A-Z0-9]+)?\))?\s*$"
)
_SPEED_LANE_GBPS = {
    "SDR": 2.5,
    "DDR": 5.0,
    "QDR": 10.0,
    "FDR10": 10.0,
    "FDR": 14.0625,
    "EDR": 25.0,
    "HDR": 50.0,
    "NDR": 100.0,
    "XDR": 200.0,
}


def parse_state(text: str) -> str | None:
    """``4: ACTIVE`` -> ``ACTIVE``; ``5: LinkUp`` -> ``LinkUp``; empty -> None."""
    text = text.strip()
    if not text:
        return None
    m = _STATE_RE.match(text)
    return m.group(2) if m else text


def parse_rate(text: str) -> Rate:
    """``200 Gb/sec (4X HDR)`` -> Rate(200.0, 4, 'HDR'); unreadable -> all None."""
    m = _RATE_RE.match(text)
    if not m:
        return Rate(None, None, None)
    width = int(m.group("width")) if m.group("width") else None
    gbps = float(m.group("gbps"))
    speed = m.group("speed") or (speed_of(gbps / width, None) if width else None)
    return Rate(gbps, width, speed)


def speed_of(gbps: float | None, width: int | None) -> str | None:
    """The IB speed name a per-lane rate implies (iblinkinfo prints Gbps per lane)."""
    if gbps is None:
        return None
    for name, lane in _SPEED_LANE_GBPS.items():
        if abs(lane - gbps) < 0.01 or (width and abs(lane * width - gbps) < 0.01):
            return name
    return {53.125: "HDR", 106.25: "NDR", 25.78125: "EDR"}.get(gbps)


def parse_counter(text: str) -> int | None:
    """A counter file's value; ``N/A (no PMA)`` and garbage -> None."""
    text = text.strip()
    try:
        value = int(text, 0) if text.startswith("0x") else int(text)
    except ValueError:
        return None
    return value if value >= 0 else None


def _int_or_none(text: str) -> int | None:
    text = text.strip()
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


# --------------------------------------------------------------------------- sysfs


def parse_head_dump(text: str) -> dict[str, str]:
    """``head -v -n 1 FILE...`` output -> {path: first line}.

    head prints ``==> PATH <==`` then the file's first line; an empty file
    gives an empty value. Lines outside a header are refused.
    """
    files: dict[str, str] = {}
    path: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("==> ") and line.endswith(" <=="):
            path = line[4:-4]
            files[path] = ""
        elif not line.strip():
            path = None
        elif path is None:
            raise ParseError(f"line {number}: a value outside a '==> FILE <==' header")
        elif not files[path]:
            files[path] = line.strip()
    return files


def parse_sysfs(files: Mapping[str, str], root: str = "/sys/class/infiniband") -> list[Port]:
    """Ports from sysfs files under ``root`` (``<dev>/ports/<n>/...``), sorted.

    Files not under ``root`` are ignored; a port appears when any of its files does.
    """
    prefix = root.rstrip("/") + "/"
    raw: dict[tuple[str, int], dict[str, str]] = {}
    counters: dict[tuple[str, int], dict[str, int | None]] = {}
    hw: dict[tuple[str, int], dict[str, int | None]] = {}
    for path, value in files.items():
        if not path.startswith(prefix):
            continue
        parts = path[len(prefix) :].split("/")
        if len(parts) < 4 or parts[1] != "ports":
            continue
        try:
            key = (parts[0], int(parts[2]))
        except ValueError:
            continue
        raw.setdefault(key, {})
        if len(parts) == 4:
            raw[key][parts[3]] = value
        elif len(parts) == 5 and parts[3] == "counters":
            counters.setdefault(key, {})[parts[4]] = parse_counter(value)
        elif len(parts) == 5 and parts[3] == "hw_counters":
            hw.setdefault(key, {})[parts[4]] = parse_counter(value)
    ports = []
    for key in sorted(raw, key=lambda k: (_dev_sort(k[0]), k[1])):
        attrs = raw[key]
        ports.append(
            Port(
                device=key[0],
                port=key[1],
                state=_upper(parse_state(attrs.get("state", ""))),
                phys_state=parse_state(attrs.get("phys_state", "")),
                rate=parse_rate(attrs.get("rate", "")),
                link_layer=attrs.get("link_layer") or None,
                lid=_int_or_none(attrs.get("lid", "")),
                sm_lid=_int_or_none(attrs.get("sm_lid", "")),
                counters=counters.get(key, {}),
                hw_counters=hw.get(key, {}),
            )
        )
    return ports


def _upper(text: str | None) -> str | None:
    return text.upper() if text else None


def _dev_sort(name: str) -> tuple[str, int]:
    """``mlx5_10`` after ``mlx5_9``."""
    m = re.match(r"^(.*?)(\d+)$", name)
    return (m.group(1), int(m.group(2))) if m else (name, -1)


# --------------------------------------------------------------------------- ibstat


@dataclass(frozen=True, slots=True)
class IbstatCa:
    name: str
    ca_type: str | None
    firmware: str | None
    node_guid: str | None
    ports: tuple[Port, ...]


@dataclass(frozen=True, slots=True)
class Ibstat:
    cas: tuple[IbstatCa, ...]
    error: str | None = None
    """An ``ibpanic``/``ibwarn`` line: ibstat stopped half-way (what it printed stays)."""


_LAYER = {"IB": "InfiniBand", "InfiniBand": "InfiniBand", "Ethernet": "Ethernet"}


def parse_ibstat(text: str) -> Ibstat:
    """``ibstat`` output: CAs with their ports; an ``ibpanic`` line kept as the error."""
    cas: list[IbstatCa] = []
    error: str | None = None
    ca: dict[str, str] | None = None
    ca_name = ""
    ports: list[dict[str, str]] = []
    port_no: list[int] = []

    def flush() -> None:
        if ca is None:
            return
        built = []
        for n, attrs in zip(port_no, ports, strict=True):
            rate = _int_or_none(attrs.get("Rate", ""))
            built.append(
                Port(
                    device=ca_name,
                    port=n,
                    state=_upper(attrs.get("State")),
                    phys_state=attrs.get("Physical state"),
                    rate=Rate(float(rate) if rate is not None else None, None, None),
                    link_layer=_LAYER.get(attrs.get("Link layer", ""), attrs.get("Link layer")),
                    lid=_int_or_none(attrs.get("Base lid", "")),
                    sm_lid=_int_or_none(attrs.get("SM lid", "")),
                    port_guid=attrs.get("Port GUID"),
                )
            )
        cas.append(
            IbstatCa(
                ca_name,
                ca.get("CA type"),
                ca.get("Firmware version"),
                ca.get("Node GUID"),
                tuple(built),
            )
        )

    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        m = re.match(r"^CA '([^']*)'$", stripped)
        if m:
            flush()
            ca, ca_name, ports, port_no = {}, m.group(1), [], []
            continue
        if stripped.startswith(("ibpanic:", "ibwarn:", "ibstat: iberror")):
            error = stripped
            continue
        if ca is None:
            raise ParseError(f"line {number}: {stripped[:60]!r} before any CA '...' header")
        m = re.match(r"^Port (\d+):$", stripped)
        if m:
            port_no.append(int(m.group(1)))
            ports.append({})
            continue
        name, sep, value = stripped.partition(":")
        if not sep:
            raise ParseError(f"line {number}: expected 'Name: value', got {stripped[:60]!r}")
        (ports[-1] if ports else ca)[name.strip()] = value.strip()
    flush()
    if not cas and error is None and text.strip():
        raise ParseError("no CA in ibstat output")
    return Ibstat(tuple(cas), error)


def parse_ibstatus(text: str) -> list[Port]:
    """``ibstatus`` blocks (``Infiniband device 'mlx5_0' port 1 status:``)."""
    out: list[Port] = []
    cur: dict[str, str] | None = None
    head: tuple[str, int] = ("", 0)

    def flush() -> None:
        if cur is not None:
            out.append(
                Port(
                    head[0],
                    head[1],
                    state=_upper(parse_state(cur.get("state", ""))),
                    phys_state=parse_state(cur.get("phys state", "")),
                    rate=parse_rate(cur.get("rate", "")),
                    link_layer=cur.get("link_layer"),
                    lid=_int_or_none(cur.get("base lid", "")),
                    sm_lid=_int_or_none(cur.get("sm lid", "")),
                )
            )

    for number, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^Infiniband device '([^']+)' port (\d+) status:\s*$", line.strip())
        if m:
            flush()
            cur, head = {}, (m.group(1), int(m.group(2)))
            continue
        if not line.strip():
            continue
        if cur is None:
            raise ParseError(f"line {number}: a field before any device header")
        name, sep, value = line.strip().partition(":")
        if not sep:
            raise ParseError(f"line {number}: expected 'name: value'")
        cur[name.strip()] = value.strip()
    flush()
    return out


# --------------------------------------------------------------------------- perfquery


@dataclass(frozen=True, slots=True)
class PerfBlock:
    """One ``# Port ... counters: Lid L port P`` block of perfquery."""

    kind: str
    """``counters``, ``extended counters``, ``PortRcvErrorDetails counters`` ..."""
    lid: int | None
    port: int | None
    counters: Mapping[str, int | None]
    """Keyed by the sysfs name where one exists (``symbol_error``), else perfquery's."""


_PQ_HEAD = re.compile(
    r"^#\s*(?:Port\s+)?(?P<kind>.*?):\s*Lid\s+(?P<lid>\d+)\s+port\s+(?P<port>\d+)"
)
_PQ_LINE = re.compile(r"^(?P<name>[A-Za-z0-9_]+):\.*(?P<value>\S*)\s*$")


def parse_perfquery(text: str) -> list[PerfBlock]:
    """Every block of ``perfquery`` / ``perfquery -x`` / ``-E`` output, in order."""
    blocks: list[PerfBlock] = []
    kind, lid, port = "", None, None
    values: dict[str, int | None] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        m = _PQ_HEAD.match(stripped)
        if m:
            if values is not None:
                blocks.append(PerfBlock(kind, lid, port, values))
            kind, lid, port = m.group("kind"), int(m.group("lid")), int(m.group("port"))
            values = {}
            continue
        if stripped.startswith(("ibwarn:", "perfquery: iberror", "ibpanic:")):
            continue  # the error is judged from the exit status and stderr
        m = _PQ_LINE.match(stripped)
        if m is None:
            raise ParseError(f"line {number}: expected 'Name:....value', got {stripped[:60]!r}")
        if values is None:
            raise ParseError(f"line {number}: a counter before any '# Port ...' header")
        name = m.group("name")
        if name in ("PortSelect", "CounterSelect", "CounterSelect2"):
            continue
        values[PERFQUERY_NAMES.get(name, name)] = parse_counter(m.group("value"))
    if values is not None:
        blocks.append(PerfBlock(kind, lid, port, values))
    return blocks


def merge_perf(blocks: list[PerfBlock]) -> dict[str, int | None]:
    """The counters of several blocks about one port (``-x`` then plain), first wins."""
    out: dict[str, int | None] = {}
    for block in blocks:
        for name, value in block.counters.items():
            if out.get(name) is None:
                out[name] = value
    return out
