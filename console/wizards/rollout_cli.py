"""``dcc rollout plan FILE [--inventory INV] [--json]``: the plan for a change ticket
(``run``, ``resume`` and ``status`` are in ``rollout_cli_run``).

Prints the waves, the per-node steps, the checks, the caps and the gate of a
rollout, with the plan hash the executor will insist on. Runs nothing, opens
no connection.

Exit status: 0 the plan is printed; 1 the plan is refused (no target, too many,
unknown check or action ...); 2 a file cannot be read or is not valid. Problems
go to stderr as ``file:line: field: message (hint: ...)``, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from console.inventory import Inventory, InventoryError, apply_plugin_configs, load_inventory
from console.plugin import CheckSpec
from console.sanitize import clean
from console.wizards.drill_env import known_targets
from console.wizards.rollout_model import CheckRef, check_label, check_references, load_rollout
from console.wizards.rollout_plan import Plan, plan_rollout

log = logging.getLogger(__name__)

DEMO_INVENTORY = Path(__file__).resolve().parents[2] / "inventory" / "demo.yaml"

EXIT_OK, EXIT_REFUSED, EXIT_INVALID = 0, 1, 2


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``rollout`` (and its ``plan`` sub-command) to ``subparsers``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "rollout",
        help="phased rollouts of a change across the fleet",
        description="Phased rollouts: plan the waves of a declared change (inventory/rollouts/).",
    )
    sub = parser.add_subparsers(dest="rollout_command", metavar="SUBCOMMAND")
    plan = sub.add_parser(
        "plan",
        help="print the waves and checks of a rollout file; runs nothing",
        description="Resolve the targets, cut the waves along failure domains and print the "
        "plan (for a change ticket). Exit 0 printed, 1 refused, 2 invalid file.",
    )
    plan.add_argument("file", metavar="FILE", type=Path, help="the rollout YAML file")
    plan.add_argument(
        "--inventory",
        "-i",
        type=Path,
        default=argparse.SUPPRESS,  # keep `dcc -i INV rollout plan F` working too
        help="the site's inventory (default: the demo's, inventory/demo.yaml)",
    )
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    from console.wizards.rollout_cli_run import register_run

    register_run(sub)
    parser.set_defaults(command="rollout", _rollout_parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``dcc rollout ...``; returns the exit status."""
    command = getattr(args, "rollout_command", None)
    if command in ("run", "resume", "status"):
        from console.wizards.rollout_cli_run import run_command

        return run_command(args)
    if command != "plan":
        parser = getattr(args, "_rollout_parser", None)
        if parser is not None:
            parser.print_usage(sys.stderr)
        print(
            "dcc rollout: say what to do: plan FILE | run FILE | resume ID | status [ID]",
            file=sys.stderr,
        )
        return EXIT_INVALID
    try:
        return _plan(args)
    except Exception as exc:  # a bug must still not show the operator a traceback
        log.exception("dcc rollout plan failed")
        print(f"dcc rollout: internal error: {exc!r}", file=sys.stderr)
        return EXIT_INVALID


def _problems(exc: InventoryError) -> None:
    for problem in exc.problems:
        print(problem, file=sys.stderr)


def _plan(args: argparse.Namespace) -> int:
    from console.registry import discover

    inventory_path: Path = getattr(args, "inventory", None) or DEMO_INVENTORY
    try:
        rollout = load_rollout(args.file)
    except InventoryError as exc:
        _problems(exc)
        return EXIT_INVALID
    try:
        inventory = load_inventory(inventory_path)
    except InventoryError as exc:
        print("dcc rollout: the inventory is not valid:", file=sys.stderr)
        _problems(exc)
        return EXIT_INVALID
    registry = discover()
    checks = registry.checks()
    try:
        configured = apply_plugin_configs(
            inventory, {p.name: p.config_model for p in registry.plugins}
        )
    except InventoryError as exc:
        print("dcc rollout: the inventory is not valid:", file=sys.stderr)
        _problems(exc)
        return EXIT_INVALID
    targets = known_targets(registry.plugins, configured)  # from the inventory: no I/O
    problems = check_references(rollout, checks, registry.actions(), targets)
    if problems:
        _problems(InventoryError(problems))
        print(f"the plan is refused: {len(problems)} problem(s)", file=sys.stderr)
        return EXIT_REFUSED
    try:
        plan = plan_rollout(rollout, inventory)
    except InventoryError as exc:
        _problems(exc)
        print("the plan is refused", file=sys.stderr)
        return EXIT_REFUSED
    if args.json:
        print(json.dumps(plan_as_data(plan, inventory), indent=2))
    else:
        print("\n".join(render_plan(plan, inventory, checks)))
    return EXIT_OK


def plan_as_data(plan: Plan, inventory: Inventory) -> dict[str, Any]:
    """The plan as plain data (for tickets and tools)."""
    return {
        "name": plan.name,
        "plan_hash": plan.plan_hash,
        "inventory": inventory.label,
        "rollout": plan.rollout.doc.model_dump(mode="json"),
        "waves": [
            {"label": w.label, "canary": w.canary, "nodes": list(w.nodes)} for w in plan.waves
        ],
        "targets": [t.as_dict() for t in plan.targets],
        "pool_allowance": dict(plan.pool_allowance),
        "pool_sizes": {p: plan.pool_sizes[p] for p in plan.pool_allowance},
        "warnings": list(plan.warnings),
    }


def _drain_text(plan: Plan) -> str:
    doc = plan.rollout.doc
    if not doc.drain.enabled:
        return "no drain (drain.enabled is false)"
    slurm = sorted({t.slurm for t in plan.targets if t.slurm})
    k8s = sorted({t.kubernetes for t in plan.targets if t.kubernetes})
    how = [f"slurm {', '.join(slurm)} (scontrol drain)"] if slurm else []
    how += [f"kubernetes {', '.join(k8s)} (cordon, then evict)"] if k8s else []
    reason = doc.drain.reason.replace("{name}", doc.name)
    where = "; ".join(how) if how else "no scheduler on these nodes"
    return f"drain via {where}, reason {reason!r}, wait for jobs up to {doc.drain.wait_jobs_s:g}s"


def _checks_text(refs: Sequence[CheckRef], checks: Mapping[str, CheckSpec]) -> list[str]:
    if not refs:
        return ["    (none)"]
    out = []
    for ref in refs:
        check_id = ref if isinstance(ref, str) else ref.check
        label = checks[check_id].label if check_id in checks else ""
        where = "" if isinstance(ref, str) else f" (on {ref.target}, site-level)"
        out.append(f"    {check_label(ref):<24} {label}{where}")
    return out


def render_plan(plan: Plan, inventory: Inventory, checks: Mapping[str, CheckSpec]) -> list[str]:
    """The plan as text lines for review."""
    doc = plan.rollout.doc
    caps, gate = doc.caps, doc.gate
    nodes = len(plan.targets)
    lines = [
        f'Rollout "{clean(doc.name)}"'
        + (f" - {clean(doc.description)}" if doc.description else ""),
        f"  file       {plan.rollout.label}",
        f"  inventory  {inventory.label} ({inventory.site.name})",
        f"  plan hash  {plan.plan_hash}",
        f"  targets    {clean(doc.targets)}: {nodes} node{'s' if nodes != 1 else ''}, "
        f"{len(plan.waves)} waves (canary + {len(plan.waves) - 1})",
        "",
        "Each node, one wave at a time:",
        f"  1. pre-checks must pass, then {_drain_text(plan)}",
        f"  2. change: {clean(doc.change.describe())} (timeout {doc.change.timeout_s:g}s)",
        f"  3. settle {doc.settle_s:g}s, then post-checks must pass "
        f"within {doc.check_timeout_s:g}s",
        "  4. resume (undrain / uncordon), then resume-checks must pass",
        "  rollback: "
        + (
            clean(doc.rollback.describe()) if doc.rollback else "none declared (retry or skip only)"
        ),
        "",
        "Pre-checks:",
        *_checks_text(doc.pre_checks, checks),
        "Post-checks:",
        *_checks_text(doc.post_checks, checks),
        "Resume-checks (after the node is back in service):",
        *_checks_text(doc.resume_checks, checks),
        "",
        f"Caps per wave: <= {caps.per_rack} per rack, <= {caps.per_ib_leaf} per IB leaf, "
        f"<= {caps.per_partition} per Slurm partition, <= {caps.per_zone} per K8s zone, "
        f"<= {caps.max_pool_pct:g}% of any pool, <= {caps.max_wave} nodes",
        f"Gate: halt when failed > {gate.max_fail_pct:g}% (of the wave, or of all done so far)"
        + ("; re-check changed nodes" if gate.check_changed else "")
        + ("; operator approval before each wave" if gate.approval else ""),
        *(
            [f"Approval: a second operator must approve the start ({why})"]
            if (why := doc.needs_second_operator(nodes))
            else []
        ),
        "Pools: "
        + ", ".join(
            f"{p} {plan.pool_sizes[p]} nodes (<= {n}/wave)"
            for p, n in sorted(plan.pool_allowance.items())
        ),
        "",
        "Waves:",
    ]
    for wave in plan.waves:
        for i, name in enumerate(wave.nodes):
            d = plan.domains(name)
            where = [f"rack {d.rack or '?'}"]
            where += [f"leaf {d.ib_leaf}"] if d.ib_leaf else []
            where += [f"partition {p}" for p in d.partitions]
            where += [f"zone {d.zone}"] if d.zone else []
            head = f"{wave.label:<8}" if i == 0 else " " * 8
            lines.append(f"  {head} {name:<12} {'  '.join(where)}")
    if plan.warnings:
        lines += ["", "Warnings:", *(f"  ! {w}" for w in plan.warnings)]
    lines += ["", "Nothing was run. Executing requires this plan hash to be unchanged."]
    return lines
