"""The one-round-trip scripts the collectors run, and the parser of what they print.

The node script prints sections headed ``@@ NAME``: the sysfs files (through
``head -v -n 1``: under umad2sim, the simulator's preload, ``head`` and
``cat`` can read the faked sysfs where ``grep`` cannot), then ``ibstat`` and
``perfquery -x``/``perfquery`` per InfiniBand port where installed, each
followed by ``@@ rc N``. Pure apart from building strings.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace

from console.plugin import ParseError
from plugins.infiniband.parse import (
    Ibstat,
    Port,
    Rate,
    merge_perf,
    parse_head_dump,
    parse_ibstat,
    parse_perfquery,
    parse_sysfs,
)
from plugins.infiniband.parse_fabric import FabricPort, parse_iblinkinfo, parse_ibnetdiscover_ports

NODE_MARK = ": dcc-infiniband-node"
FABRIC_MARK = ": dcc-infiniband-fabric"
TOOL_TIMEOUT_S = 5


def node_script(root: str = "/sys/class/infiniband", tools: bool = True) -> str:
    """The node collector's command. Directories under ``ports/N`` all end in
    ``s`` (counters, gids, pkeys, gid_attrs, hw_counters) and no attribute does,
    so ``*[!s]`` picks exactly the attributes."""
    r = shlex.quote(root.rstrip("/"))
    lines = [
        f"{NODE_MARK}; R={r}",
        "echo '@@ sysfs'",
        'head -v -n 1 "$R"/*/[bfhn]* "$R"/*/ports/*/*[!s] "$R"/*/ports/*/counters/* '
        '"$R"/*/ports/*/hw_counters/* 2>/dev/null',
    ]
    if tools:
        t = TOOL_TIMEOUT_S
        lines += [
            "echo; echo '@@ ibstat'",
            f"if command -v ibstat >/dev/null 2>&1; then timeout {t} ibstat 2>&1; "
            "echo \"@@ rc $?\"; else echo '@@ rc 127'; fi",
            "if command -v perfquery >/dev/null 2>&1; then",
            ' for p in "$R"/*/ports/*; do case "$p" in *"*"*) continue;; esac',
            '  case "$(cat "$p/link_layer" 2>/dev/null)" in Ethernet) continue;; esac',
            "  d=${p%/ports/*}; d=${d##*/}; n=${p##*/}",
            '  echo "@@ perfquery $d $n"',
            f'  timeout {t} perfquery -x -C "$d" -P "$n" 2>&1; '
            f'timeout {t} perfquery -C "$d" -P "$n" 2>&1; echo "@@ rc $?"',
            " done",
            "fi",
        ]
    return "\n".join(lines) + "\n"


def fabric_script() -> str:
    """The fabric collector's command: iblinkinfo, else ibnetdiscover -p."""
    t = TOOL_TIMEOUT_S * 6
    return (
        f"{FABRIC_MARK}\n"
        "echo '@@ iblinkinfo'\n"
        f'timeout {t} iblinkinfo 2>&1; rc=$?; echo "@@ rc $rc"\n'
        f"if [ $rc -ne 0 ]; then echo '@@ ibnetdiscover'; timeout {t} ibnetdiscover -p 2>&1; "
        'echo "@@ rc $?"; fi\n'
    )


def split_sections(text: str) -> list[tuple[str, str, int | None]]:
    """``@@ NAME`` sections -> [(header, body, rc)] (rc from a trailing ``@@ rc N``)."""
    out: list[tuple[str, str, int | None]] = []
    head: str | None = None
    body: list[str] = []
    rc: int | None = None
    for line in text.splitlines():
        if line.startswith("@@ rc "):
            try:
                rc = int(line[6:].strip())
            except ValueError as exc:
                raise ParseError(f"bad exit status line {line!r}") from exc
            continue
        if line.startswith("@@ "):
            if head is not None:
                out.append((head, "\n".join(body), rc))
            head, body, rc = line[3:].strip(), [], None
            continue
        if head is None:
            if line.strip():
                raise ParseError(f"output before any '@@' section: {line[:60]!r}")
            continue
        body.append(line)
    if head is not None:
        out.append((head, "\n".join(body), rc))
    return out


@dataclass(frozen=True, slots=True)
class NodeDump:
    ports: tuple[Port, ...]
    ibstat: Ibstat | None = None
    ibstat_rc: int | None = None
    tool_errors: tuple[str, ...] = field(default=())


def _fill(port: Port, other: Port | None, perf: dict[str, int | None] | None) -> Port:
    """sysfs first; what it lacks (umad2sim has no link_layer nor counters) from the tools."""
    changes: dict[str, object] = {}
    if other is not None:
        if port.link_layer is None:
            changes["link_layer"] = other.link_layer
        if port.rate.gbps is None and other.rate.gbps is not None:
            changes["rate"] = Rate(other.rate.gbps, None, None)
        if port.port_guid is None:
            changes["port_guid"] = other.port_guid
    if perf:
        merged = dict(port.counters)
        for name, value in perf.items():
            if merged.get(name) is None:
                merged[name] = value
        changes["counters"] = merged
    return replace(port, **changes) if changes else port  # type: ignore[arg-type]


def parse_node_dump(text: str, root: str = "/sys/class/infiniband") -> NodeDump:
    """What the node script printed -> ports (sysfs merged with ibstat/perfquery)."""
    files: dict[str, str] = {}
    ibstat: Ibstat | None = None
    ibstat_rc: int | None = None
    perf: dict[str, dict[str, int | None]] = {}
    errors: list[str] = []
    for head, body, rc in split_sections(text):
        if head == "sysfs":
            files = parse_head_dump(body)
        elif head == "ibstat":
            ibstat_rc = rc
            if rc != 127:
                ibstat = parse_ibstat(body)
                if ibstat.error:
                    errors.append(ibstat.error)
                elif rc not in (0, None) and not ibstat.cas:
                    errors.append(f"ibstat exited {rc}: {body.strip()[:120]}")
        elif head.startswith("perfquery "):
            parts = head.split()
            if len(parts) != 3:
                raise ParseError(f"bad perfquery section header {head!r}")
            blocks = parse_perfquery(body)
            if blocks:
                perf[f"{parts[1]}/{parts[2]}"] = merge_perf(blocks)
            elif rc not in (0, None):
                errors.append(f"perfquery {parts[1]} {parts[2]} exited {rc}")
        else:
            raise ParseError(f"unknown section {head!r}")
    ports = parse_sysfs(files, root)
    by_key = {p.key: p for ca in (ibstat.cas if ibstat else ()) for p in ca.ports}
    if not ports:
        ports = list(by_key.values())
    filled = tuple(_fill(p, by_key.get(p.key), perf.get(p.key)) for p in ports)
    return NodeDump(filled, ibstat, ibstat_rc, tuple(errors))


def parse_fabric_dump(text: str) -> list[FabricPort]:
    """What the fabric script printed -> every port of the fabric."""
    sections = split_sections(text)
    errors = []
    for head, body, rc in sections:
        if head == "iblinkinfo" and rc == 0:
            return parse_iblinkinfo(body)
        if head == "ibnetdiscover" and rc == 0:
            return parse_ibnetdiscover_ports(body)
        last = body.strip().splitlines()
        errors.append(f"{head} exited {rc}: {last[-1] if last else 'no output'}")
    raise ParseError("; ".join(errors) or "no fabric tool output")
