"""The ActionRunner: the only way the console changes the world.

Every change goes through one path::

    plan():    role check -> validate inputs -> preview each target -> Plan
    execute(): typed confirmation -> audit "intent" (committed) -> per target:
               lease -> execute (timeout) -> verify -> audit "result" -> release

A refusal at any step is audited (phase ``refused``) and raised as
``ActionRefused``; cancelling a plan writes nothing. Plugin code never crashes
the runner: its exceptions become ``failed`` outcomes, its timeouts
``unknown`` (the side effect may or may not have happened). If the intent
cannot be committed nothing runs (fail closed). If a result cannot be
committed it goes to the fallback journal and the runner refuses new actions.

Each target's lease/execute/verify/record steps live in ``console.action_target``.

``FAULTPOINT(name)`` is called at each state transition; tests replace it to
raise or kill at a precise point.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from console.action_plan import (
    ActionInputError,
    ActionRefused,
    ActionResult,
    OutcomeName,
    Plan,
    confirm_text_for,
)
from console.action_target import run_target
from console.audit import AuditLog, AuditWriteError, PendingAction
from console.identity import Operator
from console.plugin import ActionInputs, ActionSpec, Preview, Role, Target
from console.redact import redact_text, secret_values

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory
    from console.store import StoreView
    from console.transports import Transports

log = logging.getLogger(__name__)

__all__ = [
    "FAULTPOINT",
    "ActionInputError",
    "ActionRefused",
    "ActionResult",
    "ActionRunner",
    "OutcomeName",
    "Plan",
    "confirm_text_for",
]


def _no_fault(name: str) -> None:
    """Default FAULTPOINT: does nothing."""


FAULTPOINT: Callable[[str], None] = _no_fault
"""Called with a transition name; tests replace it (monkeypatch) to raise or kill.

Names: ``plan.checked``, ``execute.confirmed``, ``intent.before``,
``intent.committed``, ``target.leased``, ``target.executed``,
``target.verified``, ``result.committed``, ``lease.released``, ``execute.done``.
"""


def _fault(name: str) -> None:
    FAULTPOINT(name)  # looked up at call time so a replacement takes effect


@dataclass(frozen=True, slots=True)
class _Context:
    """The ``ActionContext`` plugin coroutines receive."""

    inventory: Inventory
    transports: Transports
    store: StoreView
    config: Any
    operator: str


class ActionRunner:
    """Runs actions for one operator, with the checks, audit and leases around them.

    Args:
        audit: the open audit log.
        inventory, transports, store: given to plugin coroutines.
        operator: who acts (written on every row).
        role: the operator's resolved role.
        read_only: refuse every action (``--read-only``).
        plugin_configs: validated plugin configs by plugin name.
        clock: monotonic clock for durations.
        concurrency: targets run at once (1: one after another).
        preview_timeout: seconds a preview may take.
    """

    def __init__(
        self,
        audit: AuditLog,
        inventory: Inventory,
        transports: Transports,
        store: StoreView,
        operator: Operator,
        role: Role,
        read_only: bool,
        plugin_configs: Mapping[str, Any],
        clock: Callable[[], float] = time.monotonic,
        *,
        concurrency: int = 1,
        preview_timeout: float = 60.0,
    ) -> None:
        self.audit = audit
        self.inventory = inventory
        self.transports = transports
        self.store = store
        self.operator = operator
        self.role = role
        self.read_only = read_only
        self.plugin_configs = plugin_configs
        self.clock = clock
        self.concurrency = max(1, concurrency)
        self.preview_timeout = preview_timeout
        self.holder = f"{operator.user}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        """This runner's lease holder id (unique per console process)."""
        self.shutting_down = False
        self.in_flight = 0
        """Executions that started and have not recorded all their results."""
        self._idle = asyncio.Event()
        self._idle.set()

    # ------------------------------------------------------------------ helpers

    def context_for(self, spec: ActionSpec) -> _Context:
        """The context the plugin's coroutines for ``spec`` receive."""
        plugin = spec.id.split(".", 1)[0]
        return _Context(
            self.inventory,
            self.transports,
            self.store,
            self.plugin_configs.get(plugin),
            self.operator.user,
        )

    async def write_row(
        self, phase: str, spec: ActionSpec, targets: Sequence[str], **kw: Any
    ) -> bool:
        """Append a row; on failure keep it in the fallback journal. True if committed."""
        try:
            await self.audit.append_async(
                phase,
                action=spec.id,
                targets=targets,
                secret_fields=spec.secret_inputs,
                operator=self.operator,
                **kw,
            )
            return True
        except AuditWriteError as exc:
            log.error("%s", exc)
            self.audit.write_fallback(exc.event)
            return False

    async def _refuse(
        self,
        spec: ActionSpec,
        targets: Sequence[Target],
        inputs: Mapping[str, Any],
        reason: str,
    ) -> ActionRefused:
        await self.write_row(
            "refused",
            spec,
            [t.name for t in targets],
            params=dict(inputs),
            outcome="refused",
            detail=reason,
        )
        return ActionRefused(reason)

    def _permission_problem(self, spec: ActionSpec) -> str | None:
        if self.read_only:
            return f"{spec.id} ({spec.label}) refused: the console is read-only"
        if spec.role > self.role:
            return (
                f"{spec.id} ({spec.label}) refused: needs role {spec.role.name.lower()}, "
                f"{self.operator.user} has {self.role.name.lower()}"
            )
        if self.shutting_down:
            return f"{spec.id} refused: the console is shutting down"
        return None

    @staticmethod
    def _validate(spec: ActionSpec, inputs: Mapping[str, Any]) -> ActionInputs:
        try:
            return spec.inputs.model_validate(dict(inputs))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'inputs'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ActionInputError(f"{spec.id}: invalid input: {problems}") from None

    @staticmethod
    def _dump(inputs: ActionInputs | Mapping[str, Any]) -> dict[str, Any]:
        if isinstance(inputs, BaseModel):
            return inputs.model_dump(mode="python")
        return dict(inputs)

    # ------------------------------------------------------------------ plan

    async def plan(
        self, spec: ActionSpec, targets: Sequence[Target], inputs: Mapping[str, Any]
    ) -> Plan:
        """Check, validate and preview; returns what the confirmation dialog shows.

        Raises:
            ActionRefused: role, read-only, no targets, wrong target kind, or a
                preview that refused (each audited).
            ActionInputError: an input did not validate (not audited: nothing was tried).
        """
        targets = tuple(targets)
        problem = self._permission_problem(spec)
        if problem is not None:
            raise await self._refuse(spec, targets, inputs, problem)
        validated = self._validate(spec, inputs)
        if not targets:
            raise await self._refuse(spec, targets, inputs, f"{spec.id} refused: no targets")
        wrong = [t.name for t in targets if t.kind != spec.target_kind]
        if wrong:
            raise await self._refuse(
                spec,
                targets,
                inputs,
                f"{spec.id} applies to {spec.target_kind} targets, not {', '.join(wrong)}",
            )
        ctx = self.context_for(spec)
        previews = []
        for target in targets:
            try:
                async with asyncio.timeout(self.preview_timeout):
                    preview = await spec.preview(ctx, target, validated)
            except TimeoutError:
                preview = Preview((), refuse=f"preview of {target.name} timed out")
            except Exception as exc:
                preview = Preview((), refuse=f"preview of {target.name} failed: {exc}")
            if preview.refuse:
                raise await self._refuse(
                    spec, targets, inputs, f"{spec.id} refused for {target.name}: {preview.refuse}"
                )
            previews.append(preview)
        _fault("plan.checked")
        confirm = confirm_text_for(targets) if spec.destructive else None
        return Plan(spec, targets, validated, tuple(previews), confirm, dict(inputs))

    def cancel(self, plan: Plan) -> None:
        """The operator cancelled: nothing ran, so nothing is written."""
        log.debug("plan for %s cancelled", plan.spec.id)

    # ------------------------------------------------------------------ execute

    async def execute(self, plan: Plan, typed: str | None) -> list[ActionResult]:
        """Run a confirmed plan, target by target (``concurrency`` at once).

        Args:
            plan: from ``plan``.
            typed: for a destructive action, what the operator typed; it must equal
                ``plan.confirm_text`` exactly (no trimming, no case folding).

        Raises:
            ActionRefused: refused before anything ran (audited where possible).
        """
        spec = plan.spec
        params = self._dump(plan.inputs)
        if self.audit.degraded:
            raise ActionRefused(
                f"{spec.id} refused: the audit log could not record a result; "
                f"see {self.audit.fallback_path}. Fix the audit database and restart."
            )
        # Checked again here: a Plan is plain data, the executor is the gate.
        problem = self._permission_problem(spec)
        if problem is None and not plan.targets:
            problem = f"{spec.id} refused: no targets"
        if problem is None and spec.destructive:
            expected = confirm_text_for(plan.targets)
            if plan.confirm_text != expected or typed != expected:
                problem = f"{spec.id} refused: the typed confirmation does not match {expected!r}"
        if problem is not None:
            raise await self._refuse(spec, plan.targets, params, problem)
        _fault("execute.confirmed")

        uid = uuid.uuid4().hex
        secrets = secret_values(params, spec.secret_inputs)
        preview_text = "; ".join(line for p in plan.previews for line in p.lines)[:2000]
        _fault("intent.before")
        try:
            await self.audit.append_async(
                "intent",
                action=spec.id,
                targets=plan.target_names,
                params=params,
                action_uid=uid,
                secret_fields=spec.secret_inputs,
                operator=self.operator,
                detail=redact_text(preview_text, secrets),
            )
        except AuditWriteError as exc:
            # Fail closed: without the intent on record, nothing runs.
            raise ActionRefused(
                f"{spec.id} refused: the audit log cannot record the intent ({exc})"
            ) from exc
        _fault("intent.committed")

        self.in_flight += 1
        self._idle.clear()
        try:
            sem = asyncio.Semaphore(self.concurrency)

            async def one(target: Target) -> ActionResult:
                async with sem:
                    return await run_target(self, plan, target, uid, secrets, _fault)

            results = list(await asyncio.gather(*(one(t) for t in plan.targets)))
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()
        _fault("execute.done")
        return results

    # ------------------------------------------------------------------ lifecycle

    async def begin_shutdown(self, reason: str, grace_s: float = 30) -> None:
        """The operator is gone (SIGHUP) or the console quits: record it, start
        nothing new, and give running executions ``grace_s`` to record results.

        Executions still running after the grace period are left to
        ``reconcile_on_start`` (their outcome is unknown).
        """
        first = not self.shutting_down
        self.shutting_down = True
        if first:
            try:
                await self.audit.append_async(
                    "disconnect",
                    detail=f"operator disconnected: {reason}",
                    params={"in_flight": self.in_flight},
                    operator=self.operator,
                )
            except AuditWriteError as exc:
                self.audit.write_fallback(exc.event)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s):
                await self._idle.wait()
        if self.in_flight:
            log.error("%d action(s) still running after %.0fs grace", self.in_flight, grace_s)

    async def release_dead_leases(self, targets: Sequence[str] | None = None) -> list[str]:
        """Free the leases a console on this host left when it died; returns what was freed.

        A killed console's leases would otherwise hold its targets until their time
        to live ends (minutes) and every retry would be refused. A lease is freed
        only when its holder (``user@host:pid:nonce``) ran on this host and that
        process is gone; a live console's lease is never touched. Each is audited.
        """
        here = socket.gethostname()
        wanted = None if targets is None else set(targets)
        freed = []
        for key, holder in await self.audit.live_leases_async():
            if holder == self.holder or (wanted is not None and key not in wanted):
                continue
            who, _, rest = holder.partition("@")
            host, _, tail = rest.partition(":")
            pid_text = tail.split(":", 1)[0]
            if host != here or not pid_text.isdigit() or _pid_alive(int(pid_text)):
                continue
            await self.audit.release_lease_async(key, holder)
            what = key.partition(":")[2] or key
            freed.append(f"{what} (held by {who}'s console, pid {pid_text}, which is gone)")
            await self.audit.append_async(
                "reconcile",
                action="lease.release",
                targets=[what],
                outcome="ok",
                detail=f"freed the lease of a dead console: {holder}",
                operator=self.operator,
            )
        return freed

    async def reconcile_on_start(self) -> list[PendingAction]:
        """Mark intents without results as ``unknown`` and return them for display.

        An intent of another console on this host whose process still runs is
        in flight, not lost, and is left alone. (Consoles on other hosts sharing
        one database file are not told apart: keep one database per host.) The
        leases of dead consoles on this host are freed first.

        The ``unknown`` row is written at once; reading the targets back (the
        spec's ``verify``, never ``execute``) is ``console.action_reconcile``'s,
        run by the session in the background.
        """
        if not self.read_only:
            await self.release_dead_leases()
        pending = await self.audit.pending_actions_async()
        here = socket.gethostname()
        out = []
        for p in pending:
            if p.console_host == here and p.pid != os.getpid() and _pid_alive(p.pid):
                continue
            out.append(p)
            await self.audit.append_async(
                "reconcile",
                action=p.action,
                targets=p.targets,
                action_uid=p.action_uid,
                outcome="unknown",
                detail="console stopped before the result was recorded: verify the target",
                operator=self.operator,
            )
        return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, another user's
    return pid > 0
