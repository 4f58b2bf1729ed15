"""``dcc runbook``: the on-call runbooks and their runs, without the TUI.

- ``dcc runbook list``: every runbook (built-in by plugin, or the site's), the alerts it
  answers; problems with a file (file:line) go to stderr and make the exit status 1.
- ``dcc runbook show ID``: one runbook's steps, as an operator would follow them.
- ``dcc runbook runs``: recent runs from ``runbooks.db`` beside the audit database.

The site's runbooks are read from ``runbooks/`` beside ``--inventory`` (the demo's:
``inventory/runbooks/``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from console.wizards.runbook_library import Library
    from console.wizards.runbook_model import Runbook, Step


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "runbook", help="on-call runbooks: list, show, recent runs"
    )
    sub = parser.add_subparsers(dest="runbook_command", metavar="SUBCOMMAND")
    sub.add_parser("list", help="every runbook and the alerts it answers")
    show = sub.add_parser("show", help="one runbook's steps")
    show.add_argument("id", metavar="ID")
    runs = sub.add_parser("runs", help="recent runbook runs")
    runs.add_argument(
        "--db", dest="runbooks_db", type=Path, default=None,
        help="runbook database (default: runbooks.db beside the audit database)",
    )  # fmt: skip
    parser.set_defaults(command="runbook", runbook_command=None)
    return parser


def run(args: argparse.Namespace) -> int:
    command = getattr(args, "runbook_command", None)
    if command == "list":
        return _list(args)
    if command == "show":
        return _show(args)
    if command == "runs":
        return _runs(args)
    print("dcc runbook: say list, show ID or runs", file=sys.stderr)
    return 2


def library(args: argparse.Namespace) -> Library:
    from console.registry import discover
    from console.wizards.runbook_library import load_library, site_runbook_dir

    reg = discover()
    inventory = getattr(args, "inventory", None)
    site = site_runbook_dir(Path(inventory).expanduser() if inventory else None)
    return load_library(reg.plugins, site, checks=reg.checks(), actions=reg.actions())


def _problems(lib: Library) -> int:
    for problem in lib.problems:
        print(problem, file=sys.stderr)
    return 1 if lib.problems else 0


def _list(args: argparse.Namespace) -> int:
    lib = library(args)
    for entry in lib.all():
        rb = entry.runbook
        answers = ", ".join(m.key + (f" /{m.message}/" if m.message else "") for m in rb.answers)
        origin = entry.origin + (" (overrides a built-in)" if entry.replaces else "")
        print(f"{rb.id:<24} {rb.target_kind:<8} {len(rb.steps):>2} steps  {origin:<10} {rb.title}")
        if answers:
            print(f"{'':<24} answers {answers}")
    if not lib.entries:
        print("no runbooks")
    return _problems(lib)


def step_line(i: int, step: Step) -> str:
    """``3. action slurm.drain (if slurm; two-person) — Drain the node in Slurm``."""
    what = {
        "check": f"check {step.check}" + (" expects the problem" if step.expect == "fail" else ""),
        "action": f"action {step.action}",
        "note": "note" + (" (answer recorded)" if step.answer else ""),
        "approval": "approval by a second operator",
    }[step.kind]
    flags = [f"if {step.if_cluster}"] if step.if_cluster else []
    if step.two_person:
        flags.append("two-person")
    if step.kind == "check":
        flags.append(
            f"within {step.timeout_s:g}s" + (f", holds {step.hold_s:g}s" if step.hold_s else "")
        )
    if step.target:
        flags.append(f"on {step.target}")
    extra = f" ({'; '.join(flags)})" if flags else ""
    return f"{i:>2}. {step.id:<14} {what}{extra} — {step.label}"


def describe(rb: Runbook) -> list[str]:
    lines = [f"{rb.title}  [{rb.id}] on a {rb.target_kind}"]
    if rb.description:
        lines.append(rb.description)
    for m in rb.answers:
        lines.append(f"answers: {m.key}" + (f" matching /{m.message}/" if m.message else ""))
    lines.append("")
    for i, step in enumerate(rb.steps, 1):
        lines.append(step_line(i, step))
        text = step.note or step.approval
        if text:
            lines.extend(f"      {t}" for t in text.strip().splitlines())
        if step.inputs:
            lines.append(f"      inputs: {step.inputs}")
    return lines


def _show(args: argparse.Namespace) -> int:
    lib = library(args)
    entry = lib.get(args.id)
    if entry is None:
        known = ", ".join(e.runbook.id for e in lib.all()) or "none"
        print(f"dcc runbook: no runbook {args.id!r} (known: {known})", file=sys.stderr)
        return 1
    print("\n".join(describe(entry.runbook)))
    print(f"\nfrom {entry.source}" + (f" (overrides {entry.replaces})" if entry.replaces else ""))
    return 0


def _runs(args: argparse.Namespace) -> int:
    from console.audit_model import default_audit_db
    from console.wizards.runbook_state import RunbookState

    if args.runbooks_db:
        db = Path(args.runbooks_db).expanduser()
    else:
        audit = getattr(args, "audit_db", None)
        db = (Path(audit).expanduser() if audit else default_audit_db()).with_name("runbooks.db")
    if not db.exists():
        print(f"no runbook runs yet ({db})")
        return 0
    state = RunbookState(db)
    try:
        rows = state.recent()
    finally:
        state.close()
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created))
        inc = f" incident #{r.incident_id}" if r.incident_id is not None else ""
        why = f": {r.reason}" if r.reason else ""
        print(
            f"{r.id}  {r.status:<8} {when}  {r.operator:<10} {r.runbook_id} on {r.target}{inc}{why}"
        )
    if not rows:
        print(f"no runbook runs yet ({db})")
    return 0
