"""``dcc drill run SCENARIO``: a failover drill from the command line, for scripted game days.

The same engine, audit log and drill database as the console (``w`` ``d``): a
session is started without the TUI (the demo lab in this process when no
inventory is given, without its timed faults); the preflight is printed (the
steady state as it reads now, the injection's preview, the restore, the dead
man's switch, the stop conditions); the drill starts on a typed confirmation
exactly like the console's -- the injection's own confirmation (its blast
radius, e.g. ``triton-inf01``), or the scenario's id when the injection needs
none -- asked on a terminal or given as ``--confirm NAME``. Progress is printed
one line per event (timeline entries with their times, the dead man's switch,
stop conditions, a status line every few seconds); at the end the result, RTO
and RPO against their targets, and the report's id (``dcc drill show ID``).

Ctrl-C (SIGINT), SIGTERM and SIGHUP abort the drill through the engine's abort
path: before the fault goes in nothing is injected; after, the observation stops
and the restore runs before the command exits. A second Ctrl-C does not skip it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from console.sanitize import clean

if TYPE_CHECKING:  # pragma: no cover
    from console.session import Session
    from console.wizards.drill_report import DrillReport
    from console.wizards.drill_run import DrillRun

log = logging.getLogger(__name__)

EXIT_PASSED, EXIT_REFUSED, EXIT_ERROR, EXIT_FAILED, EXIT_ABORTED = 0, 1, 2, 3, 4
EXIT_FOR_RESULT = {
    "passed": EXIT_PASSED,
    "refused": EXIT_REFUSED,
    "failed": EXIT_FAILED,
    "aborted": EXIT_ABORTED,
}
EXIT_CODES = """\
exit status:
  0  passed: every phase seen, RTO (and RPO) inside the targets, restored,
     steady state back
  1  refused, nothing injected: unknown scenario, read-only or viewer, the
     injection refused, the steady state does not hold, no or a wrong typed
     confirmation
  2  error: the catalogue or the inventory cannot be read or is invalid, or the
     drill stopped on an error (it restores first)
  3  failed: the drill ran and restored but missed a goal (RTO or RPO over its
     target, a phase never seen, the restore failed, steady state not back)
  4  aborted: a stop condition, the maximum duration, contact lost, or Ctrl-C /
     SIGTERM / SIGHUP (the fault, if it was in, is restored first)
"""
STATUS_EVERY_S = 5.0
"""A status line (phases, stop conditions, contact) this often while observing."""


def register_run(sub: Any) -> None:
    """Add ``run`` to the ``drill`` sub-commands."""
    run = sub.add_parser(
        "run",
        help="run a drill scenario without the TUI (typed confirmation), printing progress",
        description="Preflight, confirm and run a drill scenario of the catalogue, printing\n"
        "its progress; Ctrl-C aborts and restores. The report is kept with the\n"
        "console's (dcc drill list, dcc drill show ID).",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("scenario", metavar="SCENARIO", help="the scenario's id (dcc drill scenarios)")
    run.add_argument(
        "--inventory",
        "-i",
        type=Path,
        default=argparse.SUPPRESS,  # `dcc -i INV drill run X` works too
        help="the site's inventory (default: the demo lab)",
    )
    run.add_argument(
        "--catalogue",
        type=Path,
        default=None,
        help="the drill catalogue (default: drills/<inventory>.yaml beside the inventory)",
    )
    run.add_argument(
        "--confirm",
        metavar="NAME",
        default=None,
        help="what the console asks to type, exactly: the injection's confirmation (its "
        "targets, e.g. triton-inf01) or the scenario id, as the preflight says (for scripts; "
        "else asked on the terminal)",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print the final report as JSON on stdout (progress goes to stderr)",
    )


def run_command(args: argparse.Namespace) -> int:
    """``dcc drill run``; returns the exit status."""
    from console.inventory import InventoryError

    try:
        return asyncio.run(_with_session(args))
    except KeyboardInterrupt:  # before the session was up: nothing started
        print("dcc drill: interrupted before the drill started: nothing injected", file=sys.stderr)
        return EXIT_ABORTED
    except InventoryError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"dcc drill: {exc}", file=sys.stderr)
        return EXIT_ERROR


class _Signals:
    """SIGINT / SIGTERM / SIGHUP: the engine's abort (restore), never a plain exit."""

    NAMES = {
        signal.SIGINT: "interrupted by the operator (Ctrl-C)",
        signal.SIGTERM: "terminated (SIGTERM)",
        signal.SIGHUP: "the terminal hung up (SIGHUP)",
    }

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.reason: str | None = None
        self.run: DrillRun | None = None
        self.waiter: asyncio.Future[str | None] | None = None
        self.count = 0
        self.installed: list[signal.Signals] = []

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self.NAMES:
            try:
                loop.add_signal_handler(sig, self.fire, sig)
            except (ValueError, RuntimeError):  # not the main thread (an embedding caller)
                log.warning("dcc drill: %s not handled here (not the main thread)", sig.name)
            else:
                self.installed.append(sig)

    def remove(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self.installed:
            loop.remove_signal_handler(sig)
        self.installed.clear()

    def fire(self, sig: signal.Signals) -> None:
        self.count += 1
        self.reason = self.reason or self.NAMES[sig]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)  # stop waiting for the confirmation
        if self.run is None:
            return
        if self.count == 1:
            _say(self.out, f"{self.reason}: aborting the drill (a fault that is in is restored)")
            self.run.abort(self.reason)
        else:
            _say(self.out, "already aborting: the restore runs before this command exits")


def _say(out: TextIO, text: str) -> None:
    with contextlib.suppress(OSError):  # the terminal is gone (SIGHUP): the drill goes on
        print(text, file=out, flush=True)


async def _with_session(args: argparse.Namespace) -> int:
    from console.options import flow_cli_options
    from console.session import start_session

    options = flow_cli_options(args)
    session = await start_session(options)
    signals = _Signals(sys.stderr if args.json else sys.stdout)
    try:
        signals.install()
        for notice in session.notices:
            print(f"note: {notice}", file=sys.stderr)
        return await _drill(args, session, signals)
    finally:
        if session.runner is not None:
            await session.runner.begin_shutdown("dcc drill finished", grace_s=5)
        await session.stop()
        signals.remove()


async def _drill(args: argparse.Namespace, session: Session, signals: _Signals) -> int:
    from console.action_plan import ActionRefused, Plan
    from console.plugin import Role
    from console.wizards.drill_desk import env_of_session
    from console.wizards.drill_model import default_catalogue, load_catalogue
    from console.wizards.drill_run import DrillRun
    from console.wizards.drill_view import confirm_text, preflight_lines

    out = signals.out
    catalogue_path = args.catalogue or default_catalogue(getattr(args, "inventory", None))
    catalogue = load_catalogue(catalogue_path)  # invalid: InventoryError, exit 2
    scenario = catalogue.get(args.scenario)
    if scenario is None:
        known = ", ".join(d.id for d in catalogue.drills)
        print(
            f"dcc drill: no scenario {args.scenario!r} in {catalogue_path} (known: {known})",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    env = env_of_session(session)
    printer = _Printer(out)
    run = DrillRun(scenario, env, printer)
    runner = env.runner
    problem: str | None = None
    if runner.read_only or runner.role < Role.OPERATOR:
        problem = "this console may not act (read-only or viewer)"
    await run.refresh()
    plan: Plan | None = None
    try:
        plan = await run.plan_inject()
    except ActionRefused as exc:
        problem = problem or str(exc)
    _say(out, "\n".join(clean(line) for line in preflight_lines(run, plan, problem)))
    if problem is not None:
        return await _refuse(run, f"preflight: {problem}")
    expected = confirm_text(run, plan)
    typed = await _typed(args, expected, signals)
    if signals.reason is not None:
        _say(out, f"{signals.reason}: the drill did not start, nothing was injected")
        return EXIT_ABORTED
    if typed is None:
        return await _refuse(run, "no typed confirmation (give --confirm NAME)")
    if typed != expected:
        return await _refuse(run, f"the typed confirmation {typed!r} does not match {expected!r}")
    signals.run = run
    _say(out, f"drill {run.report.id} started: {clean(scenario.title)}")
    try:
        report = await run.run(typed)
    except Exception as exc:  # the engine restored first (its own except); say what stopped it
        print(f"dcc drill: the drill stopped on an error: {exc!r}", file=sys.stderr)
        _summary(out, run.report, args)
        return EXIT_ERROR
    finally:
        signals.run = None  # a signal while the session stops has nothing left to abort
    _summary(out, report, args)
    if args.json:
        sys.stdout.write(report.to_json() + "\n")
    return EXIT_FOR_RESULT.get(report.result, EXIT_ERROR)


async def _refuse(run: DrillRun, reason: str) -> int:
    print(f"dcc drill: refused: {reason}; nothing was injected", file=sys.stderr)
    await run.refuse(reason)
    return EXIT_REFUSED


async def _typed(args: argparse.Namespace, expected: str, signals: _Signals) -> str | None:
    if args.confirm is not None:
        return str(args.confirm)
    if not sys.stdin.isatty():
        print("dcc drill: no terminal to confirm on: give --confirm NAME", file=sys.stderr)
        return None
    # A daemon thread, not the default executor: Ctrl-C at the prompt must not leave
    # asyncio.run waiting at exit for a thread blocked in input().
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str | None] = loop.create_future()

    def settle(line: str | None) -> None:
        if not answer.done():
            answer.set_result(line)

    def read() -> None:
        try:
            line: str | None = input(f"Type {expected} to start the drill: ")
        except (EOFError, OSError):
            line = None
        with contextlib.suppress(RuntimeError):  # the loop is gone: the command ended
            loop.call_soon_threadsafe(settle, line)

    signals.waiter = answer
    threading.Thread(target=read, name="dcc-drill-confirm", daemon=True).start()
    return await answer


class _Printer:
    """The drill's progress as lines: new timeline entries, the switch, stop conditions."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.seen = 0
        self.step = ""
        self.armed = False
        self.unexpected: list[str] = []
        self.status_at = STATUS_EVERY_S

    def __call__(self, run: DrillRun) -> None:
        if run.step != self.step:
            self.step = run.step
            if run.step not in ("ready", *EXIT_FOR_RESULT):  # the end has its own line
                self.line(f"{'':8} phase {run.step}")
        for entry in run.report.timeline[self.seen :]:
            self.line(f"+{entry.at:6.1f}s {entry.step:<10} {entry.who:<8} {entry.text}")
        self.seen = len(run.report.timeline)
        if run.deadman_armed != self.armed:
            self.armed = run.deadman_armed
            s = run.scenario
            if self.armed:
                self.line(
                    f"{'':8} dead man's switch armed: {s.deadman.arm.target if s.deadman else ''}"
                    f" restores by itself after {s.deadman_after_s:g}s unless cancelled"
                )
            else:
                self.line(f"{'':8} dead man's switch cancelled")
        if run.unexpected != self.unexpected:
            self.unexpected = list(run.unexpected)
            limit = run.scenario.stop.max_unexpected_failures
            self.line(
                f"{'':8} stop conditions: {len(self.unexpected)} unexpected failure(s) "
                f"(abort above {limit})"
                + (f": {', '.join(self.unexpected)}" if self.unexpected else "")
            )
        elapsed = run.elapsed
        if run.step == "observe" and elapsed is not None and elapsed >= self.status_at:
            self.status_at = elapsed + STATUS_EVERY_S
            self.line(f"{'':8} {_status(run, elapsed)}")

    def line(self, text: str) -> None:
        _say(self.out, f"{time.strftime('%H:%M:%S')} {clean(text)}")


def _secs(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f}s"


def _status(run: DrillRun, elapsed: float) -> str:
    s = run.scenario
    phases = "  ".join(f"{p} {_secs(at)}" for p, at in run.phases.items())
    contact = "—" if run.contact_age is None else f"{run.contact_age:.1f}s ago"
    return (
        f"observe {elapsed:5.1f}s  {phases}  RTO target {s.targets.rto_s:g}s  "
        f"unexpected {len(run.unexpected)}/{s.stop.max_unexpected_failures}  "
        f"contact {contact} (limit {s.stop.contact_lost_s:g}s)"
    )


def _summary(out: TextIO, report: DrillReport, args: argparse.Namespace) -> None:
    def measure(name: str, target: float | None, got: float | None, met: bool | None) -> str:
        if target is None:
            return f"{name} {_secs(got)} (no target)"
        return f"{name} {_secs(got)} / target {target:g}s: {'met' if met else 'MISSED'}"

    restored = {True: "yes", False: "NO: check the target", None: "n/a (nothing injected)"}
    lines = [
        f"result {report.result.upper()}",
        measure("RTO", report.rto.target_s, report.rto.measured_s, report.rto.met),
    ]
    if report.rpo.target_s is not None or report.rpo.measured_s is not None:
        lines.append(measure("RPO", report.rpo.target_s, report.rpo.measured_s, report.rpo.met))
    lines.append(f"restored: {restored[report.restored]}")
    if report.deadman:
        lines.append(f"dead man's switch: {report.deadman}")
    lines += [f"deviation: {d}" for d in report.deviations]
    lines.append(f"report {report.id}: dcc{_where(args)} drill show {report.id}")
    _say(out, "\n".join(clean(line) for line in lines))


def _where(args: argparse.Namespace) -> str:
    """The global options ``dcc drill show`` needs to find this drill's database."""
    if getattr(args, "audit_db", None):
        return f" --audit-db {args.audit_db}"
    if getattr(args, "inventory", None):
        return f" --inventory {args.inventory}"
    return ""
