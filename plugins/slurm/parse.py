"""Pure parsers: Slurm's JSON (sinfo/squeue ``--json``, slurmrestd) and text output.

JSON comes in the data_parser schemas of Slurm 21.08 (``openapi/v0.0.37``)
to 25.05 (``data_parser/v0.0.43``): node ``state`` is a lowercase string with
a separate ``state_flags`` list up to 22.05 and a list of uppercase words from
23.02; numbers are plain or ``{"set", "infinite", "number"}`` objects from
23.02. A version this module does not know is refused (``ParseError``) rather
than guessed at. The text fallback reads ``sinfo``/``squeue`` output in the
pipe-separated formats ``SINFO_TEXT``/``SQUEUE_TEXT`` (with their header line)
and ``scontrol show partition -o`` / ``scontrol show job`` key=value text.

Everything raises only ``ParseError``; a value Slurm does not give is None.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from console.plugin import ParseError

KNOWN_PARSERS = ("v0.0.37", "v0.0.38", "v0.0.39", "v0.0.40", "v0.0.41", "v0.0.42", "v0.0.43")
"""data_parser / openapi versions whose shapes this module was written against."""

SINFO_TEXT = "%N|%T|%P|%G|%E|%u|%H|%C"
"""``sinfo -N -o`` format of the text fallback: node, long state, partition, gres,
reason, who set it, when, CPUs A/I/O/T (the reason may hold anything but a newline)."""
SQUEUE_TEXT = "%i|%j|%u|%T|%P|%D|%b|%V|%S|%r|%N"
"""``squeue -o`` format of the text fallback (the node list last: it has no pipe)."""

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
    "reboot": ("idle", ("REBOOT_REQUESTED",)),
    "inval": ("invalid", ()),
    "unk": ("unknown", ()),
    "powered_down": ("idle", ("POWERED_DOWN",)),
}
_BASE_STATES = (
    "idle", "allocated", "mixed", "down", "error", "future", "unknown", "invalid",
)  # fmt: skip
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


@dataclass(frozen=True, slots=True)
class Document:
    """What a JSON document said about itself."""

    version: str
    release: str | None


# --------------------------------------------------------------------------- helpers


def _num(value: Any) -> float | None:
    """A Slurm number: plain, or ``{"set": true, "number": N}`` (23.02+); unset -> None."""
    if isinstance(value, Mapping):
        if not value.get("set", True) or value.get("infinite"):
            return None
        value = value.get("number")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: Any) -> int | None:
    n = _num(value)
    return None if n is None or n != n or abs(n) > 2**62 else int(n)


def _time(value: Any) -> float | None:
    """Epoch seconds; 0 is Slurm's "never"."""
    n = _num(value)
    return n if n is not None and n > 0 else None


def _str(value: Any) -> str | None:
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


def _per_gpus(text: str | None) -> int | None:
    """``gres:gpu:4`` / ``gres/gpu:4`` / ``gpu:h100:2`` (tres_per_node, tres_per_job)."""
    if not text:
        return None
    counts = [int(m) for m in _GPU_PER.findall(text)]
    return sum(counts) if counts else None


def _epoch_text(text: str | None) -> float | None:
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
    if base not in _BASE_STATES:
        base = "unknown"
    more = tuple(p.upper() for p in parts[1:])
    return base, tuple(dict.fromkeys(flags_of + more + tuple(suffix_flags) + extra))


# --------------------------------------------------------------------------- JSON


def load_document(text: str | bytes, key: str) -> tuple[Document, list[Any]]:
    """Decode a Slurm JSON document and check its schema version; returns its ``key`` list.

    Raises:
        ParseError: not JSON, not a Slurm document, an unknown data_parser version,
            Slurm's own ``errors``, or no ``key`` list.
    """
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ParseError("not a Slurm JSON document (not an object)")
    meta = data.get("meta")
    plugin = meta.get("plugin") if isinstance(meta, dict) else None
    if not isinstance(plugin, dict):
        raise ParseError("not a Slurm JSON document (no meta.plugin)")
    version = None
    for field in ("data_parser", "type"):
        raw = plugin.get(field)
        if isinstance(raw, str):
            found = re.search(r"v\d+\.\d+\.\d+", raw)
            if found:
                version = found.group(0)
                break
    if version is None:
        raise ParseError("Slurm JSON without a data_parser version (meta.plugin)")
    if version not in KNOWN_PARSERS:
        raise ParseError(
            f"Slurm data_parser {version} is not supported (known: {', '.join(KNOWN_PARSERS)}); "
            f"use the text format for this cluster"
        )
    slurm = meta.get("Slurm") or meta.get("slurm") if isinstance(meta, dict) else None
    release = _str(slurm.get("release")) if isinstance(slurm, dict) else None
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0]
        text_err = (
            first.get("error") or first.get("description") if isinstance(first, dict) else first
        )
        raise ParseError(f"Slurm reported an error: {str(text_err)[:200]}")
    items = data.get(key)
    if not isinstance(items, list):
        raise ParseError(f"Slurm JSON has no {key!r} list")
    return Document(version, release), items


def node_from_json(item: Any) -> SlurmNode:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
        raise ParseError("a node without a name")
    base, flags = split_state(item.get("state"), item.get("state_flags"))
    gres = item.get("gres") if isinstance(item.get("gres"), str) else None
    total = gres_gpus(gres)
    if not total:
        total = tres_gpus(_str(item.get("tres"))) or total
    used_gres = item.get("gres_used") if isinstance(item.get("gres_used"), str) else None
    used = gres_gpus(used_gres) if used_gres else None
    if used is None:
        used = tres_gpus(_str(item.get("tres_used")))
        if used is None and total == 0:
            used = 0
    next_state = None
    if {"REBOOT_REQUESTED", "REBOOT_ISSUED"} & set(flags):
        # 22.05: "unknown" + flags ["RESUME"]; 23.02+: a list like ["IDLE", "DRAIN"].
        next_base, next_flags = split_state(
            item.get("next_state_after_reboot"), item.get("next_state_after_reboot_flags")
        )
        for word, name in (("DOWN", "down"), ("DRAIN", "drain"), ("RESUME", "resume")):
            if word in next_flags or next_base == name:
                next_state = name
                break
    parts = item.get("partitions")
    return SlurmNode(
        name=item["name"],
        state=base,
        flags=flags,
        reason=_str(item.get("reason")),
        reason_by=_str(item.get("reason_set_by_user")),
        reason_since=_time(item.get("reason_changed_at")),
        partitions=tuple(p for p in parts if isinstance(p, str)) if isinstance(parts, list) else (),
        gpus_total=total,
        gpus_used=used,
        cpus=_int(item.get("cpus")),
        alloc_cpus=_int(item.get("alloc_cpus")),
        next_state=next_state,
    )


def parse_nodes_json(text: str | bytes) -> list[SlurmNode]:
    """``sinfo --json``, ``scontrol show node --json`` or slurmrestd ``/nodes``."""
    _doc, items = load_document(text, "nodes")
    seen: dict[str, SlurmNode] = {}
    for item in items:
        node = node_from_json(item)
        seen.setdefault(node.name, node)
    return list(seen.values())


def _job_gpus(item: Mapping[str, Any], running: bool, node_count: int | None) -> int | None:
    if running:
        got = tres_gpus(_str(item.get("tres_alloc_str")))
        if got is not None:
            return got
        detail = item.get("gres_detail")
        if isinstance(detail, list) and detail:
            return sum(gres_gpus(d) or 0 for d in detail if isinstance(d, str))
    got = tres_gpus(_str(item.get("tres_req_str")))
    if got is not None:
        return got
    per_job = _per_gpus(_str(item.get("tres_per_job")))
    if per_job is not None:
        return per_job
    per_node = _per_gpus(_str(item.get("tres_per_node")))
    if per_node is not None:
        return per_node * (node_count or 1)
    return 0 if any(k in item for k in ("tres_req_str", "tres_per_node")) else None


def job_from_json(item: Any) -> SlurmJob:
    if not isinstance(item, dict):
        raise ParseError("a job that is not an object")
    job_id = _int(item.get("job_id"))
    if job_id is None:
        raise ParseError("a job without a job_id")
    state_raw = item.get("job_state")
    if isinstance(state_raw, list):
        state = next((s for s in state_raw if isinstance(s, str)), "UNKNOWN").upper()
    elif isinstance(state_raw, str) and state_raw:
        state = state_raw.upper()
    else:
        state = "UNKNOWN"
    task = _int(item.get("array_task_id"))
    array = _int(item.get("array_job_id"))
    shown = f"{array}_{task}" if array and task is not None else str(job_id)
    nodes = _str(item.get("nodes"))
    count = _int(item.get("node_count"))
    return SlurmJob(
        job_id=shown,
        name=_str(item.get("name")) or "",
        user=_str(item.get("user_name")),
        state=state,
        reason=_str(item.get("state_reason")),
        partition=_str(item.get("partition")),
        nodes=nodes,
        node_count=count,
        gpus=_job_gpus(item, state in ("RUNNING", "COMPLETING", "SUSPENDED"), count),
        submit_time=_time(item.get("submit_time")),
        start_time=_time(item.get("start_time")) if state != "PENDING" else None,
    )


def parse_jobs_json(text: str | bytes) -> list[SlurmJob]:
    """``squeue --json`` or slurmrestd ``/jobs``."""
    _doc, items = load_document(text, "jobs")
    return [job_from_json(item) for item in items]


# --------------------------------------------------------------------------- text


def _table(text: str, sep: str) -> list[dict[str, str]]:
    """Rows of a separated table with a header line (upper-cased keys, cells stripped)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    header = [h.strip().upper() for h in lines[0].split(sep)]
    if len(header) < 2 or not all(header[:2]):
        raise ParseError(f"no {sep!r}-separated header line: {lines[0][:80]!r}")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        cells = [c.strip() for c in line.split(sep)]
        if len(cells) < len(header) - 1:
            raise ParseError(f"line {number}: {len(cells)} fields, the header has {len(header)}")
        rows.append({h: cells[i] for i, h in enumerate(header) if h and i < len(cells)})
    return rows


def _first(row: Mapping[str, str], *keys: str) -> str | None:
    for key in keys:
        if key in row:
            return row[key]
    return None


def parse_sinfo_text(text: str) -> list[SlurmNode]:
    """``sinfo -N -o SINFO_TEXT`` (or any pipe-separated sinfo output with a header)."""
    nodes: dict[str, SlurmNode] = {}
    parts: dict[str, list[str]] = {}
    for row in _table(text, "|"):
        name = _first(row, "NODELIST", "HOSTNAMES", "NODE_NAME")
        if not name:
            raise ParseError("a sinfo line without a node name")
        base, flags = split_state(_first(row, "STATE"))
        part = (_first(row, "PARTITION") or "").rstrip("*")
        if part:
            parts.setdefault(name, []).append(part)
        if name in nodes:
            continue
        cpus = _first(row, "CPUS(A/I/O/T)")
        a_i_o_t = cpus.split("/") if cpus else []
        reason = _first(row, "REASON")
        nodes[name] = SlurmNode(
            name=name,
            state=base,
            flags=flags,
            reason=_str(reason),
            reason_by=_user(_first(row, "USER")) if _str(reason) else None,
            reason_since=_epoch_text(_first(row, "TIMESTAMP")) if _str(reason) else None,
            gpus_total=gres_gpus(_str(_first(row, "GRES")) or ""),
            gpus_used=gres_gpus(_first(row, "GRES_USED")) if "GRES_USED" in row else None,
            cpus=int(a_i_o_t[3]) if len(a_i_o_t) == 4 and a_i_o_t[3].isdigit() else None,
            alloc_cpus=int(a_i_o_t[0]) if len(a_i_o_t) == 4 and a_i_o_t[0].isdigit() else None,
        )
    return [
        SlurmNode(**{**_fields(n), "partitions": tuple(dict.fromkeys(parts.get(n.name, [])))})
        for n in nodes.values()
    ]


def _user(text: str | None) -> str | None:
    """``root(0)`` -> ``root``."""
    name = _str(text)
    return name.split("(", 1)[0] or None if name else None


def _fields(node: SlurmNode) -> dict[str, Any]:
    return {f: getattr(node, f) for f in SlurmNode.__slots__}


def parse_squeue_text(text: str) -> list[SlurmJob]:
    """``squeue -o SQUEUE_TEXT`` (with its header line)."""
    jobs = []
    for row in _table(text, "|"):
        job_id = _first(row, "JOBID")
        if not job_id:
            raise ParseError("a squeue line without a JOBID")
        state = (_first(row, "STATE") or "UNKNOWN").upper()
        count_text = _first(row, "NODES") or ""
        count = int(count_text) if count_text.isdigit() else None
        per_node = _per_gpus(_str(_first(row, "TRES_PER_NODE", "GRES")))
        reason = _str(_first(row, "REASON"))
        jobs.append(
            SlurmJob(
                job_id=job_id,
                name=_first(row, "NAME") or "",
                user=_str(_first(row, "USER")),
                state=state,
                reason=reason,
                partition=_str(_first(row, "PARTITION")),
                nodes=_str(_first(row, "NODELIST")),
                node_count=count,
                gpus=per_node * (count or 1) if per_node is not None else 0,
                submit_time=_epoch_text(_first(row, "SUBMIT_TIME")),
                start_time=_epoch_text(_first(row, "START_TIME")) if state != "PENDING" else None,
            )
        )
    return jobs


def parse_key_values(text: str) -> list[dict[str, str]]:
    """``scontrol show partition -o`` / ``scontrol show job``: one dict per record.

    Records are separated by blank lines (or are one per line with ``-o``);
    values run to the next ``Key=`` (so ``Nodes=a,b TRES=cpu=1,gres/gpu=8`` splits right).
    """
    records: list[dict[str, str]] = []
    block: list[str] = []
    oneline = all(ln.startswith(("PartitionName=", "JobId=", "NodeName=")) for ln in
                  (x for x in text.splitlines() if x.strip()))  # fmt: skip
    for line in [*text.splitlines(), ""]:
        if not line.strip() or (oneline and block):
            if block:
                records.append(_kv(" ".join(block)))
                block = []
            if line.strip():
                block.append(line)
            continue
        block.append(line)
    return records


_KEY = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_/:]*)=")


def _kv(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    keys = list(_KEY.finditer(text))
    if not keys:
        raise ParseError(f"no Key=Value pairs in {text[:60]!r}")
    for i, m in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(text)
        out.setdefault(m.group(1), text[m.end() : end].strip())
    return out


def parse_partitions_text(text: str) -> list[Partition]:
    """``scontrol show partition -o``."""
    out = []
    for rec in parse_key_values(text):
        name = rec.get("PartitionName")
        if not name:
            raise ParseError("a partition record without PartitionName")
        total = rec.get("TotalNodes", "")
        out.append(
            Partition(
                name=name,
                state=_str(rec.get("State")),
                nodes=_str(rec.get("Nodes")),
                total_nodes=int(total) if total.isdigit() else None,
                gpus=tres_gpus(rec.get("TRES")) if "TRES" in rec else None,
                default=rec.get("Default") == "YES",
                max_time=_str(rec.get("MaxTime")),
            )
        )
    return out


def parse_scontrol_jobs(text: str) -> list[SlurmJob]:
    """``scontrol show job`` (text; 22.05's scontrol has no ``--json``)."""
    jobs = []
    for rec in parse_key_values(text):
        job_id = rec.get("JobId")
        if not job_id:
            raise ParseError("a job record without JobId")
        array, task = rec.get("ArrayJobId"), rec.get("ArrayTaskId")
        if array and task and task.isdigit():
            job_id = f"{array}_{task}"
        state = (rec.get("JobState") or "UNKNOWN").upper()
        user = rec.get("UserId", "").split("(", 1)[0] or None
        count = rec.get("NumNodes", "").split("-", 1)[0]
        gpus = tres_gpus(rec.get("AllocTRES")) if state == "RUNNING" else None
        if gpus is None:
            gpus = tres_gpus(rec.get("ReqTRES")) or _per_gpus(rec.get("TresPerNode")) or 0
        jobs.append(
            SlurmJob(
                job_id=job_id,
                name=rec.get("JobName", ""),
                user=user,
                state=state,
                reason=_str(rec.get("Reason")),
                partition=_str(rec.get("Partition")),
                nodes=_str(rec.get("NodeList")),
                node_count=int(count) if count.isdigit() else None,
                gpus=gpus,
                submit_time=_epoch_text(rec.get("SubmitTime")),
                start_time=_epoch_text(rec.get("StartTime")) if state != "PENDING" else None,
            )
        )
    return jobs


# --------------------------------------------------------------------------- either


def parse_nodes(text: str) -> list[SlurmNode]:
    """JSON when it looks like JSON, else the text fallback."""
    return parse_nodes_json(text) if text.lstrip().startswith("{") else parse_sinfo_text(text)


def parse_jobs(text: str) -> list[SlurmJob]:
    return parse_jobs_json(text) if text.lstrip().startswith("{") else parse_squeue_text(text)


def expand_nodes(nodelist: str | None) -> list[str]:
    """``gpu[01-03],cpu1`` -> names (ClusterShell's node sets); garbage -> ParseError."""
    if not nodelist:
        return []
    from ClusterShell.NodeSet import NodeSet, NodeSetException

    try:
        return list(NodeSet(nodelist))
    except (NodeSetException, ValueError, IndexError, TypeError) as exc:
        raise ParseError(f"bad node list {nodelist[:80]!r}: {exc}") from None


def jobs_by_node(jobs: Sequence[SlurmJob]) -> dict[str, list[SlurmJob]]:
    """Running (or completing/suspended) jobs on each node."""
    out: dict[str, list[SlurmJob]] = {}
    for job in jobs:
        if job.state not in ("RUNNING", "COMPLETING", "SUSPENDED", "CONFIGURING", "STOPPED"):
            continue
        for name in expand_nodes(job.nodes):
            out.setdefault(name, []).append(job)
    return out
