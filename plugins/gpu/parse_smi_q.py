"""Pure parser for ``nvidia-smi -q`` (text): the fallback when ``-q -x`` fails.

It gives the same ``SmiLog`` as ``parse_smi_xml``. Raises only
``console.plugin.ParseError``; unknown values (``N/A``, ``-``, ``ERR!``) are
None, never 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from console.plugin import ParseError
from plugins.gpu.model import GpuDetail, GpuProcess, MigDevice, SmiLog
from plugins.gpu.parse import enabled, integer, is_error, number, token


@dataclass
class _Node:
    key: str
    value: str | None
    children: list[_Node] = field(default_factory=list)

    def find(self, *path: str) -> _Node | None:
        node: _Node | None = self
        for key in path:
            if node is None:
                return None
            node = next((c for c in node.children if c.key == key), None)
        return node

    def all(self, key: str) -> list[_Node]:
        return [c for c in self.children if c.key == key]

    def val(self, *path: str) -> str | None:
        node = self.find(*path)
        return None if node is None or node.value is None else token(node.value)

    def first(self, *paths: tuple[str, ...]) -> str | None:
        for path in paths:
            value = self.val(*path)
            if value is not None:
                return value
        return None


_KV = re.compile(r"^(?P<key>\S.*?)\s+:(?: (?P<value>.*))?$")


def _tree(text: str) -> _Node:
    root = _Node("", None)
    stack: list[tuple[int, _Node]] = [(-1, root)]
    for line in text.splitlines():
        body = line.rstrip()
        if not body.strip() or body.strip().startswith("="):
            continue
        indent = len(body) - len(body.lstrip())
        m = _KV.match(body.strip())
        node = (
            _Node(m.group("key").strip(), (m.group("value") or "").strip())
            if m
            else _Node(body.strip(), None)
        )
        while stack[-1][0] >= indent:
            stack.pop()
        stack[-1][1].children.append(node)
        stack.append((indent, node))
    return root


def _ecc_text(block: _Node | None) -> tuple[int | None, int | None]:
    if block is None:
        return None, None
    if block.find("Single Bit") is not None or block.find("Double Bit") is not None:
        return integer(block.val("Single Bit", "Total")), integer(block.val("Double Bit", "Total"))

    def total(*keys: str) -> int | None:
        known = [v for v in (integer(block.val(k)) for k in keys) if v is not None]
        return sum(known) if known else None

    return (
        total("SRAM Correctable", "DRAM Correctable", "Device Memory", "Register File"),
        total(
            "SRAM Uncorrectable",
            "SRAM Uncorrectable Parity",
            "SRAM Uncorrectable SEC-DED",
            "DRAM Uncorrectable",
        ),
    )


def _reason_name(key: str) -> str:
    return "gpu_idle" if key == "Idle" else key.lower().replace(" ", "_").replace("-", "_")


def _throttle_text(gpu: _Node) -> tuple[str, ...] | None:
    block = gpu.find("Clocks Event Reasons") or gpu.find("Clocks Throttle Reasons")
    if block is None:
        return None
    active: list[str] = []
    known = False
    todo = list(block.children)
    while todo:
        child = todo.pop(0)
        todo[:0] = child.children  # HW Thermal Slowdown is nested under HW Slowdown
        if child.value in ("Active", "Not Active"):
            known = True
        if child.value == "Active":
            active.append(_reason_name(child.key))
    return tuple(active) if known else None


def _processes_text(gpu: _Node) -> tuple[GpuProcess, ...]:
    block = gpu.find("Processes")
    if block is None:
        return ()
    out: list[GpuProcess] = []
    gi: int | None = None
    ci: int | None = None
    for child in block.children:
        if child.key == "GPU instance ID":
            gi = integer(child.value)
        elif child.key == "Compute instance ID":
            ci = integer(child.value)
        elif child.key == "Process ID":
            out.append(
                GpuProcess(
                    pid=integer(child.value),
                    kind=child.val("Type"),
                    name=child.val("Name") or child.val("Process Name"),
                    used_mib=number(child.val("Used GPU Memory")),
                    gi=gi,
                    ci=ci,
                )
            )
    return tuple(out)


def _errors_text(gpu: _Node) -> tuple[str, ...]:
    found: set[str] = set()
    todo = [gpu]
    while todo:
        node = todo.pop()
        todo += node.children
        if node.value and not node.children and is_error(node.value):
            found.add(node.key)
    return tuple(sorted(found))


def _gpu_text(index: int, gpu: _Node) -> GpuDetail:
    bus = gpu.key.split(" ", 1)[1].strip() if " " in gpu.key else None
    mig = tuple(
        MigDevice(
            index=integer(d.val("Index")),
            gi=integer(d.val("GPU Instance ID")),
            ci=integer(d.val("Compute Instance ID")),
            mem_total_mib=number(
                d.first(("Shared FB Memory Usage", "Total"), ("FB Memory Usage", "Total"))
            ),
            mem_used_mib=number(
                d.first(("Shared FB Memory Usage", "Used"), ("FB Memory Usage", "Used"))
            ),
            sm_count=integer(d.val("Device Attributes", "Shared", "Multiprocessor count")),
        )
        for d in gpu.all("MIG Device")
    )
    corr_v, unc_v = _ecc_text(gpu.find("ECC Errors", "Volatile"))
    corr_a, unc_a = _ecc_text(gpu.find("ECC Errors", "Aggregate"))
    power = gpu.find("GPU Power Readings") or gpu.find("Power Readings")
    link = ("PCI", "GPU Link Info")
    return GpuDetail(
        index=index,
        pci_bus_id=gpu.val("PCI", "Bus Id") or bus,
        name=gpu.val("Product Name"),
        uuid=gpu.val("GPU UUID"),
        serial=gpu.val("Serial Number"),
        vbios=gpu.val("VBIOS Version"),
        mig_current=enabled(gpu.val("MIG Mode", "Current")),
        mig_pending=enabled(gpu.val("MIG Mode", "Pending")),
        mig_devices=mig,
        ecc_mode=enabled(gpu.val("ECC Mode", "Current")),
        ecc_corr_volatile=corr_v,
        ecc_unc_volatile=unc_v,
        ecc_corr_aggregate=corr_a,
        ecc_unc_aggregate=unc_a,
        retired_sbe=integer(gpu.val("Retired Pages", "Single Bit ECC")),
        retired_dbe=integer(gpu.val("Retired Pages", "Double Bit ECC")),
        retire_pending=enabled(
            gpu.first(("Retired Pages", "Pending Page Blacklist"), ("Retired Pages", "Pending"))
        ),
        remap_corr=integer(gpu.val("Remapped Rows", "Correctable Error")),
        remap_unc=integer(gpu.val("Remapped Rows", "Uncorrectable Error")),
        remap_pending=enabled(gpu.val("Remapped Rows", "Pending")),
        remap_failure=enabled(gpu.val("Remapped Rows", "Remapping Failure Occurred")),
        throttle=_throttle_text(gpu),
        sm_clock_mhz=number(gpu.val("Clocks", "SM")),
        mem_clock_mhz=number(gpu.val("Clocks", "Memory")),
        max_sm_clock_mhz=number(gpu.val("Max Clocks", "SM")),
        power_w=None
        if power is None
        else number(
            power.first(("Power Draw",), ("Instantaneous Power Draw",), ("Average Power Draw",))
        ),
        power_limit_w=None
        if power is None
        else number(power.first(("Current Power Limit",), ("Power Limit",))),
        temp_c=number(gpu.val("Temperature", "GPU Current Temp")),
        # "GPU Slowdown T.Limit Temp" (newer drivers) is relative to the limit: not used.
        temp_slow_c=number(gpu.val("Temperature", "GPU Slowdown Temp")),
        util_pct=number(gpu.val("Utilization", "GPU")),
        mem_used_mib=number(gpu.val("FB Memory Usage", "Used")),
        mem_total_mib=number(gpu.val("FB Memory Usage", "Total")),
        pcie_gen=integer(gpu.val(*link, "PCIe Generation", "Current")),
        pcie_width=integer((gpu.val(*link, "Link Width", "Current") or "").rstrip("x") or None),
        pcie_max_width=integer((gpu.val(*link, "Link Width", "Max") or "").rstrip("x") or None),
        processes=_processes_text(gpu),
        errors=_errors_text(gpu),
    )


_GPU_KEY = re.compile(r"^GPU [0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]$")


def parse_smi_q(text: str) -> SmiLog:
    """``nvidia-smi -q`` (text): the same ``SmiLog`` as ``parse_smi_xml``."""
    root = _tree(text)
    gpus = [c for c in root.children if _GPU_KEY.match(c.key)]
    driver = root.val("Driver Version")
    if not gpus and driver is None:
        raise ParseError("not nvidia-smi -q output (no Driver Version, no GPU section)")
    return SmiLog(
        driver=driver,
        cuda=root.val("CUDA Version"),
        gpus=tuple(_gpu_text(i, g) for i, g in enumerate(gpus)),
    )
