"""Pure parsers: nvidia-smi CSV, the kernel log's XIDs, MIG tables, NVLink, DCGM diag.

Each raises only ``console.plugin.ParseError``. Unknown stays ``None``:
``[N/A]``, ``N/A``, ``[Not Supported]``, ``ERR!``, ``[Unknown Error]`` and the
like are never read as 0. The XML of ``nvidia-smi -q -x`` is in ``parse_xml``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from console.plugin import ParseError
from plugins.gpu.model import DiagResult, GpuFast, GpuInstance, NvlinkState, XidEvent

QUERY_FIELDS: tuple[str, ...] = (
    "index",
    "uuid",
    "name",
    "pci.bus_id",
    "driver_version",
    "utilization.gpu",
    "utilization.memory",
    "memory.used",
    "memory.total",
    "temperature.gpu",
    "temperature.memory",
    "power.draw",
    "power.limit",
    "clocks.sm",
    "pstate",
    "mig.mode.current",
    "mig.mode.pending",
    "ecc.errors.uncorrected.volatile.total",
    "clocks_event_reasons.active",
    "fan.speed",
)
"""What the fast collector asks for, in this order (``--format=csv,noheader,nounits``)."""

LEGACY_NAMES = {"clocks_event_reasons.active": "clocks_throttle_reasons.active"}
"""Drivers before 535 know only the old names; the collector retries with these."""

_ALIASES = {
    "clocks_throttle_reasons.active": "clocks_event_reasons.active",
    "clocks.current.sm": "clocks.sm",
    "gpu_uuid": "uuid",
    "gpu_name": "name",
    "gpu_bus_id": "pci.bus_id",
}

_UNKNOWN = re.compile(
    r"^\[?(n/?a|not supported|unknown|unknown error|insufficient permissions)\]?$", re.I
)
_ERRORISH = re.compile(r"^(err!|\[.*(error|lost|reset|fail).*\])$", re.I)
_LOST = re.compile(
    r"unable to determine the device handle for (?:gpu)?\s*([0-9a-fA-F:.]+)\s*:\s*(.*)", re.I
)


def token(raw: str) -> str | None:
    """A cell as text, or None when it says "unknown" in any of nvidia-smi's ways."""
    value = raw.strip()
    if value[:1].isdigit():  # the common case, and neither pattern starts with a digit
        return value
    if not value or _UNKNOWN.match(value) or _ERRORISH.match(value) or value == "-":
        return None
    return value


def is_error(raw: str) -> bool:
    value = raw.strip()
    # Both error forms start with "[" or "ERR!": most cells are numbers (fleet-size polls).
    if value[:1] not in ("[", "e", "E"):
        return False
    return bool(_ERRORISH.match(value))


def number(raw: str | None) -> float | None:
    """``433.78 W`` / ``11125 MiB`` / ``100 %`` / ``81559`` -> float; unknowns -> None."""
    if raw is None:
        return None
    try:
        out = float(raw)  # a plain number, as --format=csv,nounits prints: no parsing
    except ValueError:
        pass
    else:
        return out if out == out and abs(out) != float("inf") else None
    value = token(raw)
    if value is None:
        return None
    head = value.split()[0].rstrip("%")
    try:
        out = float(head)
    except ValueError:
        return None
    return out if out == out and abs(out) != float("inf") else None


def integer(raw: str | None) -> int | None:
    value = number(raw)
    return None if value is None else int(value)


def enabled(raw: str | None) -> bool | None:
    value = token(raw or "")
    if value is None:
        return None
    low = value.lower()
    if low in ("enabled", "on", "yes", "active", "1"):
        return True
    if low in ("disabled", "off", "no", "not active", "0"):
        return False
    return None


def hexmask(raw: str | None) -> int | None:
    value = token(raw or "")
    if value is None:
        return None
    try:
        return int(value, 16) if value.lower().startswith("0x") else int(value)
    except ValueError:
        return None


def _field_name(header: str) -> str:
    name = header.strip().split(" [", 1)[0].strip()
    return _ALIASES.get(name, name)


def _split(line: str) -> list[str]:
    # nvidia-smi separates with ", " and does not quote; names do not contain ", ".
    return [c.strip() for c in line.split(", ")]


def parse_query_csv(text: str, fields: Sequence[str] = QUERY_FIELDS) -> list[GpuFast]:
    """``nvidia-smi --query-gpu=... --format=csv[,noheader][,nounits]`` -> one GpuFast per GPU.

    With a header line (``--format=csv``) the columns are taken from it, so any
    field order works; without one, ``fields`` gives the order. Lines saying a
    GPU's handle could not be read become ``GpuFast(lost=True)`` with the bus id
    (its index is found by the caller, see ``assign_lost_indexes``).
    """
    names = [_ALIASES.get(f, f) for f in fields]
    out: list[GpuFast] = []
    lost: list[GpuFast] = []
    seen_header = False
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _LOST.search(line)
        if m:
            lost.append(
                GpuFast(
                    index=-1,
                    pci_bus_id=m.group(1).rstrip("."),
                    lost=True,
                    lost_reason=m.group(2).strip()[:200],
                )
            )
            continue
        cells = _split(line)
        if (
            not seen_header
            and not out
            and cells
            and cells[0].split(" [", 1)[0]
            in ("index", "timestamp", "name", "uuid", "pci.bus_id", "driver_version")
        ):
            names = [_field_name(c) for c in cells]
            seen_header = True
            continue
        if len(cells) != len(names):
            raise ParseError(f"line {n}: {len(cells)} fields, expected {len(names)}")
        row = dict(zip(names, cells, strict=True))
        index = integer(row.get("index"))
        if index is None:
            raise ParseError(f"line {n}: no GPU index in {line[:60]!r}")
        errors = tuple(k for k, v in row.items() if is_error(v))
        out.append(
            GpuFast(
                index=index,
                uuid=token(row.get("uuid", "")),
                name=token(row.get("name", "")),
                pci_bus_id=token(row.get("pci.bus_id", "")),
                driver=token(row.get("driver_version", "")),
                util_pct=number(row.get("utilization.gpu")),
                mem_util_pct=number(row.get("utilization.memory")),
                mem_used_mib=number(row.get("memory.used")),
                mem_total_mib=number(row.get("memory.total")),
                temp_c=number(row.get("temperature.gpu")),
                mem_temp_c=number(row.get("temperature.memory")),
                power_w=number(row.get("power.draw")),
                power_limit_w=number(row.get("power.limit")),
                sm_clock_mhz=number(row.get("clocks.sm")),
                pstate=token(row.get("pstate", "")),
                mig_current=enabled(row.get("mig.mode.current")),
                mig_pending=enabled(row.get("mig.mode.pending")),
                ecc_unc_volatile=integer(row.get("ecc.errors.uncorrected.volatile.total")),
                throttle_mask=hexmask(row.get("clocks_event_reasons.active")),
                fan_pct=number(row.get("fan.speed")),
                errors=errors,
            )
        )
    return out + assign_lost_indexes(out, lost)


def _bus_key(bus: str | None) -> str:
    """``00000000:3B:00.0`` and ``0000:3b:00`` -> ``3b:00`` (domain and function dropped)."""
    if not bus:
        return ""
    parts = bus.lower().split(":")
    if len(parts) >= 3:
        return f"{parts[-2]}:{parts[-1].split('.')[0]}"
    return bus.lower()


def same_bus(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and _bus_key(a) == _bus_key(b)


def assign_lost_indexes(present: Sequence[GpuFast], lost: Sequence[GpuFast]) -> list[GpuFast]:
    """Give lost GPUs the indexes missing among the present ones, in bus order.

    NVML keeps enumerating a lost device (only its handle fails), so the
    present GPUs keep their indexes and the lost ones fill the gaps.
    """
    if not lost:
        return []
    used = {g.index for g in present}
    total = len(present) + len(lost)
    free = [i for i in range(total) if i not in used]
    ordered = sorted(lost, key=lambda g: _bus_key(g.pci_bus_id))
    out = []
    for i, g in enumerate(ordered):
        index = free[i] if i < len(free) else total + i
        out.append(
            GpuFast(index=index, pci_bus_id=g.pci_bus_id, lost=True, lost_reason=g.lost_reason)
        )
    return out


def lost_bus_ids(text: str) -> list[str]:
    """Bus ids of the GPUs whose handle nvidia-smi could not read (fallen off the bus)."""
    return [m.group(1).rstrip(".") for m in map(_LOST.search, text.splitlines()) if m]


def bus_order_indexes(present: Sequence[str | None], lost: Sequence[str]) -> list[int] | None:
    """nvidia-smi's index of each present GPU, given the lost ones.

    nvidia-smi numbers GPUs in PCI bus order and a report simply leaves a lost
    GPU out, so with GPU 2 lost the third GPU in the report is GPU 3, not 2.
    Returns None (keep the report's positions) when nothing is lost or a bus id
    is missing: positions are then right.
    """
    if not lost or any(not bus for bus in present):
        return None
    keys = sorted({_bus_key(b) for b in present if b} | {_bus_key(b) for b in lost})
    rank = {key: i for i, key in enumerate(keys)}
    return [rank[_bus_key(bus)] for bus in present]


# --------------------------------------------------------------------------- kernel log

_XID = re.compile(r"NVRM: Xid \(PCI:([0-9A-Fa-f:.]+)\): (\d+),?\s*(.*)$")
_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\S+|\[\s*\d+\.\d+\]|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)")


def parse_xids(text: str) -> list[XidEvent]:
    """XID lines from ``journalctl -k`` or ``dmesg`` output, oldest first."""
    out = []
    for line in text.splitlines():
        m = _XID.search(line)
        if not m:
            continue
        ts = _TS.match(line.strip())
        out.append(
            XidEvent(
                xid=int(m.group(2)),
                pci=m.group(1).lower().rstrip("."),
                text=m.group(3).strip()[:200],
                ts=ts.group(1) if ts else None,
            )
        )
    return out


# --------------------------------------------------------------------------- MIG tables

_LGI = re.compile(r"^\|\s+(\d+)\s+MIG\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+:\d+)\s*\|")
_LCI = re.compile(r"^\|\s+(\d+)\s+(\d+)\s+MIG\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+:\d+)\s*\|")


def parse_mig_list(text: str) -> list[GpuInstance]:
    """``nvidia-smi mig -lgi`` or ``-lci`` tables; ``No ... found`` is an empty list."""
    out = []
    for line in text.splitlines():
        line = line.rstrip()
        m = _LCI.match(line)
        if m:
            out.append(
                GpuInstance(
                    gpu=int(m.group(1)),
                    gi=int(m.group(2)),
                    profile=m.group(3),
                    profile_id=int(m.group(4)),
                    instance_id=int(m.group(5)),
                    placement=m.group(6),
                )
            )
            continue
        m = _LGI.match(line)
        if m:
            out.append(
                GpuInstance(
                    gpu=int(m.group(1)),
                    profile=m.group(2),
                    profile_id=int(m.group(3)),
                    instance_id=int(m.group(4)),
                    placement=m.group(5),
                )
            )
    low = text.lower()
    if not out and text.strip() and "no " not in low and "|" in text and "instances" not in low:
        raise ParseError("not a MIG instance table")
    return out


# --------------------------------------------------------------------------- NVLink

_GPU_LINE = re.compile(r"^GPU (\d+): (.*?)(?: \(UUID: ([^)]*)\))?\s*$")
_LINK = re.compile(r"^\s*Link (\d+): (.*)$")


def parse_nvlink_status(text: str) -> list[NvlinkState]:
    """``nvidia-smi nvlink -s``: per GPU its links' speeds (None: inactive), or a note."""
    out: list[NvlinkState] = []
    current: tuple[int, dict[int, float | None], list[str]] | None = None

    def flush() -> None:
        if current is not None:
            out.append(NvlinkState(current[0], current[1], " ".join(current[2])[:200]))

    for line in text.splitlines():
        if not line.strip():
            continue
        m = _GPU_LINE.match(line)
        if m:
            flush()
            current = (int(m.group(1)), {}, [])
            continue
        if current is None:
            raise ParseError(f"nvlink status: text before the first GPU: {line[:60]!r}")
        lm = _LINK.match(line)
        if lm:
            current[1][int(lm.group(1))] = (
                number(lm.group(2)) if "inactive" not in lm.group(2) else None
            )
        else:
            current[2].append(line.strip())
    flush()
    return out


# --------------------------------------------------------------------------- DCGM


def parse_dcgm_diag(text: str) -> DiagResult:
    """``dcgmi diag -r 1 -j``: each test's status and whether all passed."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"dcgmi diag: not JSON: {exc}") from None
    root = data.get("DCGM GPU Diagnostic") if isinstance(data, dict) else None
    if not isinstance(root, dict) or not isinstance(root.get("test_categories"), list):
        raise ParseError("dcgmi diag: no 'DCGM GPU Diagnostic'.test_categories")
    tests: list[tuple[str, str]] = []
    for cat in root["test_categories"]:
        if not isinstance(cat, dict) or not isinstance(cat.get("tests"), list):
            raise ParseError("dcgmi diag: a category without tests")
        for test in cat["tests"]:
            if not isinstance(test, dict):
                raise ParseError("dcgmi diag: a test is not an object")
            name = str(test.get("name", "?"))[:60]
            results = test.get("results")
            statuses = (
                [str(r.get("status", "?")) for r in results if isinstance(r, dict)]
                if isinstance(results, list)
                else []
            )
            worst = (
                "Fail"
                if "Fail" in statuses
                else "Warn"
                if "Warn" in statuses
                else (statuses[0] if statuses else "?")
            )
            tests.append((name, worst[:20]))
    if not tests:
        return DiagResult(None, ())
    passed = all(s in ("Pass", "Skip") for _, s in tests)
    return DiagResult(passed, tuple(tests))


# --------------------------------------------------------------------------- sections

SECTION = "@@dcc-gpu "
"""Marker line the full round trip prints between its parts: ``@@dcc-gpu NAME rc=N@@``."""
_SECTION = re.compile(r"^@@dcc-gpu (\w+) rc=(\d+)@@$")


def parse_os_release(text: str) -> tuple[str | None, str | None]:
    """``uname -r`` then ``/etc/os-release``'s PRETTY_NAME line -> (kernel, distribution).

    Either is None when missing (a host without os-release, a failed command).
    """
    kernel: str | None = None
    pretty: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("PRETTY_NAME="):
            value = line.partition("=")[2].strip().strip("\"'").strip()
            pretty = value or None
        elif kernel is None and line and "=" not in line and " " not in line:
            kernel = line
    return kernel, pretty


def split_sections(text: str) -> dict[str, tuple[int, str]]:
    """The full round trip's output -> section name -> (exit status, text before the marker)."""
    out: dict[str, tuple[int, str]] = {}
    buf: list[str] = []
    for line in text.splitlines():
        m = _SECTION.match(line.strip())
        if m:
            out[m.group(1)] = (int(m.group(2)), "\n".join(buf))
            buf = []
        else:
            buf.append(line)
    return out
