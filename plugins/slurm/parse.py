"""Pure parsers for Slurm output: JSON or text, and the node lists jobs run on.

The JSON parsers are in ``plugins.slurm.parse_json``, the text fallback in
``plugins.slurm.parse_text``, the models they return in ``plugins.slurm.model``;
this module picks one by the output's shape.

Everything raises only ``ParseError``; a value Slurm does not give is None.
"""

from __future__ import annotations

from collections.abc import Sequence

from console.plugin import ParseError
from plugins.slurm.model import SlurmJob, SlurmNode
from plugins.slurm.parse_json import parse_jobs_json, parse_nodes_json
from plugins.slurm.parse_text import parse_sinfo_text, parse_squeue_text


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
