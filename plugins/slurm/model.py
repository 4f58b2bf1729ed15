"""Slurm's nodes, jobs and partitions, and the value helpers both parsers share.

Slurm writes the same facts in many shapes (JSON numbers plain or as
``{"set", "infinite", "number"}`` objects, states as strings, word lists or
text with suffix marks); the helpers here turn each into one Python value, and
a value Slurm does not give into None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_GPU_IN_GRES = re.compile(r"(?:^|,)gpu(?::[^:,(]+)?:(\d+)")
_GPU_IN_TRES = re.compile(r"(?:^|,)gres/gpu(?::[^=,]+)?=(\d+)")
_GPU_PER = re.compile(r"(?:^|,)(?:gres[:/])?gpu(?::[^:,]+)?:(\d+)")
_STATE_SUFFIX = {
    "*": "NOT_RESPONDING",
    "~": "POWERED_DOWN",
    "#": "POWERING_UP",
    "!": "POWER_DOWN",
    "%": "POWERING_DOWN",
    "$": "MAINTENANCE",
    "@": "REBOOT_REQUESTED",
    "^": "REBOOT_ISSUED",
    "-": "PLANNED",
}
# Long text states that are a base state plus a flag.
_TEXT_STATES = {
    "drained": ("idle", ("DRAIN",)),
    "draining": ("allocated", ("DRAIN",)),
    "failing": ("allocated", ("FAIL",)),
    "fail": ("idle", ("FAIL",)),
    "alloc": ("allocated", ()),
    "comp": ("allocated", ("COMPLETING",)),
    "completing": ("allocated", ("COMPLETING",)),
    "maint": ("idle", ("MAINTENANCE",)),
    # sinfo's "reboot^" is a node whose reboot was issued: JSON calls it DOWN+REBOOT_ISSUED.
    "reboot": ("down", ()),
    "inval": ("invalid", ()),
    "unk": ("unknown", ()),
    "powered_down": ("idle", ("POWERED_DOWN",)),
}
_BASE_STATES = (
    "idle", "allocated", "mixed", "down", "error", "future", "unknown", "invalid",
)  # fmt: skip
REBOOT_TIMED_OUT = "reboot timed out"
"""slurmctld's reason when a rebooted node did not come back within ResumeTimeout (it sets DOWN)."""
_UNSET_WORDS = {"", "n/a", "unknown", "none", "(null)", "invalid"}


# --------------------------------------------------------------------------- models


@dataclass(frozen=True, slots=True)
class SlurmNode:
    """One node as Slurm sees it."""

    name: str
    state: str
    """Base state, lowercase: ``idle``, ``allocated``, ``mixed``, ``down``, ``unknown`` ..."""
    flags: tuple[str, ...] = ()
    """Uppercase flags: ``DRAIN``, ``NOT_RESPONDING``, ``REBOOT_REQUESTED`` ..."""
    reason: str | None = None
    reason_by: str | None = None
    reason_since: float | None = None
    """Epoch seconds the reason was set."""
    partitions: tuple[str, ...] = ()
    gpus_total: int | None = None
    """GPUs configured (gres ``gpu``); 0 when the node has none."""
    gpus_used: int | None = None
    cpus: int | None = None
    alloc_cpus: int | None = None
    next_state: str | None = None
    """The state after a requested reboot (``resume``, ``drain``, ``down``), when one is pending."""

    @property
    def state_text(self) -> str:
        """``idle+DRAIN``: Slurm's own words, for details."""
        return "+".join((self.state, *self.flags))

    @property
    def reboot(self) -> str | None:
        """``timed out`` (DOWN, Slurm's reason "reboot timed out"), ``issued``, ``requested``."""
        if self.state == "down" and REBOOT_TIMED_OUT in (self.reason or "").lower():
            return "timed out"
        if "REBOOT_ISSUED" in self.flags:
            return "issued"
        if "REBOOT_REQUESTED" in self.flags:
            return "requested"
        return None

    @property
    def allocation(self) -> str:
        """The node's state in console.workloads' words."""
        drainy = bool({"DRAIN", "FAIL"} & set(self.flags))
        busy = self.state in ("allocated", "mixed") or "COMPLETING" in self.flags
        if self.state in ("down", "error") or (
            self.state == "unknown" and "NOT_RESPONDING" in self.flags
        ):
            return "down"
        if drainy:
            return "drain" if busy else "drained"
        if self.state == "allocated":
            return "alloc"
        if self.state in ("mixed", "idle"):
            return self.state
        return "unknown"

    @property
    def out_of_service(self) -> bool:
        return self.allocation in ("down", "drain", "drained") or "NOT_RESPONDING" in self.flags


@dataclass(frozen=True, slots=True)
class SlurmJob:
    """One job (or array task) in the queue."""

    job_id: str
    """``81723`` or ``81720_4`` for an array task."""
    name: str
    user: str | None
    state: str
    """Uppercase: ``RUNNING``, ``PENDING``, ``COMPLETING`` ..."""
    reason: str | None
    """Why it waits (``Resources``, ``Priority`` ...); None when Slurm says ``None``."""
    partition: str | None
    nodes: str | None
    """The node list as Slurm writes it (``gpu[01-02]``)."""
    node_count: int | None
    gpus: int | None
    """GPUs requested (pending) or allocated (running), over all its nodes."""
    submit_time: float | None
    start_time: float | None


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    state: str | None
    nodes: str | None
    total_nodes: int | None
    gpus: int | None
    default: bool = False
    max_time: str | None = None
    node_states: tuple[tuple[str, int], ...] = ()
    """Nodes per state (``(("alloc", 109), ("idle", 19))``) when the source says; else empty."""


# --------------------------------------------------------------------------- helpers


def slurm_number(value: Any) -> float | None:
    """A Slurm number: plain, or ``{"set": true, "number": N}`` (23.02+); unset -> None."""
    if isinstance(value, Mapping):
        if not value.get("set", True) or value.get("infinite"):
            return None
        value = value.get("number")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def slurm_int(value: Any) -> int | None:
    n = slurm_number(value)
    return None if n is None or n != n or abs(n) > 2**62 else int(n)


def slurm_time(value: Any) -> float | None:
    """Epoch seconds; 0 is Slurm's "never"."""
    n = slurm_number(value)
    return n if n is not None and n > 0 else None


def slurm_str(value: Any) -> str | None:
    if isinstance(value, list):  # 23.02+: some strings became lists of words
        value = ",".join(str(v) for v in value if isinstance(v, str | int))
    if not isinstance(value, str):
        return None
    return None if value.strip().lower() in _UNSET_WORDS else value.strip()


def gres_gpus(gres: str | None) -> int | None:
    """GPUs in a gres string (``gpu:h100:8(S:0-1)``, ``gpu:4,gpu:a100:2``); 0 for none."""
    if gres is None:
        return None
    counts = [int(m) for m in _GPU_IN_GRES.findall(gres)]
    return sum(counts)


def tres_gpus(tres: str | None) -> int | None:
    """GPUs in a TRES string (``cpu=4,gres/gpu=8``), or None when it names none."""
    if not tres:
        return None
    counts = [int(m) for m in _GPU_IN_TRES.findall(tres)]
    return sum(counts) if counts else None


def per_gpus(text: str | None) -> int | None:
    """``gres:gpu:4`` / ``gres/gpu:4`` / ``gpu:h100:2`` (tres_per_node, tres_per_job)."""
    if not text:
        return None
    counts = [int(m) for m in _GPU_PER.findall(text)]
    return sum(counts) if counts else None


def epoch_from_text(text: str | None) -> float | None:
    """``2026-11-29T14:51:56`` in the controller's local time; None for Unknown/N/A."""
    if text is None or text.strip().lower() in _UNSET_WORDS:
        return None
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        return None


def split_state(raw: Any, flags: Any = None) -> tuple[str, tuple[str, ...]]:
    """(base state, flags) from a JSON state (string or list) or a long text state."""
    extra = tuple(str(f).upper() for f in flags if isinstance(f, str)) if flags else ()
    if isinstance(raw, list):
        words = [str(w).upper() for w in raw if isinstance(w, str)]
        base = next((w.lower() for w in words if w.lower() in _BASE_STATES), None)
        rest = tuple(w for w in words if w.lower() != base)
        return base or "unknown", rest + extra
    if not isinstance(raw, str) or not raw.strip():
        return "unknown", extra
    text = raw.strip().lower()
    suffix_flags = []
    while text and text[-1] in _STATE_SUFFIX:
        suffix_flags.append(_STATE_SUFFIX[text[-1]])
        text = text[:-1]
    parts = text.split("+")
    base, flags_of = _TEXT_STATES.get(parts[0], (parts[0], ()))
    if parts[0] == "reboot" and not suffix_flags:
        flags_of = ("REBOOT_REQUESTED",)
    if base not in _BASE_STATES:
        base = "unknown"
    more = tuple(p.upper() for p in parts[1:])
    return base, tuple(dict.fromkeys(flags_of + more + tuple(suffix_flags) + extra))
