"""Slurm's JSON: ``sinfo``/``squeue``/``scontrol --json`` and slurmrestd.

JSON comes in the data_parser schemas of Slurm 21.08 (``openapi/v0.0.37``)
to 25.05 (``data_parser/v0.0.43``): node ``state`` is a lowercase string with
a separate ``state_flags`` list up to 22.05 and a list of uppercase words from
23.02; numbers are plain or ``{"set", "infinite", "number"}`` objects from
23.02. A version this module does not know is refused (``ParseError``) rather
than guessed at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from console.plugin import ParseError
from plugins.slurm.model import (
    SlurmJob,
    SlurmNode,
    gres_gpus,
    per_gpus,
    slurm_int,
    slurm_str,
    slurm_time,
    split_state,
    tres_gpus,
)

KNOWN_PARSERS = ("v0.0.37", "v0.0.38", "v0.0.39", "v0.0.40", "v0.0.41", "v0.0.42", "v0.0.43")
"""data_parser / openapi versions whose shapes this module was written against."""


@dataclass(frozen=True, slots=True)
class Document:
    """What a JSON document said about itself."""

    version: str
    release: str | None


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
    release = slurm_str(slurm.get("release")) if isinstance(slurm, dict) else None
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
        total = tres_gpus(slurm_str(item.get("tres"))) or total
    used_gres = item.get("gres_used") if isinstance(item.get("gres_used"), str) else None
    used = gres_gpus(used_gres) if used_gres else None
    if used is None:
        used = tres_gpus(slurm_str(item.get("tres_used")))
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
        reason=slurm_str(item.get("reason")),
        reason_by=slurm_str(item.get("reason_set_by_user")),
        reason_since=slurm_time(item.get("reason_changed_at")),
        partitions=tuple(p for p in parts if isinstance(p, str)) if isinstance(parts, list) else (),
        gpus_total=total,
        gpus_used=used,
        cpus=slurm_int(item.get("cpus")),
        alloc_cpus=slurm_int(item.get("alloc_cpus")),
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
        got = tres_gpus(slurm_str(item.get("tres_alloc_str")))
        if got is not None:
            return got
        detail = item.get("gres_detail")
        if isinstance(detail, list) and detail:
            return sum(gres_gpus(d) or 0 for d in detail if isinstance(d, str))
    got = tres_gpus(slurm_str(item.get("tres_req_str")))
    if got is not None:
        return got
    per_job = per_gpus(slurm_str(item.get("tres_per_job")))
    if per_job is not None:
        return per_job
    per_node = per_gpus(slurm_str(item.get("tres_per_node")))
    if per_node is not None:
        return per_node * (node_count or 1)
    return 0 if any(k in item for k in ("tres_req_str", "tres_per_node")) else None


def job_from_json(item: Any) -> SlurmJob:
    if not isinstance(item, dict):
        raise ParseError("a job that is not an object")
    job_id = slurm_int(item.get("job_id"))
    if job_id is None:
        raise ParseError("a job without a job_id")
    state_raw = item.get("job_state")
    if isinstance(state_raw, list):
        state = next((s for s in state_raw if isinstance(s, str)), "UNKNOWN").upper()
    elif isinstance(state_raw, str) and state_raw:
        state = state_raw.upper()
    else:
        state = "UNKNOWN"
    task = slurm_int(item.get("array_task_id"))
    array = slurm_int(item.get("array_job_id"))
    shown = f"{array}_{task}" if array and task is not None else str(job_id)
    nodes = slurm_str(item.get("nodes"))
    count = slurm_int(item.get("node_count"))
    return SlurmJob(
        job_id=shown,
        name=slurm_str(item.get("name")) or "",
        user=slurm_str(item.get("user_name")),
        state=state,
        reason=slurm_str(item.get("state_reason")),
        partition=slurm_str(item.get("partition")),
        nodes=nodes,
        node_count=count,
        gpus=_job_gpus(item, state in ("RUNNING", "COMPLETING", "SUSPENDED"), count),
        submit_time=slurm_time(item.get("submit_time")),
        start_time=slurm_time(item.get("start_time")) if state != "PENDING" else None,
    )


def parse_jobs_json(text: str | bytes) -> list[SlurmJob]:
    """``squeue --json`` or slurmrestd ``/jobs``."""
    _doc, items = load_document(text, "jobs")
    return [job_from_json(item) for item in items]
