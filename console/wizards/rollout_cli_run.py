"""``dcc rollout run FILE``, ``dcc rollout resume ID``, ``dcc rollout status [ID]``.

The same engine, audit log and rollouts database as the console: a session is
started without the TUI (the demo lab in this process when no inventory is
given, without its timed faults), the plan is printed with its live
pre-flight, and progress is printed one line per step and event.

Starting needs typed confirmation of the rollout's name: asked on a terminal,
or given as ``--confirm NAME`` by a script (it must equal the name exactly).
Resuming continues the plan confirmed at the start (its hash must still
match); a step an earlier console left in flight is verified first.

Exit status:
  0  the rollout finished (done, or rolled back); status: printed
  1  refused: the plan, the confirmation, the role, read-only, or unknown ID
  2  a file, the inventory or the rollouts database cannot be read or is invalid
  3  halted at a gate: decide in the console (retry, skip, roll back, abort,
     approve), then resume
  4  aborted
  130 interrupted (Ctrl-C): the rollout stays resumable
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.sanitize import clean

if TYPE_CHECKING:  # pragma: no cover
    from console.session import Session
    from console.wizards.rollout_env import RolloutEnv
    from console.wizards.rollout_run import RolloutEvent, RolloutRunner

EXIT_OK, EXIT_REFUSED, EXIT_INVALID, EXIT_HALTED, EXIT_ABORTED = 0, 1, 2, 3, 4
EXIT_FOR_STATUS = {
    "done": EXIT_OK,
    "rolled_back": EXIT_OK,
    "halted": EXIT_HALTED,
    "aborted": EXIT_ABORTED,
}


def register_run(sub: Any) -> None:
    """Add ``run``, ``resume`` and ``status`` to the ``rollout`` sub-commands."""
    run = sub.add_parser(
        "run",
        help="run a rollout file (typed confirmation), printing progress",
        description="Plan, confirm and run a rollout. Exit 0 done, 1 refused, 2 invalid, "
        "3 halted at a gate, 4 aborted, 130 interrupted (resumable).",
    )
    run.add_argument("file", metavar="FILE", type=Path, help="the rollout YAML file")
    run.add_argument(
        "--confirm",
        metavar="NAME",
        default=None,
        help="the rollout's name, exactly (for scripts; otherwise asked on the terminal)",
    )
    resume = sub.add_parser(
        "resume",
        help="resume an interrupted or halted rollout from its last committed step",
        description="Continue a rollout by id (a prefix is enough). A step left in flight "
        "is verified first. Exit codes as for run.",
    )
    resume.add_argument("id", metavar="ID")
    status = sub.add_parser(
        "status",
        help="the recorded rollouts, or the progress of one",
        description="Without ID: recent rollouts. With ID: waves, nodes, steps, failures. "
        "Exit 0, 1 unknown ID, 2 no rollouts database.",
    )
    status.add_argument("id", metavar="ID", nargs="?", default=None)
    for parser in (run, resume, status):
        parser.add_argument(
            "--inventory",
            "-i",
            type=Path,
            default=argparse.SUPPRESS,
            help="the site's inventory (default: the demo lab)",
        )


def audit_path(args: argparse.Namespace) -> Path:
    """The audit database ``dcc`` would use with these options (rollouts.db is beside it)."""
    from console.audit_model import default_audit_db
    from console.options import state_dir

    given = getattr(args, "audit_db", None)
    if given:
        return Path(given).expanduser()
    inventory = getattr(args, "inventory", None)
    if inventory is None:
        return state_dir() / "demo-audit.db"
    from console.inventory import load_inventory

    inv = load_inventory(inventory)
    return inv.resolve_path(inv.doc.audit.db) if inv.doc.audit.db else default_audit_db()


def run_command(args: argparse.Namespace) -> int:
    """Dispatch ``run`` / ``resume`` / ``status``; returns the exit status."""
    from console.inventory import InventoryError

    try:
        if args.rollout_command == "status":
            return asyncio.run(_status(args))
        return asyncio.run(_with_session(args))
    except KeyboardInterrupt:
        print("dcc rollout: interrupted; the rollout can be resumed", file=sys.stderr)
        return 130
    except InventoryError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_INVALID


# --------------------------------------------------------------------------- status


async def _status(args: argparse.Namespace) -> int:
    from console.wizards.rollout_progress import build_progress, duration, render_text
    from console.wizards.rollout_state import RolloutState

    db = audit_path(args).with_name("rollouts.db")
    if not db.exists():
        print(f"dcc rollout: no rollouts recorded ({db} does not exist)", file=sys.stderr)
        return EXIT_INVALID
    state = RolloutState(db)
    try:
        if args.id is None:
            rows = await state.recent()
            if not rows:
                print("no rollouts recorded")
            for row in rows:
                nodes = await state.nodes(row.id)
                states = [s for _, s, _ in nodes.values()]
                done = states.count("done") + states.count("rolled_back")
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.created))
                print(
                    f"{row.id}  {row.status:<12} {done:>3}/{len(states):<3} {when}  "
                    f"{row.operator:<10} {clean(row.name)}"
                )
            return EXIT_OK
        found = await state.find(args.id)
        if len(found) != 1:
            what = "no rollout" if not found else f"{len(found)} rollouts"
            print(f"dcc rollout: {what} with id {args.id!r}", file=sys.stderr)
            return EXIT_REFUSED
        row = found[0]
        progress = build_progress(
            row,
            await state.nodes(row.id),
            await state.steps(row.id),
            await state.gates(row.id),
            time.time(),
        )
        print("\n".join(render_text(progress)))
        print(
            f"file: {row.plan.get('file', '?')}  operator: {row.operator}  "
            f"updated {duration(time.time() - row.updated)} ago"
        )
        return EXIT_OK
    finally:
        state.close()


# --------------------------------------------------------------------------- run / resume


async def _with_session(args: argparse.Namespace) -> int:
    from console.options import flow_cli_options
    from console.session import start_session
    from console.wizards.rollout_env import env_of_session

    options = flow_cli_options(args)
    session = await start_session(options)
    env = None
    try:
        for notice in session.notices:
            print(f"note: {notice}", file=sys.stderr)
        env = env_of_session(session)
        if args.rollout_command == "run":
            return await _run(args, env)
        return await _resume(args, env)
    finally:
        if env is not None:
            env.close()
        await _stop(session)


async def _stop(session: Session) -> None:
    if session.runner is not None:
        await session.runner.begin_shutdown("dcc rollout finished", grace_s=5)
    await session.stop()


def _printer(started: float) -> Any:
    def show(event: RolloutEvent) -> None:
        stamp = time.strftime("%H:%M:%S")
        nodes = ",".join(event.nodes) if len(event.nodes) <= 3 else f"{len(event.nodes)} nodes"
        outcome = f" {event.outcome}" if event.outcome else ""
        text = clean(event.text.splitlines()[0] if event.text else "")
        print(
            f"{stamp} +{time.monotonic() - started:6.1f}s {event.kind:<10} {nodes:<16}"
            f"{outcome} {text}",
            flush=True,
        )

    return show


def _wave_approver(run: RolloutRunner) -> Any:
    """On ``gate.approval``: ask on the terminal before each wave (yes / anything else aborts)."""
    pending: set[asyncio.Task[None]] = set()

    async def ask(text: str) -> None:
        try:
            answer = await asyncio.to_thread(input, f"{text}: type yes to go on, no to abort: ")
        except EOFError:
            answer = ""
        if answer.strip() == "yes":
            run.approve()
        else:
            run.abort("the operator did not approve the next wave")

    def on_event(event: RolloutEvent) -> None:
        if event.kind == "awaiting_approval":
            task = asyncio.ensure_future(ask(event.text))
            pending.add(task)
            task.add_done_callback(pending.discard)

    return on_event


async def _typed(args: argparse.Namespace, name: str) -> str | None:
    if args.confirm is not None:
        return str(args.confirm)
    if not sys.stdin.isatty():
        print("dcc rollout: no terminal to confirm on: give --confirm NAME", file=sys.stderr)
        return None
    try:  # on a thread: the lab (demo) and the session keep running meanwhile
        return await asyncio.to_thread(input, f"Type the rollout name to start it ({name}): ")
    except EOFError:
        return None


async def _run(args: argparse.Namespace, env: RolloutEnv) -> int:
    from console.inventory import InventoryError
    from console.wizards.rollout_cli import render_plan
    from console.wizards.rollout_model import load_rollout
    from console.wizards.rollout_preflight import preflight, render_preflight
    from console.wizards.rollout_run import RolloutRefused

    rollout = load_rollout(args.file)  # invalid: exit 2
    try:
        plan = env.plan_of(rollout)
    except InventoryError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print("the plan is refused", file=sys.stderr)
        return EXIT_REFUSED
    print("\n".join(render_plan(plan, env.inventory, env.checks)[:-1]))
    lines = render_preflight(await preflight(plan, env.runner, env.actions))
    if lines:
        print("\n".join(lines))
    typed = await _typed(args, plan.name)
    run = env.runner_for(plan)
    if typed is None:
        await run.refuse("no typed confirmation")
        return EXIT_REFUSED
    if plan.rollout.doc.gate.approval and not sys.stdin.isatty():
        await run.refuse("the gate asks for approval before each wave: no terminal to ask on")
        print(
            "dcc rollout: refused: gate.approval needs a terminal (or the console)", file=sys.stderr
        )
        return EXIT_REFUSED
    run.listeners.append(_printer(time.monotonic()))
    run.listeners.append(_wave_approver(run))
    print(f"rollout id {run.id}", flush=True)
    why = plan.rollout.doc.needs_second_operator(len(plan.targets))
    if why:
        print(f"two-person rule: {why}; another operator approves from their console (w, i)")
    try:
        status = await run.start(typed)
    except RolloutRefused as exc:
        print(f"dcc rollout: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    return await _summary(env, run, status)


async def _resume(args: argparse.Namespace, env: RolloutEnv) -> int:
    from console.inventory import InventoryError
    from console.wizards.rollout_run import RolloutRefused

    found = await env.state.find(args.id)
    if len(found) != 1:
        what = "no rollout" if not found else f"{len(found)} rollouts"
        print(f"dcc rollout: {what} with id {args.id!r}", file=sys.stderr)
        return EXIT_REFUSED
    try:
        run = await env.runner_of(found[0])
    except InventoryError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print("dcc rollout: the recorded rollout file cannot be planned again", file=sys.stderr)
        return EXIT_REFUSED
    for step in await run.in_flight():
        print(
            f"in flight when the console stopped: {step.node} {step.step} "
            "(outcome unknown): verified first",
            flush=True,
        )
    if run.doc.gate.approval and not sys.stdin.isatty():
        print(
            "dcc rollout: refused: gate.approval needs a terminal (or the console)", file=sys.stderr
        )
        return EXIT_REFUSED
    run.listeners.append(_printer(time.monotonic()))
    run.listeners.append(_wave_approver(run))
    try:
        status = await run.resume()
    except RolloutRefused as exc:
        print(f"dcc rollout: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    return await _summary(env, run, status)


async def _summary(env: RolloutEnv, run: RolloutRunner, status: str) -> int:
    from console.wizards.rollout_progress import build_progress, render_text

    row = await env.state.get(run.id)
    if row is not None:
        progress = build_progress(
            row,
            await env.state.nodes(run.id),
            await env.state.steps(run.id),
            await env.state.gates(run.id),
            time.time(),
            labels={w.index: w.label for w in run.plan.waves},
        )
        print("\n".join(render_text(progress)))
    if status == "halted":
        print(f"halted: decide in the console (w, r), then: dcc rollout resume {run.id}")
    return EXIT_FOR_STATUS.get(status, EXIT_REFUSED)
