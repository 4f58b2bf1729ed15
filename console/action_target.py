"""One target of a confirmed action: lease -> execute -> verify -> record -> release.

The ActionRunner (``console.actions``) owns the checks and the intent row; this
module runs each target under it. Plugin code never crashes it: exceptions
become ``failed`` outcomes, timeouts ``unknown`` after one read-back.

``fault`` is the runner's FAULTPOINT caller, passed in rather than imported so
that a test's replacement of ``console.actions.FAULTPOINT`` takes effect here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from console.action_plan import ActionResult, OutcomeName, Plan
from console.plugin import ActionContext, Outcome, Target
from console.redact import redact_text
from console.transports import CommandTimeout, HostUnreachable

if TYPE_CHECKING:  # pragma: no cover
    from console.actions import ActionRunner

log = logging.getLogger(__name__)

Fault = Callable[[str], None]


async def run_target(
    runner: ActionRunner,
    plan: Plan,
    target: Target,
    uid: str,
    secrets: list[str],
    fault: Fault,
) -> ActionResult:
    """Run ``plan`` on one target under its lease and record the result row."""
    spec = plan.spec
    if runner.shutting_down:
        return await _record(
            runner,
            plan,
            target,
            uid,
            "refused",
            "not started: the console is shutting down",
            0,
            fault=fault,
        )
    lease_key = f"{target.kind}:{target.name}"
    try:
        # Long enough for execute and verify, short enough that a dead console's lease lapses.
        ttl = 2 * spec.timeout + 60
        got = await runner.audit.acquire_lease_async(lease_key, runner.holder, ttl)
    except Exception as exc:
        return await _record(
            runner,
            plan,
            target,
            uid,
            "refused",
            f"could not take the lease on {target.name}: {exc}",
            0,
            fault=fault,
        )
    if not got:
        try:
            other = await asyncio.to_thread(runner.audit.lease_holder, lease_key)
        except Exception:
            other = None
        return await _record(
            runner,
            plan,
            target,
            uid,
            "refused",
            f"{target.name} is being acted on by another console ({other or 'unknown'})",
            0,
            fault=fault,
        )
    try:
        fault("target.leased")
        outcome, detail, output, ms = await _attempt(runner, plan, target, fault)
        detail = redact_text(detail, secrets)
        output = redact_text(output, secrets)
        fault("target.verified")
        return await _record(runner, plan, target, uid, outcome, detail, ms, output, fault=fault)
    finally:
        try:
            await runner.audit.release_lease_async(lease_key, runner.holder)
        except Exception:
            log.exception("could not release the lease on %s (it expires)", lease_key)
        fault("lease.released")


async def _attempt(
    runner: ActionRunner, plan: Plan, target: Target, fault: Fault
) -> tuple[OutcomeName, str, str, int]:
    """Execute then verify one target; never raises for plugin errors."""
    spec = plan.spec
    ctx = runner.context_for(spec)
    start = runner.clock()

    def elapsed() -> int:
        return int((runner.clock() - start) * 1000)

    try:
        async with asyncio.timeout(spec.timeout):
            result: Outcome = await spec.execute(ctx, target, plan.inputs)
    except (TimeoutError, CommandTimeout, HostUnreachable) as exc:
        # The command may or may not have taken effect (RELIABILITY.md F1, F3): never
        # "failed", and never retried; read the state back to tell the operator more.
        why = (
            f"no answer within {spec.timeout:g}s"
            if isinstance(exc, TimeoutError)
            else f"{type(exc).__name__}: {exc}"
        )
        outcome, detail = await _read_back(ctx, plan, target, why)
        return outcome, detail, "", elapsed()
    except Exception as exc:
        log.warning("%s on %s raised", spec.id, target.name, exc_info=True)
        return "failed", f"{type(exc).__name__}: {exc}", "", elapsed()
    fault("target.executed")
    if not result.ok:
        return "failed", result.detail or "failed", result.output, elapsed()
    try:
        async with asyncio.timeout(spec.timeout):
            checked = await spec.verify(ctx, target, plan.inputs, result)
    except TimeoutError:
        return "unknown", "executed; verification timed out", result.output, elapsed()
    except Exception as exc:
        return (
            "unknown",
            f"executed; verification raised {type(exc).__name__}: {exc}",
            result.output,
            elapsed(),
        )
    if not checked.ok:
        detail = f"verification failed: {checked.detail or 'not in the expected state'}"
        return "failed", detail, result.output, elapsed()
    return "ok", checked.detail or result.detail, result.output, elapsed()


async def _read_back(
    ctx: ActionContext, plan: Plan, target: Target, why: str
) -> tuple[OutcomeName, str]:
    """After an unacknowledged command, verify once: "ok" only if the wanted state shows.

    The verify is told the command may have run (``ok=True``): plugins' verifies hand a
    failed outcome back unread, and a read-back that reads nothing only says "unknown".
    """
    spec = plan.spec
    may_have_run = Outcome(True, f"not acknowledged: {why}")
    try:
        async with asyncio.timeout(spec.timeout):
            checked = await spec.verify(ctx, target, plan.inputs, may_have_run)
    except Exception as exc:  # the read-back is best effort: the outcome stays unknown
        return (
            "unknown",
            f"{why}; read-back failed ({type(exc).__name__}: {exc}): verify {target.name}",
        )
    if checked.ok:
        return "ok", f"{why}, but the read-back shows it done: {checked.detail}"
    return "unknown", f"{why}; read-back: {checked.detail or 'not in the wanted state'}"


async def _record(
    runner: ActionRunner,
    plan: Plan,
    target: Target,
    uid: str,
    outcome: OutcomeName,
    detail: str,
    ms: int,
    output: str = "",
    *,
    fault: Fault,
) -> ActionResult:
    """Write the target's ``result`` row (or the fallback journal) and return it."""
    await runner.write_row(
        "result",
        plan.spec,
        [target.name],
        outcome=outcome,
        action_uid=uid,
        duration_ms=ms,
        detail=detail,
    )
    fault("result.committed")
    return ActionResult(target, outcome, detail, output, ms, uid)
