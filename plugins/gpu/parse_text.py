"""Pure parsers for nvidia-smi's human formats: the default table, ``dmon``, ``topo -m``.

The default table is the fallback for drivers whose ``--query-gpu`` does not
answer and gives ``GpuFast`` like the CSV; ``topo -m`` gives each GPU's nearest
NICs and CPU/NUMA affinity for the node card; ``dmon`` is parsed for samples
taken over a window. (``-q`` text is in ``parse_smi_q``.) Each raises only
``console.plugin.ParseError``; unknown values (``N/A``, ``-``, ``ERR!``) are
None, never 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from console.plugin import ParseError
from plugins.gpu.model import GpuFast, GpuProcess, MigDevice
from plugins.gpu.parse import enabled, integer, is_error, number, token

# --------------------------------------------------------------------------- default table


@dataclass(frozen=True, slots=True)
class SmiTable:
    """The default ``nvidia-smi`` table: versions, GPUs, MIG devices and processes."""

    driver: str | None
    cuda: str | None
    gpus: tuple[GpuFast, ...]
    mig: tuple[tuple[int, MigDevice], ...] = ()
    processes: tuple[tuple[int | None, GpuProcess], ...] = ()


_VERSION = re.compile(r"Driver Version:\s*(\S+)(?:\s+CUDA Version:\s*(\S+))?")
_BUS = re.compile(r"^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]$")
_MIB = re.compile(r"^\s*(\S+?)(?:MiB)?\s*/\s*(\S+?)(?:MiB)?\s*$")
_PROC_KINDS = frozenset({"C", "G", "C+G", "M", "M+C", "M+C+G"})


def _cells(line: str) -> list[str] | None:
    s = line.strip()
    if not (s.startswith("|") and s.endswith("|")) or len(s) < 2:
        return None
    return [c.strip() for c in s[1:-1].split("|")]


def _unit(raw: str, suffix: str) -> float | None:
    return number(raw[: -len(suffix)] if raw.endswith(suffix) else raw)


def _first_row(cells: list[str]) -> dict[str, str] | None:
    left = cells[0].split()
    bus = cells[1].split()
    if len(left) < 3 or not left[0].isdigit() or not bus or not _BUS.match(bus[0]):
        return None
    return {"index": left[0], "name": " ".join(left[1:-1]), "bus": bus[0], "ecc": cells[2]}


def _second_row(cells: list[str]) -> dict[str, str] | None:
    if "/" not in cells[0] or "/" not in cells[1]:
        return None
    head, cap = cells[0].rsplit("/", 1)
    parts = head.split()
    if len(parts) < 4:
        return None
    mem = _MIB.match(cells[1])
    util = cells[2].split()
    return {
        "fan": parts[0],
        "temp": parts[1],
        "perf": parts[2],
        "power": parts[3],
        "cap": cap.strip(),
        "used": mem.group(1) if mem else "",
        "total": mem.group(2) if mem else "",
        "util": util[0] if util else "",
    }


def _table_gpu(first: dict[str, str], second: dict[str, str], mig: str | None) -> GpuFast:
    errors = tuple(k for k, v in {**first, **second}.items() if is_error(v))
    return GpuFast(
        index=int(first["index"]),
        name=token(first["name"]),
        pci_bus_id=first["bus"],
        util_pct=_unit(second["util"], "%"),
        mem_used_mib=number(second["used"]),
        mem_total_mib=number(second["total"]),
        temp_c=_unit(second["temp"], "C"),
        power_w=_unit(second["power"], "W"),
        power_limit_w=_unit(second["cap"], "W"),
        pstate=token(second["perf"]),
        fan_pct=_unit(second["fan"], "%"),
        ecc_unc_volatile=integer(first["ecc"]) if first["ecc"].isdigit() else None,
        mig_current=enabled(mig) if mig is not None else None,
        errors=errors,
    )


def _process_row(cell: str) -> tuple[int | None, GpuProcess] | None:
    tokens = cell.split()
    kind_at = next((i for i, t in enumerate(tokens) if i >= 2 and t in _PROC_KINDS), None)
    if kind_at is None or len(tokens) < kind_at + 2:
        return None
    ids = tokens[1 : kind_at - 1]
    return integer(tokens[0]), GpuProcess(
        pid=integer(tokens[kind_at - 1]),
        kind=tokens[kind_at],
        name=" ".join(tokens[kind_at + 1 : -1]) or None,
        used_mib=_unit(tokens[-1], "MiB"),
        gi=integer(ids[0]) if len(ids) == 2 else None,
        ci=integer(ids[1]) if len(ids) == 2 else None,
    )


def parse_smi_table(text: str) -> SmiTable:
    """The default ``nvidia-smi`` output (the table), any driver since the 3-row layout."""
    version = _VERSION.search(text)
    if version is None:
        raise ParseError("not an nvidia-smi table (no 'Driver Version:')")
    gpus: list[GpuFast] = []
    mig: list[tuple[int, MigDevice]] = []
    procs: list[tuple[int | None, GpuProcess]] = []
    section = "gpus"
    first: dict[str, str] | None = None
    second: dict[str, str] | None = None
    for line in text.splitlines():
        if "MIG devices:" in line:
            section = "mig"
        elif "Processes:" in line:
            section = "procs"
        cells = _cells(line)
        if cells is None:
            if first is not None and second is not None:
                gpus.append(_table_gpu(first, second, None))
            first = second = None
            continue
        if section == "gpus" and len(cells) == 3:
            if first is None:
                first = _first_row(cells)
            elif second is None:
                second = _second_row(cells)
                if second is None:
                    first = None
            else:
                mig_cell = cells[2] if not cells[0] and not cells[1] else None
                gpus.append(_table_gpu(first, second, mig_cell))
                first = second = None
        elif section == "mig" and len(cells) == 4:
            ids = cells[0].split()
            mem = _MIB.match(cells[1])
            if len(ids) == 4 and all(i.isdigit() for i in ids):
                sm = cells[2].split()
                mig.append(
                    (
                        int(ids[0]),
                        MigDevice(
                            index=int(ids[3]),
                            gi=int(ids[1]),
                            ci=int(ids[2]),
                            mem_used_mib=number(mem.group(1)) if mem else None,
                            mem_total_mib=number(mem.group(2)) if mem else None,
                            sm_count=integer(sm[0]) if sm else None,
                        ),
                    )
                )
        elif section == "procs" and len(cells) == 1:
            row = _process_row(cells[0])
            if row is not None:
                procs.append(row)
    if first is not None and second is not None:
        gpus.append(_table_gpu(first, second, None))
    return SmiTable(
        driver=token(version.group(1)),
        cuda=token(version.group(2) or ""),
        gpus=tuple(gpus),
        mig=tuple(mig),
        processes=tuple(procs),
    )


# --------------------------------------------------------------------------- dmon


@dataclass(frozen=True, slots=True)
class DmonSample:
    """One ``nvidia-smi dmon`` line: the GPU and each column's value (None for ``-``)."""

    gpu: int
    values: dict[str, float | None]


def parse_dmon(text: str) -> list[DmonSample]:
    """``nvidia-smi dmon [-c N]``: the first ``#`` line names the columns, the second its units."""
    columns: list[str] | None = None
    out: list[DmonSample] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if out:
                break  # dmon prints no blank lines: whatever follows is not its output
            continue
        if line.lstrip().startswith("#"):
            if columns is None:
                columns = line.lstrip()[1:].split()
                if not columns or columns[0] not in ("gpu", "Date", "Time"):
                    raise ParseError(f"dmon: unexpected header {line[:60]!r}")
            continue
        if columns is None:
            raise ParseError(f"dmon: data before the header on line {n}")
        cells = line.split()
        if len(cells) != len(columns):
            raise ParseError(f"dmon line {n}: {len(cells)} fields, expected {len(columns)}")
        row = dict(zip(columns, cells, strict=True))
        gpu = integer(row.get("gpu"))
        if gpu is None:
            raise ParseError(f"dmon line {n}: no GPU index")
        out.append(
            DmonSample(
                gpu,
                {k: number(v) for k, v in row.items() if k not in ("gpu", "Date", "Time")},
            )
        )
    if columns is None and text.strip():
        raise ParseError("dmon: no header line")
    return out


def dmon_means(samples: list[DmonSample]) -> dict[int, dict[str, float | None]]:
    """Per GPU, each column's mean over the samples that knew it (None if none did)."""
    acc: dict[int, dict[str, list[float]]] = {}
    for s in samples:
        per = acc.setdefault(s.gpu, {})
        for k, v in s.values.items():
            per.setdefault(k, [])
            if v is not None:
                per[k].append(v)
    return {
        g: {k: (sum(vs) / len(vs) if vs else None) for k, vs in cols.items()}
        for g, cols in acc.items()
    }


# --------------------------------------------------------------------------- topo -m

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_DEVICE = re.compile(r"^(GPU\d+|NIC\d+|mlx\d+_\d+|[a-z]+\d*_\d+)$")
_NIC_LEGEND = re.compile(r"^\s*(NIC\d+):\s*(\S+)\s*$")
_CLOSENESS = {"X": 0, "PIX": 1, "PXB": 2, "PHB": 3, "NODE": 4, "SYS": 5, "SOC": 5}
"""Lower is closer (the legend's order); NV# (NVLink) is between GPUs only."""


@dataclass(frozen=True, slots=True)
class TopoMatrix:
    """``nvidia-smi topo -m``: the link between every pair of devices, and affinities."""

    devices: tuple[str, ...]
    links: dict[str, dict[str, str]]
    cpu_affinity: dict[str, str | None]
    numa: dict[str, str | None]
    nic_names: dict[str, str]
    """``NIC0`` -> ``mlx5_0`` from the NIC legend."""

    @property
    def gpus(self) -> tuple[str, ...]:
        return tuple(d for d in self.devices if d.startswith("GPU"))

    @property
    def nics(self) -> tuple[str, ...]:
        return tuple(d for d in self.devices if not d.startswith("GPU"))

    def nearest_nics(self, gpu: str) -> tuple[tuple[str, str], ...]:
        """The GPU's closest NIC(s) as (device name, link), or () without NICs."""
        row = self.links.get(gpu, {})
        ranked = [(_CLOSENESS[row[n]], n, row[n]) for n in self.nics if row.get(n) in _CLOSENESS]
        if not ranked:
            return ()
        best = min(r for r, _, _ in ranked)
        return tuple((self.nic_names.get(n, n), link) for r, n, link in ranked if r == best)


def parse_topo(text: str) -> TopoMatrix:
    """``nvidia-smi topo -m`` (GPU/NIC matrix, CPU and NUMA affinity, NIC legend)."""
    lines = [_ANSI.sub("", raw).rstrip("\n") for raw in text.splitlines()]
    header: list[str] | None = None
    devices: list[str] = []
    links: dict[str, dict[str, str]] = {}
    cpu: dict[str, str | None] = {}
    numa: dict[str, str | None] = {}
    names: dict[str, str] = {}
    for line in lines:
        legend = _NIC_LEGEND.match(line)
        if legend:
            names[legend.group(1)] = legend.group(2)
            continue
        cells = line.split("\t")
        if header is None:
            if len(cells) > 1 and not cells[0].strip() and cells[1].strip().startswith("GPU"):
                header = [c.strip() for c in cells[1:] if c.strip()]
                devices = [h for h in header if _DEVICE.match(h)]
            continue
        name = cells[0].strip()
        if not _DEVICE.match(name) or len(cells) < 1 + len(devices):
            continue
        links[name] = {d: cells[1 + i].strip() for i, d in enumerate(devices)}
        # nvidia-smi prints an empty cell before "GPU NUMA ID": match the rest by order.
        rest = [c.strip() for c in cells[1 + len(devices) :] if c.strip()]
        extra = dict(zip(header[len(devices) :], rest, strict=False))
        cpu[name] = token(extra.get("CPU Affinity", ""))
        numa[name] = token(extra.get("NUMA Affinity", ""))
    if header is None or not devices:
        raise ParseError("not nvidia-smi topo -m output (no GPU column header)")
    return TopoMatrix(tuple(devices), links, cpu, numa, names)
