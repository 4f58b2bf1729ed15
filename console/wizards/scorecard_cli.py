"""``dcc scorecard``: the bring-up scorecard without the TUI.

- ``dcc scorecard`` (or ``evaluate``): poll the site once, judge every item,
  print the result per phase and keep the evaluation in the history.
- ``dcc scorecard sign ITEM --note TEXT [--revoke]``: sign off a manual item
  (audited; the role the item asks for).
- ``dcc scorecard history [--signoffs]``: past evaluations, newest first (or the
  sign-offs, oldest first).
- ``dcc scorecard export --format md|json [--snapshot ID|latest] [--output FILE]``:
  a recorded evaluation, or a fresh one, for the bring-up review.
- ``dcc scorecard checklist [FILE]``: the checklist, validated.

Without ``--inventory`` it works on the demo (a quiet lab started for the
evaluation). Exit status: 0 done; 1 refused (a sign-off, an unknown snapshot);
2 a file is not valid. Problems are one line each on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory
    from console.wizards.scorecard_model import LoadedChecklist
    from console.wizards.scorecard_result import ScorecardResult

log = logging.getLogger(__name__)

EXIT_OK, EXIT_REFUSED, EXIT_INVALID = 0, 1, 2
EVIDENCE_SHOWN = 3


class _Invalid(Exception):
    """A file could not be read or is not valid; the lines say why."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def register(subparsers: Any) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--inventory",
        "-i",
        type=Path,
        default=argparse.SUPPRESS,  # `dcc -i INV scorecard` works too
        help="the site's inventory (default: the demo)",
    )
    common.add_argument(
        "--checklist",
        type=Path,
        default=argparse.SUPPRESS,
        help="checklist YAML (default: scorecard/<inventory stem>.yaml, else the seed's phases)",
    )
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "scorecard",
        parents=[common],
        help="the bring-up scorecard: the seed's three phases, checked live",
        description="Evaluate the bring-up checklist per phase, sign off manual items, "
        "show the history and export it.",
    )
    sub = parser.add_subparsers(dest="scorecard_command", metavar="SUBCOMMAND")
    ev = sub.add_parser("evaluate", parents=[common], help="poll once and judge every item")
    for p in (parser, ev):
        p.add_argument(
            "--no-save",
            action="store_true",
            default=argparse.SUPPRESS,
            help="do not keep it in the history",
        )
        p.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="all evidence"
        )
    sign = sub.add_parser("sign", parents=[common], help="sign off a manual item (audited)")
    sign.add_argument("item", metavar="ITEM")
    sign.add_argument("--note", required=True, help="what was checked, and where it is recorded")
    sign.add_argument("--revoke", action="store_true", help="withdraw the item's sign-off")
    hist = sub.add_parser("history", parents=[common], help="past evaluations, newest first")
    hist.add_argument("-n", type=int, default=20, dest="limit", help="rows (default 20)")
    hist.add_argument("--signoffs", action="store_true", help="the sign-offs instead")
    exp = sub.add_parser("export", parents=[common], help="a scorecard as Markdown or JSON")
    exp.add_argument("--format", choices=("md", "json"), default="md", dest="format")
    exp.add_argument(
        "--snapshot", default=None, help="a recorded evaluation (ID or latest); default: now"
    )
    exp.add_argument("--output", "-o", type=Path, default=None, help="file (default: stdout)")
    chk = sub.add_parser("checklist", parents=[common], help="the checklist's items, validated")
    chk.add_argument("file", metavar="FILE", nargs="?", type=Path, default=None)
    parser.set_defaults(command="scorecard", scorecard_command=None)
    return parser


def run(args: argparse.Namespace) -> int:
    command = getattr(args, "scorecard_command", None) or "evaluate"
    handler = {
        "evaluate": _evaluate,
        "sign": _sign,
        "history": _history,
        "export": _export,
        "checklist": _checklist_cmd,
    }[command]
    try:
        return handler(args)
    except _Invalid as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        return EXIT_INVALID
    except Exception as exc:  # a bug must still not show the operator a traceback
        log.exception("dcc scorecard %s failed", command)
        print(f"dcc scorecard: internal error: {exc!r}", file=sys.stderr)
        return EXIT_INVALID


# --------------------------------------------------------------------------- the site


def _inventory(args: argparse.Namespace) -> Inventory:
    from console.inventory import InventoryError, load_inventory
    from console.session import DEMO_INVENTORY

    path = getattr(args, "inventory", None)
    try:
        return load_inventory(path or DEMO_INVENTORY)
    except InventoryError as exc:
        raise _Invalid(
            ["dcc scorecard: the inventory is not valid:", *map(str, exc.problems)]
        ) from None
    except OSError as exc:
        raise _Invalid([f"dcc scorecard: cannot read the inventory: {exc}"]) from None


def _audit_db(args: argparse.Namespace, inventory: Inventory) -> Path:
    """The audit database the console would use for this site (as start_session picks it)."""
    from console.audit_model import default_audit_db
    from console.options import state_dir

    given = getattr(args, "audit_db", None)
    if given:
        return Path(given).expanduser()
    if inventory.doc.audit.db:
        return inventory.resolve_path(inventory.doc.audit.db)
    return state_dir() / "demo-audit.db" if inventory.demo else default_audit_db()


def _checklist(args: argparse.Namespace, inventory: Inventory) -> LoadedChecklist:
    from console.inventory import InventoryError
    from console.wizards.scorecard_model import load_checklist, site_checklist

    path = getattr(args, "checklist", None) or site_checklist(inventory.source, inventory.demo)
    try:
        return load_checklist(path)
    except InventoryError as exc:
        raise _Invalid([str(p) for p in exc.problems]) from None
    except OSError as exc:
        raise _Invalid([f"dcc scorecard: cannot read the checklist: {exc}"]) from None


def _book(args: argparse.Namespace, inventory: Inventory) -> Any:
    from console.wizards.scorecard_book import ScorecardBook, default_scorecard_db

    return ScorecardBook(default_scorecard_db(_audit_db(args, inventory)))


# --------------------------------------------------------------------------- commands


def _evaluate(args: argparse.Namespace) -> int:
    inventory = _inventory(args)
    checklist = _checklist(args, inventory)
    save = not getattr(args, "no_save", False)
    result = asyncio.run(evaluate_live(args, checklist, save=save))
    print("\n".join(render(result, verbose=getattr(args, "verbose", False))))
    return EXIT_OK


async def evaluate_live(
    args: argparse.Namespace, checklist: LoadedChecklist, *, save: bool
) -> ScorecardResult:
    """Start the site's session (the demo: a quiet lab), poll once, judge, stop."""
    from console.options import LaunchOptions
    from console.session import start_session
    from console.wizards.scorecard_flow import flow_for_session

    with tempfile.TemporaryDirectory(prefix="dcc-scorecard-") as lab_dir:
        options = LaunchOptions(
            inventory=getattr(args, "inventory", None),
            read_only=True,
            audit_db=getattr(args, "audit_db", None),
            roles=getattr(args, "roles", None),
            scenario=None,
            lab_state_dir=Path(lab_dir),
            poll=False,
        )
        session = await start_session(options)
        try:
            assert session.poller is not None
            await session.poller.poll_once()
            session.refresh_alerts()
            flow = flow_for_session(session, checklist)
            await flow.load()
            result = flow.evaluate()
            return await flow.record(result) if save else result
        finally:
            await session.stop()


def _sign(args: argparse.Namespace) -> int:
    from console.audit import AuditLog
    from console.identity import Operator
    from console.roles import RolesFileError, resolve_role
    from console.wizards.scorecard_flow import Signer, SignRefused, sign_item

    inventory = _inventory(args)
    checklist = _checklist(args, inventory)
    operator = Operator.current()
    roles = getattr(args, "roles", None) or (
        inventory.resolve_path(inventory.doc.roles_file) if inventory.doc.roles_file else None
    )
    try:
        role = resolve_role(operator.user, roles, demo=inventory.demo)
    except RolesFileError as exc:
        raise _Invalid([f"dcc scorecard: {exc}"]) from None
    audit_db = _audit_db(args, inventory)
    anchor = (
        inventory.resolve_path(inventory.doc.audit.anchor)
        if inventory.doc.audit.anchor
        else audit_db.with_name(audit_db.name + ".anchor")
    )
    audit = AuditLog(audit_db, anchor_path=anchor)
    signer = Signer(audit, operator, role, bool(getattr(args, "read_only", False)))
    try:
        signed = asyncio.run(
            sign_item(
                _book(args, inventory),
                signer,
                checklist,
                inventory.site.name,
                args.item,
                args.note,
                revoke=args.revoke,
            )
        )
    except SignRefused as exc:
        print(f"dcc scorecard: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        audit.close()
    verb = "revoked the sign-off of" if args.revoke else "signed off"
    print(f"{signed.operator} {verb} {args.item} ({inventory.site.name}): {signed.note}")
    return EXIT_OK


def _history(args: argparse.Namespace) -> int:
    inventory = _inventory(args)
    book = _book(args, inventory)
    site = inventory.site.name
    if args.signoffs:
        rows = book.signoff_history(site)
        if not rows:
            print(f"no sign-offs yet for {site} ({book.path})")
        for r in rows:
            verb = "revoked" if r.revoked else "signed"
            print(f"{_ts(r.ts)}  {r.operator:<12} {verb:<8} {r.item:<20} {r.note}")
        return EXIT_OK
    snaps = book.history(site, args.limit)
    if not snaps:
        print(f"no evaluation recorded yet for {site} ({book.path})")
    for s in snaps:
        print(f"{_ts(s.ts)}  {s.id}  {s.operator:<12} {s.summary}")
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    inventory = _inventory(args)
    if args.snapshot:
        result = _book(args, inventory).snapshot(inventory.site.name, args.snapshot)
        if result is None:
            print(
                f"dcc scorecard: no snapshot {args.snapshot!r} for {inventory.site.name} "
                "(see dcc scorecard history)",
                file=sys.stderr,
            )
            return EXIT_REFUSED
    else:
        result = asyncio.run(evaluate_live(args, _checklist(args, inventory), save=True))
    text = result.to_json() + "\n" if args.format == "json" else result.to_markdown()
    if args.output is None:
        sys.stdout.write(text)
    else:
        from console.wizards.scorecard_flow import write_export

        write_export(args.output, text)
        print(f"wrote {args.output} (snapshot {result.id or 'not recorded'})")
    return EXIT_OK


def _checklist_cmd(args: argparse.Namespace) -> int:
    from console.filtering import parse_filter
    from console.registry import discover
    from console.wizards.scorecard_model import check_references

    inventory = _inventory(args)
    if args.file is not None:
        args.checklist = args.file
    checklist = _checklist(args, inventory)
    problems = check_references(
        checklist,
        discover().checks(),
        None,
        lambda text: parse_filter(text, inventory),
    )
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{checklist.doc.title} ({checklist.label})")
    for phase in checklist.doc.phases:
        print(f"\n{phase.title} ({phase.id}, {len(phase.items)} items)")
        for item in phase.items:
            how = item.check if item.check else item.kind
            print(f"  {item.id:<20} {how:<28} {item.title}")
    return EXIT_REFUSED if problems else EXIT_OK


# --------------------------------------------------------------------------- rendering


def _ts(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def render(result: ScorecardResult, *, verbose: bool = False) -> list[str]:
    """The scorecard as text lines (80 columns), a mark per item: ✓ pass, ✗ fail, ? unknown."""
    lines = [
        f"{result.title}: {result.site}  ({result.evaluated_at}, {result.operator})",
        f"checklist {result.checklist}" + (f"  snapshot {result.id}" if result.id else ""),
    ]
    for phase in result.phases:
        lines += ["", f"{phase.title}: {phase.progress}"]
        for item in phase.items:
            lines.append(f"  {item.mark} {item.id:<20} {item.title}")
            lines.append(f"  {'':<22} {item.summary}")
            if item.status != "pass" or verbose:
                shown = item.evidence if verbose else item.evidence[:EVIDENCE_SHOWN]
                lines += [f"  {'':<24}- {e}" for e in shown if e != item.summary]
    lines += ["", "✓ pass  ✗ fail  ? unknown or not signed off  ·  " + result.summary()]
    return lines
