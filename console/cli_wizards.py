"""Command-line entry points of the guided flows (no TUI): each flow adds its own.

A flow module provides ``register(subparsers)`` and ``run(args) -> int``; listing it
here is all the wiring it needs. Imports stay light (the parser is built before
the first frame).
"""

from __future__ import annotations

import argparse
import importlib

FLOWS: dict[str, str] = {
    "rollout": "console.wizards.rollout_cli",
    "drill": "console.wizards.drill_cli",
    "scorecard": "console.wizards.scorecard_cli",
    "incident": "console.wizards.incident_cli",
    "approvals": "console.wizards.approvals_cli",
    "runbook": "console.wizards.runbook_cli",
}
"""Top-level command -> module (``"rollout": "console.wizards.rollout_cli"``)."""

COMMANDS = tuple(FLOWS)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for module in FLOWS.values():
        importlib.import_module(module).register(subparsers)


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(FLOWS[args.command])
    code: int = module.run(args)
    return code
