"""``dcc drill``: run a drill, drill history and reports, and the catalogue, without the TUI.

- ``dcc drill run SCENARIO [--confirm NAME] [--json]``: run one (drill_cli_run).
- ``dcc drill list``: past drills, newest first (id, result, RTO measured/target).
- ``dcc drill report ID --format md|json`` (or ``show ID``): one report, for the DR review.
- ``dcc drill scenarios [FILE]``: the catalogue (checked: file:line problems, exit 1).

Reports are read from ``drills.db`` beside the audit database (``dcc --audit-db``,
the inventory's ``audit.db``, or ``--db``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "drill", help="failover drills: run one, history, reports, catalogue"
    )
    sub = parser.add_subparsers(dest="drill_command", metavar="SUBCOMMAND")
    from console.wizards.drill_cli_run import register_run

    register_run(sub)
    lst = sub.add_parser("list", help="past drills, newest first")
    rep = sub.add_parser("report", aliases=["show"], help="one drill's report")
    for p in (lst, rep):
        p.add_argument(
            "--db",
            dest="drills_db",
            type=Path,
            default=None,
            help="drill database (default: drills.db beside the audit database)",
        )
    rep.add_argument("id", metavar="ID")
    rep.add_argument("--format", choices=("md", "json"), default="md", dest="format")
    sc = sub.add_parser("scenarios", help="the drill catalogue (validated)")
    sc.add_argument("file", metavar="FILE", nargs="?", type=Path, default=None)
    parser.set_defaults(command="drill", drill_command=None)
    return parser


def _db(args: argparse.Namespace) -> Path:
    from console.audit_model import default_audit_db
    from console.wizards.drill_report import default_drill_db

    if getattr(args, "drills_db", None):
        return Path(args.drills_db).expanduser()
    if getattr(args, "inventory", None) is not None:  # the site's audit.db, as `drill run` uses
        from console.wizards.rollout_cli_run import audit_path

        return default_drill_db(audit_path(args))
    audit = getattr(args, "audit_db", None)
    return default_drill_db(Path(audit).expanduser() if audit else default_audit_db())


def run(args: argparse.Namespace) -> int:
    from console.inventory.problems import InventoryError

    command = getattr(args, "drill_command", None)
    if command == "run":
        from console.wizards.drill_cli_run import run_command

        return run_command(args)
    try:
        if command == "list":
            return _list(args)
        if command in ("report", "show"):
            return _report(args)
        if command == "scenarios":
            return _scenarios(args)
    except FileNotFoundError as exc:
        print(f"dcc drill: {exc}", file=sys.stderr)
        return 1
    except InventoryError as exc:  # --inventory names a bad file
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    print("dcc drill: say run SCENARIO, list, show ID, report ID or scenarios", file=sys.stderr)
    return 2


def _list(args: argparse.Namespace) -> int:
    from console.wizards.drill_report import DrillStore, running_pid

    db = _db(args)
    if not db.exists():
        print(f"no drills yet ({db})")
        return 0
    reports = DrillStore(db).list()
    if not reports:
        print(f"no drills yet ({db})")
    for r in reports:
        rto = "—" if r.rto.measured_s is None else f"{r.rto.measured_s:.1f}s"
        rpo = ""
        if r.rpo.target_s is not None:
            got = "—" if r.rpo.measured_s is None else f"{r.rpo.measured_s:.1f}s"
            rpo = f" RPO {got}/{r.rpo.target_s:g}s"
        pid = None if r.ended else running_pid(r.console_host, r.pid)
        result: str = (
            r.result if r.ended else "unfinished" if pid is None else f"running (pid {pid})"
        )
        print(
            f"{r.id}  {result:<8} {r.started}  RTO {rto}/{r.rto.target_s:g}s{rpo}  "
            f"{r.operator}  {r.title}"
        )
    return 0


def _report(args: argparse.Namespace) -> int:
    from console.wizards.drill_report import DrillStore

    report = DrillStore(_db(args)).get(args.id)
    if report is None:
        print(f"dcc drill: no drill {args.id!r} (see dcc drill list)", file=sys.stderr)
        return 1
    sys.stdout.write(report.to_json() + "\n" if args.format == "json" else report.to_markdown())
    return 0


def _scenarios(args: argparse.Namespace) -> int:
    from console.inventory.problems import InventoryError
    from console.wizards.drill_model import default_catalogue, load_catalogue, scenario_summary

    path = args.file or default_catalogue(None)
    try:
        catalogue = load_catalogue(path)
    except InventoryError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    for s in catalogue.drills:
        row = scenario_summary(s)
        rpo = "" if row["rpo_s"] is None else f" RPO {row['rpo_s']:g}s"
        print(
            f"{row['id']:<24} RTO {row['rto_s']:g}s{rpo}  scope {row['scope']}  "
            f"inject {row['inject']}  — {row['title']}"
        )
    return 0
