"""Slurm's text output: the fallback for clusters whose JSON this plugin cannot read.

``sinfo``/``squeue`` output in the pipe-separated formats ``SINFO_TEXT`` /
``SQUEUE_TEXT`` (with their header line), and ``scontrol show partition -o`` /
``scontrol show job`` key=value text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from console.plugin import ParseError
from plugins.slurm.model import (
    Partition,
    SlurmJob,
    SlurmNode,
    epoch_from_text,
    gres_gpus,
    per_gpus,
    slurm_str,
    split_state,
    tres_gpus,
)

SINFO_TEXT = "%N|%T|%P|%G|%E|%u|%H|%C"
"""``sinfo -N -o`` format of the text fallback: node, long state, partition, gres,
reason, who set it, when, CPUs A/I/O/T (the reason may hold anything but a newline)."""
SQUEUE_TEXT = "%i|%j|%u|%T|%P|%D|%b|%V|%S|%r|%N"
"""``squeue -o`` format of the text fallback (the node list last: it has no pipe)."""


def _table(
    text: str, sep: str, columns: Sequence[str] | None = None, need: str | None = None
) -> list[dict[str, str]]:
    """Rows of a separated table (upper-cased keys, cells stripped).

    The columns come from the header line, or from ``columns`` when the caller
    knows the format it asked for (``--noheader`` output). ``need`` is a column
    the header must name: a first line without it is data, not a header, and
    the columns are then unknown; they are never guessed.
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    if columns is not None:
        header, body, first = [c.strip().upper() for c in columns], lines, 1
    else:
        header = [h.strip().upper() for h in lines[0].split(sep)]
        body, first = lines[1:], 2
        if len(header) < 2 or not all(header[:2]):
            raise ParseError(f"no {sep!r}-separated header line: {lines[0][:80]!r}")
        if need is not None and need not in header:
            raise ParseError(
                f"the first line names no {need} column, so it is data, not a header: "
                f"headerless output (e.g. --noheader, a custom -O/--Format) has unknown "
                f"columns; give its format string: {lines[0][:60]!r}"
            )
    rows = []
    for number, line in enumerate(body, start=first):
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
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if "|" not in first and first.split()[:2] == ["PARTITION", "AVAIL"]:
        raise ParseError(
            "a partition summary (plain sinfo) has no per-node states: "
            "read it with parse_sinfo_summary, or run sinfo -N"
        )
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
            reason=slurm_str(reason),
            reason_by=_user(_first(row, "USER")) if slurm_str(reason) else None,
            reason_since=epoch_from_text(_first(row, "TIMESTAMP")) if slurm_str(reason) else None,
            gpus_total=gres_gpus(slurm_str(_first(row, "GRES")) or ""),
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
    name = slurm_str(text)
    return name.split("(", 1)[0] or None if name else None


def _fields(node: SlurmNode) -> dict[str, Any]:
    return {f: getattr(node, f) for f in SlurmNode.__slots__}


def parse_squeue_text(
    text: str, columns: Sequence[str] | None = None, sep: str = "|"
) -> list[SlurmJob]:
    """``squeue -o SQUEUE_TEXT`` (with its header line), or any separated squeue output.

    Headerless output (``--noheader``) is read only with the ``columns`` of the
    format that produced it (``-o``/``-O`` names, in order); without them it is
    refused, as its columns are unknown.
    """
    jobs = []
    for row in _table(text, sep, columns, need="JOBID"):
        # -O's JOBARRAYID is "81720_4" for an array task (JOBID is the raw id then).
        job_id = _first(row, "JOBARRAYID", "JOBID")
        if not job_id:
            raise ParseError("a squeue line without a JOBID")
        state = (_first(row, "STATE") or "UNKNOWN").upper()
        count_text = _first(row, "NODES", "NUMNODES") or ""
        count = int(count_text) if count_text.isdigit() else None
        per_node = per_gpus(slurm_str(_first(row, "TRES_PER_NODE", "TRES-PER-NODE", "GRES")))
        gpus = per_node * (count or 1) if per_node is not None else 0
        if state in ("RUNNING", "COMPLETING", "SUSPENDED"):
            alloc = tres_gpus(slurm_str(_first(row, "TRES-ALLOC", "TRES_ALLOC")))
            gpus = alloc if alloc is not None else gpus
        reason = slurm_str(_first(row, "REASON"))
        jobs.append(
            SlurmJob(
                job_id=job_id,
                name=_first(row, "NAME") or "",
                user=slurm_str(_first(row, "USER", "USERNAME")),
                state=state,
                reason=reason,
                partition=slurm_str(_first(row, "PARTITION")),
                nodes=slurm_str(_first(row, "NODELIST")),
                node_count=count,
                gpus=gpus,
                submit_time=epoch_from_text(_first(row, "SUBMIT_TIME", "SUBMITTIME")),
                start_time=epoch_from_text(_first(row, "START_TIME", "STARTTIME"))
                if state != "PENDING"
                else None,
            )
        )
    return jobs


def _fold(nodelists: Sequence[str]) -> str:
    """``a[1-2]``, ``a3`` -> ``a[1-3]`` (ClusterShell's node sets); garbage -> ParseError."""
    from ClusterShell.NodeSet import NodeSet, NodeSetException

    try:
        return str(NodeSet(",".join(nodelists)))
    except (NodeSetException, ValueError, IndexError, TypeError) as exc:
        raise ParseError(f"bad node list in {nodelists[0][:80]!r}: {exc}") from None


_SUMMARY_HEADER = ["PARTITION", "AVAIL", "TIMELIMIT", "NODES", "STATE", "NODELIST"]
_TIME_LIMIT = re.compile(
    r"^(?:\d+-)?(?:\d{1,2}:)?\d{1,2}:\d{2}$|^\d+$|^infinite$|^UNLIMITED$", re.I
)


def parse_sinfo_summary(text: str) -> list[Partition]:
    """Plain ``sinfo``: the partition summary (``%#P %.5a %.10l %.6D %.6t %N``, its default).

    One line per (partition, state); a ``*`` marks the default partition. GPUs
    are not in it (None). A time limit cut by the column width (``14-00:00:0``)
    is not a time: None rather than a wrong value.
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    if lines[0].split() != _SUMMARY_HEADER:
        raise ParseError(
            f"not plain sinfo output (header {' '.join(_SUMMARY_HEADER)}): {lines[0][:80]!r}"
        )
    order: list[str] = []
    rows: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split()
        if len(cells) != 6 or not cells[3].isdigit():
            raise ParseError(f"line {number}: not PARTITION AVAIL TIMELIMIT NODES STATE NODELIST")
        name, avail, limit, count, state, nodelist = cells
        key = name.rstrip("*")
        if key not in rows:
            order.append(key)
            rows[key] = {"default": name.endswith("*"), "avail": avail, "limit": limit,
                         "lists": [], "states": {}}  # fmt: skip
        row = rows[key]
        row["lists"].append(nodelist)
        row["states"][state] = row["states"].get(state, 0) + int(count)
    out = []
    for key in order:
        row = rows[key]
        limit = row["limit"]
        out.append(
            Partition(
                name=key,
                state=slurm_str(row["avail"]),
                nodes=_fold(row["lists"]),
                total_nodes=sum(row["states"].values()),
                gpus=None,
                default=row["default"],
                max_time=limit if _TIME_LIMIT.match(limit) else None,
                node_states=tuple(row["states"].items()),
            )
        )
    return out


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
                state=slurm_str(rec.get("State")),
                nodes=slurm_str(rec.get("Nodes")),
                total_nodes=int(total) if total.isdigit() else None,
                gpus=tres_gpus(rec.get("TRES")) if "TRES" in rec else None,
                default=rec.get("Default") == "YES",
                max_time=slurm_str(rec.get("MaxTime")),
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
            gpus = tres_gpus(rec.get("ReqTRES")) or per_gpus(rec.get("TresPerNode")) or 0
        jobs.append(
            SlurmJob(
                job_id=job_id,
                name=rec.get("JobName", ""),
                user=user,
                state=state,
                reason=slurm_str(rec.get("Reason")),
                partition=slurm_str(rec.get("Partition")),
                nodes=slurm_str(rec.get("NodeList")),
                node_count=int(count) if count.isdigit() else None,
                gpus=gpus,
                submit_time=epoch_from_text(rec.get("SubmitTime")),
                start_time=epoch_from_text(rec.get("StartTime")) if state != "PENDING" else None,
            )
        )
    return jobs
