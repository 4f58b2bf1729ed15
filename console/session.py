"""A running console's parts, wired together: inventory, plugins, store, poller, audit, actions.

The app builds a ``Session`` after its first frame has painted (the heavy
imports happen here, not at start-up). Tests build one directly, with or
without a lab, and drive it without Textual.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from console.gc_policy import GcPolicy
from console.health import AlertBook
from console.inventory.model import Inventory
from console.options import LaunchOptions, state_dir
from console.plugin import ActionSpec, Finding, Plugin, Severity
from console.registry import Registry, discover
from console.store import Store

if TYPE_CHECKING:  # pragma: no cover
    from console.actions import ActionRunner
    from console.approvals import Approvals
    from console.audit import AuditLog
    from console.identity import Operator
    from console.incidents import Incidents
    from console.lab import Lab
    from console.poller import Poller
    from console.transports import Transports

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_INVENTORY = REPO_ROOT / "inventory" / "demo.yaml"


@dataclass(slots=True)
class Session:
    """Everything a console needs once started."""

    inventory: Inventory
    registry: Registry
    store: Store
    options: LaunchOptions
    transports: Transports | None = None
    poller: Poller | None = None
    audit: AuditLog | None = None
    runner: ActionRunner | None = None
    lab: Lab | None = None
    pending: list[Any] = field(default_factory=list)
    """Actions found with an intent and no result when this console started."""
    verdicts: dict[tuple[str, str], Any] = field(default_factory=dict)
    """(action uid, target) -> what reading the target back found (console.action_reconcile)."""
    reconciling: asyncio.Task[Any] | None = None
    """The background read-back of ``pending`` (never delays the start)."""
    interrupted_rollouts: list[Any] = field(default_factory=list)
    unfinished_runbooks: list[Any] = field(default_factory=list)
    """Runbook runs an earlier console (or operator) left running or paused."""
    unfinished_drills: list[Any] = field(default_factory=list)
    """Drills with no end recorded: their console stopped mid-drill (or is running one now)."""
    """Rollouts a console left running, halted or awaiting approval."""
    notices: list[str] = field(default_factory=list)
    """Things to tell the operator once the screen is up."""
    background: set[asyncio.Future[Any]] = field(default_factory=set)
    """Audit writes started from callbacks (kept so they are not garbage-collected)."""
    console_lock: TextIO | None = None
    closers: list[Callable[[], Any]] = field(default_factory=list)
    """Blocking cleanups run (in a thread) when the console stops: the demo's Prometheus."""
    """Held while this console runs; None when another console holds it (a warning)."""
    alert_book: AlertBook = field(default_factory=AlertBook)
    """Re-evaluates per-node alert rules only for nodes whose readings changed."""
    gc_policy: GcPolicy | None = None
    """Keeps the cyclic garbage collector from stalling the loop (started by start_session)."""
    extra_actions: list[ActionSpec] = field(default_factory=list)
    """Actions no plugin declares: the lab's (inject/clear faults, dead man's switches)."""
    approvals: Approvals | None = None
    """The two-person rule: requests and decisions, in the audit database."""
    incidents: Incidents | None = None
    """Open incidents, their timelines and hand-off notes, in the audit database."""

    @property
    def plugins(self) -> Sequence[Plugin]:
        return self.registry.plugins

    @property
    def demo(self) -> bool:
        return self.inventory.demo

    @property
    def read_only(self) -> bool:
        return self.options.read_only

    def findings(self) -> list[Finding]:
        found = self.alert_book.evaluate(self.store, self.inventory, self.plugins)
        if self.pending:
            from console.action_reconcile import pending_message

            for p in self.pending:
                found.append(
                    Finding(
                        Severity.WARNING,
                        ",".join(p.targets or ["?"]),
                        pending_message(p, self.verdicts),
                        key=f"pending:{p.action_uid}",
                    )
                )
        for r in self.interrupted_rollouts:
            found.append(
                Finding(
                    Severity.WARNING,
                    f"rollout:{r.id}",
                    f"rollout {r.name!r} interrupted ({r.status}"
                    + (f": {r.halt_reason}" if r.halt_reason else "")
                    + "): resume or abort it; no step runs twice",
                    key=f"rollout:{r.id}",
                )
            )
        for run in self.unfinished_runbooks:
            found.append(
                Finding(
                    Severity.WARNING,
                    run.target,
                    f"runbook {run.title!r} on {run.target} left {run.status}: "
                    "continue it (w, b) or abort it",
                    key=f"runbook:{run.id}",
                    node=run.node or None,
                )
            )
        for drill in self.unfinished_drills:
            running = getattr(drill, "running_pid", None)
            if running is not None:  # judged at start: another console here runs it now
                found.append(
                    Finding(
                        Severity.WARNING,
                        f"drill:{drill.id}",
                        f"drill {drill.title!r} started {drill.started} is running in another "
                        f"console (pid {running})",
                        key=f"drill:{drill.id}",
                    )
                )
                continue
            found.append(
                Finding(
                    Severity.CRITICAL if drill.restored is not True else Severity.WARNING,
                    f"drill:{drill.id}",
                    f"drill {drill.title!r} started {drill.started} has no end: its console "
                    "stopped mid-drill; check the fault was restored (dead man's switch) and "
                    "the steady state holds",
                    key=f"drill:{drill.id}",
                )
            )
        return found

    def refresh_alerts(self) -> None:
        self.store.set_findings(self.findings())

    async def stop(self) -> None:
        if self.reconciling is not None:  # a read-back never holds the console open
            self.reconciling.cancel()
            await asyncio.gather(self.reconciling, return_exceptions=True)
        if self.poller is not None:
            await self.poller.stop()
        if self.gc_policy is not None:
            await self.gc_policy.stop()
        if self.background:
            await asyncio.gather(*self.background, return_exceptions=True)
        for plugin in self.plugins:
            if plugin.shutdown is None:
                continue
            try:
                async with asyncio.timeout(10):
                    await plugin.shutdown()
            except Exception:  # one plugin's cleanup must not keep the others running
                log.exception("shutdown of plugin %s failed", plugin.name)
        if self.transports is not None:
            await self.transports.close()
        for close in self.closers:
            await asyncio.to_thread(close)
        if self.lab is not None:
            await self.lab.stop()
        if self.audit is not None:
            self.audit.close()
        if self.console_lock is not None:
            self.console_lock.close()
            self.console_lock = None


def _lab_actions(lab: Lab | None) -> list[ActionSpec]:
    """The lab's own actions in a demo session (drills inject faults with them)."""
    if lab is None:
        return []
    from console.lab.actions import lab_actions, lab_port

    return list(lab_actions(lab_port(lab)))


def hold_console_lock(audit_path: Path) -> TextIO | None:
    """Take ``<audit db>.lock`` (flock, released by the OS if we die); None if held elsewhere.

    Two consoles may share an audit log (leases keep them off the same target),
    but an operator should know (RELIABILITY.md F10).
    """
    path = audit_path.with_name(audit_path.name + ".lock")
    from console.audit_files import file_mode, private_umask

    with private_umask(path.parent):  # a team folder's operators share the lock
        fd = os.open(path, os.O_RDWR | os.O_CREAT, file_mode(path.parent))
    handle = os.fdopen(fd, "r+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


async def _unfinished_runbooks(audit_path: Path) -> list[Any]:
    """Runbook runs left running or paused (only if a runbooks database exists)."""
    from console.wizards.runbook_state import RunbookState

    path = audit_path.with_name("runbooks.db")
    if not path.exists():
        return []
    try:
        state = RunbookState(path)
    except Exception:  # a damaged database must not stop the console; say so in the log
        log.exception("could not open %s", path)
        return []
    try:
        return list(await state.unfinished())
    except Exception:
        log.exception("could not read %s", path)
        return []
    finally:
        state.close()


def _unfinished_drills(audit_path: Path) -> list[Any]:
    """Drills with no end recorded (only if a drills database exists)."""
    from console.wizards.drill_report import drill_history

    try:
        return [d for d in drill_history(audit_path.with_name("drills.db")) if not d.finished]
    except Exception:  # a damaged database must not stop the console; say so in the log
        log.exception("could not read the drill history beside %s", audit_path)
        return []


async def _interrupted_rollouts(audit_path: Path) -> list[Any]:
    """Rollouts an earlier console left unfinished (only if a rollouts database exists)."""
    from console.wizards.rollout_state import RolloutState

    path = audit_path.with_name("rollouts.db")
    if not path.exists():
        return []
    state = RolloutState(path)
    try:
        return list(await state.unfinished())
    except Exception:  # a damaged rollouts DB must not stop the console; say so in the log
        log.exception("could not read %s", path)
        return []
    finally:
        state.close()


async def _read_back_pending(session: Session) -> list[Any]:
    """Verify what each interrupted action left, then update its alert and say so."""
    from console.action_reconcile import Verdict, verify_interrupted

    assert session.runner is not None
    specs = {**session.registry.actions(), **{a.id: a for a in session.extra_actions}}

    def seen(verdict: Verdict) -> None:
        session.verdicts[(verdict.action_uid, verdict.target)] = verdict
        session.notices.append(verdict.notice)
        try:
            session.refresh_alerts()  # the alert now says what was read back
        except Exception:  # the verdict is recorded; the next refresh shows it
            log.exception("could not refresh the alerts")

    return await verify_interrupted(session.runner, session.pending, specs, on_verdict=seen)


def _host_key_recorder(session: Session) -> Callable[[str, str], None]:
    """Records a refused host key in the audit log, once per host per console run.

    A changed key may be a reinstalled host or a machine in the middle; either way
    an operator must see it on the record, not only in a collector's error.
    """
    seen: set[str] = set()

    def record(node: str, message: str) -> None:
        if node in seen or session.audit is None:
            return
        seen.add(node)
        task = asyncio.ensure_future(
            session.audit.append_async(
                "security",
                action="ssh.hostkey_rejected",
                targets=[node],
                outcome="refused",
                detail=message,
            )
        )
        session.background.add(task)
        task.add_done_callback(session.background.discard)

    return record


async def start_session(
    options: LaunchOptions,
    extra_plugins: Sequence[Plugin] = (),
    *,
    operator: Operator | None = None,
) -> Session:
    """Build and start everything: the lab (demo), plugins, transports, audit, poller.

    ``operator`` replaces this process's identity (OS user, terminal, SSH client)
    for tests that run two consoles as two people in one process. Only code can
    pass it: no option or environment variable reaches it, so nobody at a real
    console can act, or approve, as someone else.
    """
    from console.actions import ActionRunner
    from console.approvals import Approvals
    from console.audit import AuditLog, default_audit_db
    from console.identity import Operator
    from console.incidents import Incidents
    from console.inventory import apply_plugin_configs, load_inventory
    from console.poller import Poller
    from console.roles import resolve_role
    from console.transports import Transports

    registry = discover(extra_plugins)
    lab = None
    closers: list[Callable[[], Any]] = []
    if options.inventory is None:
        from console.lab import Lab

        lab_dir = options.lab_state_dir or state_dir() / "demo-lab"
        lab = Lab(
            load_inventory(DEMO_INVENTORY),
            lab_dir,
            registry.plugins,
            scenario=options.scenario,
        )
        await lab.start()
        inventory = lab.inventory
        if options.source == "prometheus":
            from console.lab.prometheus_demo import behind_prometheus

            try:
                inventory, peer = await behind_prometheus(lab, registry.plugins, lab_dir / "prom")
            except BaseException:
                await lab.stop()
                raise
            closers.append(peer.stop)
    else:
        inventory = load_inventory(options.inventory)
    models = {p.name: p.config_model for p in registry.plugins}
    inventory = apply_plugin_configs(inventory, models)

    store = Store(long_history={m for p in registry.plugins for m in p.long_history})
    transports = Transports.create()
    audit_path = options.audit_db
    if audit_path is None and inventory.doc.audit.db:
        audit_path = inventory.resolve_path(inventory.doc.audit.db)
    if audit_path is None:
        audit_path = state_dir() / "demo-audit.db" if lab is not None else default_audit_db()
    # The head hash goes to an anchor file too, so a cut tail or a rewritten chain
    # can be detected (`dcc audit verify --anchor`); the inventory may put it elsewhere.
    anchor = (
        inventory.resolve_path(inventory.doc.audit.anchor)
        if inventory.doc.audit.anchor
        else audit_path.with_name(audit_path.name + ".anchor")
    )
    operator = operator or Operator.current()
    audit = await asyncio.to_thread(
        AuditLog, audit_path, operator=operator, anchor_path=anchor, anchor_every=20
    )
    console_lock = hold_console_lock(audit_path)
    roles_path = options.roles
    if roles_path is None and inventory.doc.roles_file:
        roles_path = inventory.resolve_path(inventory.doc.roles_file)
    role = resolve_role(operator.user, roles_path, demo=inventory.demo)
    runner = ActionRunner(
        audit,
        inventory,
        transports,
        store,
        operator,
        role,
        options.read_only,
        inventory.plugin_configs,
    )
    incidents = Incidents(audit, operator)
    session = Session(
        inventory=inventory,
        registry=registry,
        store=store,
        options=options,
        transports=transports,
        audit=audit,
        runner=runner,
        lab=lab,
        closers=closers,
        extra_actions=_lab_actions(lab),
        console_lock=console_lock,
        approvals=Approvals(
            audit,
            operator,
            role=role,
            read_only=options.read_only,
            expire_after_s=options.approval_expire_s,
        ),
        incidents=incidents,
    )
    if console_lock is None:
        session.notices.append(
            f"another console is using the audit log {audit_path}: its actions and yours "
            "are both recorded, and a target is never acted on by two consoles at once"
        )
    session.pending = list(await runner.reconcile_on_start())
    if session.pending:
        session.notices.append(
            f"{len(session.pending)} action(s) from an earlier console have no recorded "
            "result: listed as 'outcome unknown' in alerts; their targets are being read back"
        )
        session.reconciling = asyncio.ensure_future(_read_back_pending(session))
    await audit.append_async(
        "startup",
        detail=(
            f"console started on {'the demo lab' if lab is not None else inventory.site.name}"
            f"{' (read-only)' if options.read_only else ''}"
        ),
        params={"role": role.name.lower(), "layout": options.layout},
        operator=operator,
    )
    session.interrupted_rollouts = await _interrupted_rollouts(audit_path)
    if session.interrupted_rollouts:
        names = ", ".join(r.name for r in session.interrupted_rollouts)
        session.notices.append(f"interrupted rollout(s): {names} (listed in alerts)")
    session.unfinished_runbooks = await _unfinished_runbooks(audit_path)
    session.unfinished_drills = await asyncio.to_thread(_unfinished_drills, audit_path)
    for what, items in (
        ("runbook run(s)", session.unfinished_runbooks),
        ("drill(s)", session.unfinished_drills),
    ):
        if items:
            session.notices.append(f"{len(items)} unfinished {what} (listed in alerts)")
    for broken in registry.broken:
        session.notices.append(f"plugin {broken.name} failed to load: {broken.error}")
    # The next on-call learns at once what is still open and what was handed over.
    session.notices.extend(await asyncio.to_thread(incidents.startup_notices))
    transports.ssh.on_host_key_rejected = _host_key_recorder(session)
    session.poller = Poller(store, inventory, transports, registry.collectors())
    session.gc_policy = GcPolicy()
    session.gc_policy.start()  # no full-collection pauses at fleet size (console.gc_policy)
    if options.poll:
        session.poller.start()
    return session
