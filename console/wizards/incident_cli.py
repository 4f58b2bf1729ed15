"""``dcc incident``: incidents and their timelines without the TUI.

- ``dcc incident list [--all]``: open incidents (all with ``--all``), newest first,
  with the last hand-off note.
- ``dcc incident show ID``: one incident and its timeline (entries merged with
  the audit rows about its target).
- ``dcc incident export ID --format md [--output FILE]``: the timeline as Markdown.

Everything is read from the audit database (``dcc --audit-db``), opened read-only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "incident", help="incidents: list, timeline, Markdown export"
    )
    sub = parser.add_subparsers(dest="incident_command", metavar="SUBCOMMAND")
    lst = sub.add_parser("list", help="open incidents with their last hand-off")
    lst.add_argument("--all", action="store_true", help="closed ones too")
    show = sub.add_parser("show", help="one incident and its timeline")
    show.add_argument("id", metavar="ID", type=int)
    exp = sub.add_parser("export", help="one incident as Markdown")
    exp.add_argument("id", metavar="ID", type=int)
    exp.add_argument("--format", choices=("md",), default="md", dest="format")
    exp.add_argument("--output", "-o", type=Path, default=None, help="file (default: stdout)")
    parser.set_defaults(command="incident", incident_command=None)
    return parser


def audit_db(args: argparse.Namespace) -> Path:
    from console.audit_model import default_audit_db

    path = getattr(args, "audit_db", None)
    return Path(path).expanduser() if path else default_audit_db()


def _printable(text: str) -> str:
    # Notes are typed by people and stored: never let a control character reach the terminal.
    return "".join(ch if ch.isprintable() or ch == "\n" else "?" for ch in text)


def run(args: argparse.Namespace) -> int:
    from console.audit import AuditError, AuditLog
    from console.incidents import IncidentError, Incidents, handoff_line

    command = getattr(args, "incident_command", None)
    if command not in ("list", "show", "export"):
        print("dcc incident: say list, show ID or export ID", file=sys.stderr)
        return 2
    path = audit_db(args)
    if not path.exists():
        print(f"no incidents yet (no audit database at {path})")
        return 0 if command == "list" else 1
    try:
        log = AuditLog(path, readonly=True)
    except (AuditError, OSError) as exc:
        print(f"dcc incident: {exc}", file=sys.stderr)
        return 2
    try:
        incidents = Incidents(log, log.operator)
        if command == "list":
            found = incidents.list_incidents(None if args.all else "open")
            if not found:
                print("no open incidents" if not args.all else "no incidents")
            for i in found:
                line = handoff_line(i) if i.open else f"closed incident #{i.id} on {i.target}: "
                if not i.open:
                    line += f"{i.title} (closed by {i.closed_by}: {i.summary})"
                print(_printable(line))
            return 0
        text = incidents.export_markdown(args.id)
        if command == "export" and args.output is not None:
            from console.audit_files import private_umask

            # The export holds part of the audit record: same privacy as the database.
            with private_umask():
                args.output.write_text(text, encoding="utf-8")
            print(f"incident #{args.id} written to {args.output}", file=sys.stderr)
            return 0
        sys.stdout.write(_printable(text))
        return 0
    except IncidentError as exc:
        print(f"dcc incident: {exc} (see dcc incident list --all)", file=sys.stderr)
        return 1
    except (AuditError, OSError) as exc:
        print(f"dcc incident: {exc}", file=sys.stderr)
        return 2
    finally:
        log.close()
