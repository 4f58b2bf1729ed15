"""``dcc audit``: verify, export and tail the audit database without the TUI.

Errors are one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from console.audit import AuditError, AuditEvent, AuditLog, default_audit_db, verify

EXIT_OK = 0
EXIT_TAMPERED = 1
EXIT_ERROR = 2


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``audit`` and its subcommands to the ``dcc`` parser's subparsers."""
    audit = subparsers.add_parser("audit", help="verify, export or tail the audit log")
    sub = audit.add_subparsers(dest="audit_command", metavar="{verify,export,tail}")
    sub.required = True

    v = sub.add_parser("verify", help="check the hash chain (exit 0 ok, 1 tampered)")
    v.add_argument(
        "--anchor",
        type=Path,
        default=None,
        help="anchor file of head hashes: also detects a cut tail or a rewritten chain",
    )

    e = sub.add_parser("export", help="write every row as JSON lines or CSV")
    e.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", dest="format")
    e.add_argument("--output", "-o", type=Path, default=None, help="file (default: stdout)")

    t = sub.add_parser("tail", help="show the last rows")
    t.add_argument("-n", type=int, default=20, dest="lines", help="rows to show (default 20)")
    t.add_argument("--follow", "-f", action="store_true", help="keep showing new rows")
    return audit


def _db_path(args: argparse.Namespace) -> Path:
    path = getattr(args, "audit_db", None)
    return Path(path).expanduser() if path else default_audit_db()


def format_event(ev: AuditEvent) -> str:
    """One human line: time, operator, phase, outcome, action, targets, detail."""
    targets = ",".join(ev.targets)
    parts = [
        ev.ts,
        ev.operator + (f"({ev.ssh_client.split()[0]})" if ev.ssh_client else ""),
        f"{ev.phase:<10}",
        f"{ev.outcome or '-':<8}",
        ev.action or "-",
        targets or "-",
    ]
    line = " ".join(parts)
    if ev.detail:
        line += f"  {ev.detail}"
    # Rows are data: never let a control character reach the terminal.
    return "".join(ch if ch.isprintable() else "?" for ch in line)


def _verify(args: argparse.Namespace, path: Path) -> int:
    anchor = args.anchor
    if anchor is not None and not anchor.exists():
        print(f"dcc audit verify: no anchor file at {anchor}", file=sys.stderr)
        return EXIT_ERROR
    if not path.exists():
        print(f"dcc audit verify: no audit database at {path}", file=sys.stderr)
        return EXIT_ERROR
    report = verify(path, anchor)
    if report.ok:
        print(f"ok: {report.message} ({path})")
        return EXIT_OK
    if report.first_bad_id is None and report.rows == 0 and "cannot" in report.message:
        print(f"dcc audit verify: {report.message}", file=sys.stderr)
        return EXIT_ERROR
    where = f"first bad row id {report.first_bad_id}: " if report.first_bad_id else ""
    print(f"TAMPERED: {where}{report.message} ({path})")
    return EXIT_TAMPERED


def _export(args: argparse.Namespace, log: AuditLog) -> int:
    if args.output is None:
        log.export(sys.stdout, args.format)
        return EXIT_OK
    from console.audit_files import private_umask

    # The export holds the same record as the database: same privacy.
    with private_umask(), args.output.open("w", encoding="utf-8", newline="") as out:
        n = log.export(out, args.format)
    print(f"{n} rows written to {args.output}", file=sys.stderr)
    return EXIT_OK


def _tail(args: argparse.Namespace, log: AuditLog) -> int:
    rows = list(reversed(log.page(max(0, args.lines), 0, newest_first=True)))
    for ev in rows:
        print(format_event(ev), flush=True)
    if not args.follow:
        return EXIT_OK
    head = log.head()
    last = head.id if head is not None else 0
    try:
        while True:
            new = log.since(last)
            for ev in new:
                print(format_event(ev), flush=True)
                last = ev.id
            if not new:
                time.sleep(1.0)
    except KeyboardInterrupt:
        return EXIT_OK


def run(args: argparse.Namespace) -> int:
    """Run ``dcc audit ...``; returns the exit status."""
    path = _db_path(args)
    command = getattr(args, "audit_command", None)
    try:
        if command == "verify":
            return _verify(args, path)
        if command not in ("export", "tail"):
            print("dcc audit: choose verify, export or tail", file=sys.stderr)
            return EXIT_ERROR
        log = AuditLog(path, readonly=True)
        try:
            return _export(args, log) if command == "export" else _tail(args, log)
        finally:
            log.close()
    except BrokenPipeError:  # `dcc audit export | head`
        return EXIT_OK
    except (AuditError, OSError, ValueError) as exc:
        print(f"dcc audit {command}: {exc}", file=sys.stderr)
        return EXIT_ERROR
