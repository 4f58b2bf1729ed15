"""The Slurm command lines the lab's controller answers, with real messages and exits.

A small shell: ``;``-separated commands, ``a || b``, ``2>/dev/null`` and
``echo``; then ``sinfo``, ``squeue``, ``scontrol`` and ``scancel`` as the
plugin (and an operator) uses them. Output formats are Slurm 22.05's.
"""

from __future__ import annotations

import shlex
import time
from typing import TYPE_CHECKING

from console.plugin import CommandReply
from plugins.slurm.parse_text import SINFO_TEXT, SQUEUE_TEXT

if TYPE_CHECKING:  # pragma: no cover
    from plugins.slurm.lab import SimCluster, SimJob, SlurmLab

NO_CONTROLLER = "slurm_load_{what}: Unable to contact slurm controller (connect failure)\n"


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) if t else "Unknown"


def run_line(lab: SlurmLab, cluster: SimCluster, host: str, line: str, now: float) -> CommandReply:
    """Run a command line; stdout of all parts, stderr unless redirected, last exit status."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";|&>")
    lexer.whitespace_split = True
    tokens = list(lexer)
    out, err, status = [], [], 0
    for statement in _split(tokens, ";"):
        for i, alternative in enumerate(_split(statement, "||")):
            words, quiet = _redirects(alternative)
            o, e, status = _one(lab, cluster, host, words, now)
            out.append(o)
            if not quiet:
                err.append(e)
            if status == 0:
                break
            del i
    return CommandReply(stdout="".join(out), stderr="".join(err), exit_status=status)


def _split(tokens: list[str], sep: str) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for tok in tokens:
        if tok == sep:
            parts.append([])
        else:
            parts[-1].append(tok)
    return [p for p in parts if p]


def _redirects(words: list[str]) -> tuple[list[str], bool]:
    """Drop ``2>/dev/null`` (and ``>/dev/null``); True when stderr was discarded."""
    kept, quiet, i = [], False, 0
    while i < len(words):
        if (
            words[i] == "2"
            and i + 2 < len(words) + 1
            and i + 1 < len(words)
            and words[i + 1] == ">"
        ):
            quiet, i = True, i + 3
        elif words[i] == ">":
            i += 2
        else:
            kept.append(words[i])
            i += 1
    return kept, quiet


def _one(
    lab: SlurmLab, cluster: SimCluster, host: str, words: list[str], now: float
) -> tuple[str, str, int]:
    if not words:
        return "", "", 0
    cmd, args = words[0], words[1:]
    if cmd == "echo":
        return " ".join(args) + "\n", "", 0
    if cmd not in ("sinfo", "squeue", "scontrol", "scancel"):
        return "", f"bash: {cmd}: command not found\n", 127
    if cmd == "scontrol" and args[:1] == ["ping"]:
        text, status = lab.ping_text(cluster)
        return text, "", status
    if lab.controller_down(cluster):
        what = {"sinfo": "node", "squeue": "jobs", "scontrol": "partitions"}.get(cmd, "jobs")
        return "", NO_CONTROLLER.format(what=what), 1
    if cmd == "sinfo":
        if "--json" in args:
            return lab.sinfo_json(cluster), "", 0
        return _sinfo_text(lab, cluster), "", 0
    if cmd == "squeue":
        if "--json" in args:
            return lab.squeue_json(cluster), "", 0
        wanted = _opt(args, "-j")
        return _squeue_text(cluster, wanted), "", 0
    if cmd == "scancel":
        return _job_op(lab, cluster, host, "cancel", args, now)
    return _scontrol(lab, cluster, host, args, now)


def _opt(args: list[str], name: str) -> str | None:
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def _sinfo_text(lab: SlurmLab, cluster: SimCluster) -> str:
    lines = ["NODELIST|STATE|PARTITION|GRES|REASON|USER|TIMESTAMP|CPUS(A/I/O/T)"]
    assert SINFO_TEXT.count("|") == 7
    for node in cluster.nodes.values():
        data = lab.node_json(cluster, node)
        state = data["state"] if data["state"] != "allocated" else "allocated"
        if node.drain:
            state = "draining" if data["state"] in ("allocated", "mixed") else "drained"
        if node.down:
            state = "down*"
        a, t = data["alloc_cpus"], data["cpus"]
        for part in node.partitions:
            lines.append(
                "|".join(
                    (
                        node.name,
                        state,
                        part,
                        data["gres"] or "(null)",
                        node.reason or "none",
                        node.reason_by or "Unknown",
                        _stamp(node.reason_since),
                        f"{a}/{t - a}/0/{t}",
                    )
                )
            )
    return "\n".join(lines) + "\n"


def _squeue_text(cluster: SimCluster, wanted: str | None) -> str:
    lines = [
        "JOBID|NAME|USER|STATE|PARTITION|NODES|TRES_PER_NODE|SUBMIT_TIME|START_TIME|REASON|NODELIST"
    ]
    assert SQUEUE_TEXT.count("|") == 10
    for job in sorted(cluster.jobs.values(), key=lambda j: j.job_id):
        if wanted is not None and str(job.job_id) != wanted:
            continue
        tres = f"gres:gpu:{job.gpus_per_node}" if job.gpus_per_node else "N/A"
        reason = job.reason if job.state == "PENDING" else "None"
        lines.append(
            "|".join(
                (
                    str(job.job_id),
                    job.name,
                    job.user,
                    job.state,
                    job.partition,
                    str(job.node_count),
                    tres,
                    _stamp(job.submit),
                    _stamp(job.start) if job.start else "N/A",
                    reason,
                    ",".join(job.nodes),
                )
            )
        )
    return "\n".join(lines) + "\n"


def _partitions(cluster: SimCluster) -> str:
    parts: dict[str, list[str]] = {}
    for node in cluster.nodes.values():
        for p in node.partitions:
            parts.setdefault(p, []).append(node.name)
    lines = []
    for i, (name, nodes) in enumerate(sorted(parts.items())):
        gpus = sum(cluster.nodes[n].gpus for n in nodes)
        tres = f"cpu={64 * len(nodes)},node={len(nodes)}" + (f",gres/gpu={gpus}" if gpus else "")
        lines.append(
            f"PartitionName={name} AllowGroups=ALL Default={'YES' if i == 0 else 'NO'} "
            f"MaxTime=UNLIMITED Nodes={','.join(nodes)} State=UP TotalNodes={len(nodes)} "
            f"TRES={tres}"
        )
    return "\n".join(lines) + "\n"


def _scontrol(
    lab: SlurmLab, cluster: SimCluster, host: str, args: list[str], now: float
) -> tuple[str, str, int]:
    if args[:2] == ["show", "partition"]:
        return _partitions(cluster), "", 0
    if args and args[0] in ("hold", "release", "requeue", "uhold"):
        return _job_op(lab, cluster, host, args[0], args[1:], now)
    if args and args[0] == "update":
        kv = dict(a.split("=", 1) for a in args[1:] if "=" in a)
        kv = {k.lower(): v for k, v in kv.items()}
        node = cluster.nodes.get(kv.get("nodename", ""))
        if node is None:
            return "", "slurm_update error: Invalid node name specified\n", 1
        state = kv.get("state", "").lower()
        lab.commands.append((host, " ".join(["scontrol", *args])))
        if state == "drain":
            if not kv.get("reason"):
                return (
                    "",
                    "You must specify a reason when DOWNING or DRAINING a node. Request denied\n",
                    1,
                )
            node.drain = True
            lab.set_reason(node, kv["reason"], "root", now)
        elif state == "resume":
            if not (node.drain or node.down or node.reboot_next):
                return "", "slurm_update error: Invalid node state specified\n", 1
            node.drain, node.reboot_next = False, None
            if not node.down or (node.reason == "Not responding" and lab.host_alive(node.name)):
                node.down = False
            lab.set_reason(node, "", None, now)
        else:
            return "", "slurm_update error: Invalid node state specified\n", 1
        return "", "", 0
    if args and args[0] == "reboot":
        rest = args[1:]
        kv = {a.split("=", 1)[0].lower(): a.split("=", 1)[1] for a in rest if "=" in a}
        names = [a for a in rest if "=" not in a and a.upper() != "ASAP"]
        if not names or any(n not in cluster.nodes for n in names):
            return "", "scontrol_reboot_nodes error: Invalid node name specified\n", 1
        lab.commands.append((host, " ".join(["scontrol", *args])))
        for name in names:
            node = cluster.nodes[name]
            node.reboot_next = kv.get("nextstate", "resume").lower()
            node.drain = True
            lab.set_reason(node, kv.get("reason", "Reboot ASAP"), "root", now)
        return "", "", 0
    return "", f"scontrol: invalid entity: {' '.join(args[:1])} for keyword:\n", 1


def _job(cluster: SimCluster, text: str) -> SimJob | None:
    return cluster.jobs.get(int(text)) if text.isdigit() else None


def _job_op(
    lab: SlurmLab, cluster: SimCluster, host: str, op: str, args: list[str], now: float
) -> tuple[str, str, int]:
    ids = [a for a in args if not a.startswith("-")]
    if not ids:
        return "", f"{op}: no job id given\n", 1
    job = _job(cluster, ids[0])
    if job is None or job.state in ("COMPLETED", "CANCELLED"):
        if op == "cancel":
            return (
                "",
                f"scancel: error: Kill job error on job id {ids[0]}: Invalid job id specified\n",
                1,
            )
        return "", f"Invalid job id specified for job {ids[0]}\n", 1
    lab.commands.append((host, f"{op} {ids[0]}"))
    if op == "cancel":
        job.state, job.ended, job.nodes = "CANCELLED", now, []
    elif op in ("hold", "uhold"):
        if job.state != "PENDING":
            return "", f"Job is no longer pending execution for job {ids[0]}\n", 1
        job.held, job.reason = True, "JobHeldAdmin" if op == "hold" else "JobHeldUser"
    elif op == "release":
        job.held, job.reason = False, "Priority"
    elif op == "requeue":
        if job.state != "RUNNING":
            return "", f"Job is pending execution for job {ids[0]}\n", 1
        job.state, job.reason, job.nodes, job.start = "PENDING", "BeginTime", [], 0
    return "", "", 0
