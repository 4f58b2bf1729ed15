"""The `dcc` command line.

``dcc`` alone opens the console on the embedded demo (the lab);
``dcc --inventory FILE`` on a real site. Subcommands work without the TUI:
``check``, ``audit``, ``lab``, ``plugins``. This module imports little at the
top so the first frame paints quickly; each command imports what it needs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def _build_parser() -> argparse.ArgumentParser:
    from console import cli_audit, cli_check, cli_lab, cli_wizards

    parser = argparse.ArgumentParser(
        prog="dcc",
        description="A terminal console for operating an AI datacenter. "
        "With no inventory it starts the embedded demo datacenter.",
    )
    parser.add_argument("--inventory", "-i", type=Path, help="the site's inventory YAML")
    parser.add_argument("--layout", default="overview", help="layout to open (default overview)")
    parser.add_argument("--read-only", action="store_true", help="refuse every change")
    parser.add_argument("--audit-db", type=Path, help="audit database (default in the state dir)")
    parser.add_argument("--roles", type=Path, help="roles file (who may do what)")
    parser.add_argument(
        "--no-scenario", action="store_true", help="demo: do not inject the demo's timed faults"
    )
    parser.add_argument("--log-file", type=Path, help="debug log (default in the state dir)")
    parser.add_argument(
        "--source",
        choices=("direct", "prometheus"),
        default="direct",
        help="demo: read GPUs, power and fabric through a real Prometheus scraping the lab's "
        "exporters (a site chooses per subsystem in its inventory)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="open the console (the default)")
    cli_check.register(sub)
    cli_audit.register(sub)
    cli_lab.register(sub)
    cli_wizards.register(sub)
    sub.add_parser("plugins", help="list the plugins found and the errors of broken ones")
    return parser


def _setup_logging(path: Path | None) -> None:
    from console.options import state_dir

    target = path or state_dir() / "dcc.log"
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handler: logging.Handler = logging.FileHandler(target)
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_dcc", False)]:
        root.removeHandler(old)  # main() may run more than once in a process (tests)
        old.close()
    handler._dcc = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # asyncssh logs several INFO lines per connection and per command: at fleet size
    # that is thousands of flushed lines a minute, and a large share of the CPU.
    logging.getLogger("asyncssh").setLevel(logging.WARNING)


def cli_wizards_commands() -> tuple[str, ...]:
    from console.cli_wizards import COMMANDS

    return COMMANDS


def cmd_plugins() -> int:
    from console.registry import discover

    reg = discover()
    for p in reg.plugins:
        counts = (
            f"{len(p.collectors)} collectors, {len(p.panes)} panes, "
            f"{len(p.actions)} actions, {len(p.checks)} checks"
        )
        print(f"ok      {p.name:<12} {counts}  {p.description}")
    for b in reg.broken:
        print(f"BROKEN  {b.name:<12} {b.origin}: {b.error}")
    return 0


def _validate_site(args: argparse.Namespace) -> int:
    """Refuse a bad inventory before the TUI starts: a message, no traceback."""
    from console.inventory import InventoryError, apply_plugin_configs, load_inventory
    from console.registry import discover

    try:
        inventory = load_inventory(args.inventory)
        reg = discover()
        apply_plugin_configs(inventory, {p.name: p.config_model for p in reg.plugins})
    except InventoryError as exc:
        print(f"dcc: the inventory is not valid:\n{exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"dcc: cannot read the inventory: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.inventory is not None and args.source != "direct":
        print(
            "dcc: --source applies to the demo; a site chooses `source:` per subsystem in "
            "its inventory (see README, Prometheus as a source)",
            file=sys.stderr,
        )
        return 2
    if args.inventory is not None:
        status = _validate_site(args)
        if status:
            return status
    from console.app import DcConsoleApp
    from console.options import LaunchOptions

    options = LaunchOptions(
        inventory=args.inventory,
        layout=args.layout,
        read_only=args.read_only,
        audit_db=args.audit_db,
        roles=args.roles,
        scenario=None if args.no_scenario else "demo",
        source=args.source,
    )
    app = DcConsoleApp(options)
    code = app.run()
    return int(code or 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.log_file)
    command = args.command or "run"
    try:
        if command == "run":
            return cmd_run(args)
        if command == "plugins":
            return cmd_plugins()
        if command == "check":
            from console import cli_check
            from console.registry import discover

            return cli_check.run(args, plugins=discover().plugins)
        if command == "audit":
            from console import cli_audit

            return cli_audit.run(args)
        if command in cli_wizards_commands():
            from console import cli_wizards

            return cli_wizards.run(args)
        if command == "lab":
            from console import cli_lab
            from console.registry import discover

            return cli_lab.run(args, discover().plugins)
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {command}")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
