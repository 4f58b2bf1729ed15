"""``dcc approvals list``: two-person approval requests, newest first, without the TUI.

Deciding happens in a console (``w`` then ``i``), where the operator's identity
and role are those of the session; this command only reads (read-only database).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "approvals", help="two-person approval requests"
    )
    sub = parser.add_subparsers(dest="approvals_command", metavar="SUBCOMMAND")
    lst = sub.add_parser("list", help="recent requests, newest first")
    lst.add_argument("--pending", action="store_true", help="only those waiting for a decision")
    lst.add_argument("-n", type=int, default=50, dest="limit", help="how many (default 50)")
    parser.set_defaults(command="approvals", approvals_command=None)
    return parser


def run(args: argparse.Namespace) -> int:
    from console.approvals import Approvals
    from console.audit import AuditError, AuditLog
    from console.wizards.incident_cli import audit_db

    if getattr(args, "approvals_command", None) != "list":
        print("dcc approvals: say list", file=sys.stderr)
        return 2
    path = audit_db(args)
    if not path.exists():
        print(f"no approval requests (no audit database at {path})")
        return 0
    try:
        log = AuditLog(path, readonly=True)
    except (AuditError, OSError) as exc:
        print(f"dcc approvals: {exc}", file=sys.stderr)
        return 2
    try:
        approvals = Approvals(log, log.operator)
        found = approvals.pending() if args.pending else approvals.recent(args.limit)
        if not found:
            print("no approval requests")
        for r in found:
            who = r.requested_by + (f" -> {r.decided_by}" if r.decided_by else "")
            incident = f" (incident #{r.incident_id})" if r.incident_id is not None else ""
            note = f": {r.note}" if r.note else ""
            when = r.requested_at[:19]
            line = f"#{r.id:<4} {r.status:<9} {when}  {who}  {r.subject}{incident}{note}"
            print("".join(ch if ch.isprintable() else "?" for ch in line))
        return 0
    except AuditError as exc:
        print(f"dcc approvals: {exc}", file=sys.stderr)
        return 2
    finally:
        log.close()
