"""Pure parsers for the switch side: ``ibnetdiscover -p`` and ``iblinkinfo``.

Both name each node by its node description: an HCA's is ``<host> <device>``
(``gpu001 mlx5_0``) on Linux, which is how a switch port is matched to the
node and HCA that plugs into it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from console.plugin import ParseError
from plugins.infiniband.parse import speed_of


@dataclass(frozen=True, slots=True)
class FabricPort:
    """One port of the fabric and what its cable reaches (when it is up)."""

    kind: str
    """``CA`` or ``SW``."""
    name: str
    """Node description (``leaf01``, ``gpu001 mlx5_0``)."""
    guid: str | None
    lid: int | None
    port: int
    width: int | None = None
    speed: str | None = None
    state: str | None = None
    """``Active``, ``Down``, ``Init`` ... (iblinkinfo only)."""
    phys_state: str | None = None
    peer_kind: str | None = None
    peer_name: str | None = None
    peer_guid: str | None = None
    peer_lid: int | None = None
    peer_port: int | None = None

    @property
    def host(self) -> str | None:
        """For an HCA named ``gpu001 mlx5_0``: ``gpu001``."""
        return self.name.split()[0] if self.kind == "CA" and self.name.split() else None

    @property
    def device(self) -> str | None:
        parts = self.name.split()
        return parts[1] if self.kind == "CA" and len(parts) > 1 else None


_NETDISC = re.compile(
    r"^(?P<kind>CA|SW)\s+(?P<lid>\d+)\s+(?P<port>\d+)\s+(?P<guid>0x[0-9a-fA-F]+)\s+"
    r"(?P<width>\d+)x\s+(?P<speed>\S+)"
    r"(?:\s+-\s+(?P<pkind>CA|SW)\s+(?P<plid>\d+)\s+(?P<pport>\d+)\s+(?P<pguid>0x[0-9a-fA-F]+)"
    r"\s+\(\s*'(?P<name>[^']*)'\s+-\s+'(?P<pname>[^']*)'\s*\)"
    r"|\s+'(?P<lone>[^']*)')\s*$"
)


def parse_ibnetdiscover_ports(text: str) -> list[FabricPort]:
    """``ibnetdiscover -p``: one line per port; unconnected ports have no peer."""
    out: list[FabricPort] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _NETDISC.match(stripped)
        if m is None:
            raise ParseError(f"line {number}: not an ibnetdiscover -p port line: {stripped[:60]!r}")
        connected = m.group("pkind") is not None
        speed = m.group("speed")
        out.append(
            FabricPort(
                kind=m.group("kind"),
                name=m.group("name") if connected else m.group("lone"),
                guid=m.group("guid"),
                lid=int(m.group("lid")),
                port=int(m.group("port")),
                width=int(m.group("width")) if connected else None,
                speed=speed if connected and speed != "???" else None,
                state="Active" if connected else None,
                peer_kind=m.group("pkind"),
                peer_name=m.group("pname"),
                peer_guid=m.group("pguid"),
                peer_lid=int(m.group("plid")) if connected else None,
                peer_port=int(m.group("pport")) if connected else None,
            )
        )
    return out


_LI_HEAD = re.compile(r"^(?P<kind>CA|Switch):\s+(?:(?P<guid>0x[0-9a-fA-F]+)\s+)?(?P<name>.*?):\s*$")
_LI_PORT = re.compile(
    r"^(?:(?P<guid>0x[0-9a-fA-F]+)\s+)?(?P<lid>\d+)\s+(?P<port>\d+)\[\s*\]\s+==\(\s*"
    r"(?:(?P<width>\d+)X\s+(?P<gbps>[\d.]+)\s+Gbps\s+)?(?P<state>\w+)/\s*(?P<phys>\w+)\s*\)==>\s*"
    r"(?:(?P<plid>\d+)\s+(?P<pport>\d+)\[\s*\]\s+\"(?P<pname>[^\"]*)\".*"
    r"|\[\s*\]\s+\"\".*|\"(?P<na>[^\"]*)\".*)$"
)


def parse_iblinkinfo(text: str) -> list[FabricPort]:
    """``iblinkinfo``: every port of every node, with its state and peer."""
    out: list[FabricPort] = []
    kind, name, guid = "", "", None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        m = _LI_HEAD.match(stripped)
        if m:
            kind = "SW" if m.group("kind") == "Switch" else "CA"
            name, guid = m.group("name"), m.group("guid")
            continue
        if stripped.startswith(("ibwarn:", "iblinkinfo:", "ibpanic:")):
            continue
        m = _LI_PORT.match(stripped)
        if m is None:
            raise ParseError(f"line {number}: not an iblinkinfo port line: {stripped[:60]!r}")
        if not kind:
            raise ParseError(f"line {number}: a port line before any CA:/Switch: header")
        width = int(m.group("width")) if m.group("width") else None
        gbps = float(m.group("gbps")) if m.group("gbps") else None
        peer = m.group("plid") is not None
        out.append(
            FabricPort(
                kind=kind,
                name=name,
                guid=m.group("guid") or guid,
                lid=int(m.group("lid")),
                port=int(m.group("port")),
                width=width,
                speed=speed_of(gbps, None),
                state=m.group("state"),
                phys_state=m.group("phys"),
                peer_kind=None,
                peer_name=m.group("pname") if peer else None,
                peer_lid=int(m.group("plid")) if peer else None,
                peer_port=int(m.group("pport")) if peer else None,
            )
        )
    return out
