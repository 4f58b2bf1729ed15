"""After a restart: read back what an interrupted action left (RELIABILITY.md F11).

``ActionRunner.reconcile_on_start`` records each action a dead console left
without a result as ``unknown`` at once. Then, in the background (the console's
start never waits on a target), ``verify_interrupted`` runs the action spec's
own read-only ``verify`` for each of its targets -- never ``execute``: nothing
is run again by itself -- and records what it read as its own ``reconcile``
row:

- ``verified-applied``: the target reads back in the state the action wanted
  (for an action whose wanted state also held before it, such as a restart of
  a service that was running, this cannot tell whether it ran);
- ``verified-not-applied``: the target is not in that state;
- ``unknown``: not verified (no spec or no real verify in this console, inputs
  or target that cannot be rebuilt, a verify that raised or ran out of time,
  a console that may not run the action): verify by hand.

``verify`` is asked as after a successful execute (``Outcome(ok=True)``):
most verifies return an unsuccessful outcome unchanged without reading
anything. One that hands back the very outcome it was given read nothing
(``rollout.command``, ``power.identify``) and counts as no verify.

A read-only console writes nothing here and runs no verify: it keeps today's
single ``unknown`` row and says "verify by hand". Nor is a row written for an
action this console has no spec for (``rollout.command``, the drills'
dead man's switches): the flow that owns it reconciles it its own way; the
alert still says it was not verified.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from console.audit import AuditWriteError, PendingAction
from console.plugin import ActionInputs, ActionSpec, Outcome, Target
from console.redact import REDACTED

if TYPE_CHECKING:  # pragma: no cover
    from console.actions import ActionRunner

log = logging.getLogger(__name__)

VerdictName = Literal["verified-applied", "verified-not-applied", "unknown"]

DEADLINE_S = 180.0
"""All verifications of one start together; each is also bounded by its spec's timeout."""
CONCURRENCY = 8
"""Targets verified at once."""
MAX_DETAIL = 1000
PROBE = "result not recorded (the console stopped); reading the state back"
"""The detail of the outcome ``verify`` is handed (some verifies repeat it in theirs)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What reading one target of an interrupted action back found."""

    action_uid: str
    action: str
    target: str
    outcome: VerdictName
    detail: str

    @property
    def phrase(self) -> str:
        """How the alert and the notice say it."""
        if self.outcome == "verified-applied":
            return f"verified done ({self.detail})"
        if self.outcome == "verified-not-applied":
            return f"read back as NOT done, check before running it again ({self.detail})"
        return f"outcome unknown, verify by hand ({self.detail})"

    @property
    def notice(self) -> str:
        """``services.restart of minio-stor01 interrupted: verified done (...)``."""
        return f"{self.action} of {self.target} interrupted: {self.phrase}"


def pending_message(p: PendingAction, verdicts: Mapping[tuple[str, str], Verdict]) -> str:
    """The alert for an interrupted action: "unknown" until its targets are read back."""
    got = [verdicts.get((p.action_uid, t)) for t in p.targets]
    if not any(got):
        return (
            f"outcome unknown: {p.action} (console stopped before its result was recorded; "
            "verify the target)"
        )
    parts = [(t, v.phrase if v else "being checked") for t, v in zip(p.targets, got, strict=True)]
    if len(got) == 1 and got[0] is not None:
        return got[0].notice
    return f"{p.action} interrupted: " + "; ".join(f"{t}: {text}" for t, text in parts)


async def verify_interrupted(
    runner: ActionRunner,
    pending: Sequence[PendingAction],
    specs: Mapping[str, ActionSpec],
    *,
    deadline_s: float = DEADLINE_S,
    on_verdict: Callable[[Verdict], None] | None = None,
) -> list[Verdict]:
    """Read back each target of each interrupted action and record the verdicts.

    Args:
        runner: this console's runner (audit, inventory, transports, role).
        pending: what ``reconcile_on_start`` returned (already recorded ``unknown``).
        specs: the actions this console knows, by id.
        deadline_s: for all of them together; a verify still running then is ``unknown``.
        on_verdict: called with each verdict as it is known (the session's alerts).

    Cancelling it (the console stops) records the targets not yet read back as
    ``unknown`` before it ends.
    """
    end = time.monotonic() + deadline_s
    sem = asyncio.Semaphore(CONCURRENCY)
    done: dict[tuple[str, str], Verdict] = {}

    async def one(p: PendingAction, target: str) -> None:
        verdict = await _judge(runner, p, target, specs.get(p.action), sem, end, deadline_s)
        done[(p.action_uid, target)] = verdict
        if p.action in specs:
            await _record(runner, verdict)
        if on_verdict is not None:
            on_verdict(verdict)

    jobs = [(p, t) for p in pending for t in p.targets]
    try:
        await asyncio.gather(*(one(p, t) for p, t in jobs))
    except asyncio.CancelledError:
        left = [
            Verdict(
                p.action_uid,
                p.action,
                t,
                "unknown",
                "not verified: the console stopped before the read-back finished",
            )
            for p, t in jobs
            if (p.action_uid, t) not in done and p.action in specs
        ]
        for verdict in left:  # the cancel was delivered: these awaits run
            await _record(runner, verdict)
            done[(verdict.action_uid, verdict.target)] = verdict
        raise
    return [done[(p.action_uid, t)] for p, t in jobs]


async def _judge(
    runner: ActionRunner,
    p: PendingAction,
    name: str,
    spec: ActionSpec | None,
    sem: asyncio.Semaphore,
    end: float,
    deadline_s: float,
) -> Verdict:
    def verdict(outcome: VerdictName, detail: str) -> Verdict:
        return Verdict(p.action_uid, p.action, name, outcome, detail[:MAX_DETAIL])

    if runner.read_only:
        return verdict("unknown", "not verified: this console is read-only")
    if spec is None:
        return verdict("unknown", f"not verified: this console has no action {p.action}")
    if spec.role > runner.role:
        return verdict(
            "unknown",
            f"not verified: needs role {spec.role.name.lower()}, "
            f"{runner.operator.user} has {runner.role.name.lower()}",
        )
    inputs = await _inputs(runner, p, spec)
    if isinstance(inputs, str):
        return verdict("unknown", f"not verified: {inputs}")
    target = _target(runner, spec, name)
    if isinstance(target, str):
        return verdict("unknown", f"not verified: {target}")
    probe = Outcome(True, PROBE)
    overall = asyncio.timeout_at(_loop_time_at(end))
    own: asyncio.Timeout | None = None
    try:
        async with overall, sem:
            own = asyncio.timeout(spec.timeout)  # its clock starts once the semaphore is held
            async with own:
                checked = await spec.verify(runner.context_for(spec), target, inputs, probe)
    except TimeoutError as exc:
        if not (overall.expired() or (own is not None and own.expired())):
            # The plugin's own TimeoutError (a silent BMC), not one of ours.
            return verdict("unknown", f"not verified: the read-back raised {_text(exc)}")
        limit = f"the {deadline_s:g}s deadline" if overall.expired() else f"{spec.timeout:g}s"
        return verdict("unknown", f"not verified: the read-back did not finish within {limit}")
    except Exception as exc:  # plugin code never stops the console
        log.warning("verify of %s on %s raised", spec.id, name, exc_info=True)
        return verdict("unknown", f"not verified: the read-back raised {_text(exc)}")
    if checked is probe:  # handed back untouched: it reads nothing
        return verdict("unknown", f"not verified: {spec.id} has no verify that reads the target")
    if checked.ok:
        return verdict("verified-applied", checked.detail or "in the wanted state")
    return verdict("verified-not-applied", checked.detail or "not in the wanted state")


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _loop_time_at(end_monotonic: float) -> float:
    """``end`` (time.monotonic) on the running loop's clock, for ``asyncio.timeout_at``."""
    loop = asyncio.get_running_loop()
    return loop.time() + (end_monotonic - time.monotonic())


async def _inputs(runner: ActionRunner, p: PendingAction, spec: ActionSpec) -> ActionInputs | str:
    """The inputs the runner validated, rebuilt from the intent row; or why they cannot be."""

    def read(conn: Any) -> Any:
        row = conn.execute("SELECT params FROM events WHERE id = ?", (p.intent_id,)).fetchone()
        return None if row is None else row["params"]

    try:
        text = await runner.audit.read_with_async(read)
        params = json.loads(text) if text else {}
    except Exception as exc:
        return f"the intent's inputs could not be read ({type(exc).__name__}: {exc})"
    if not isinstance(params, dict):
        return "the intent's inputs are not a mapping"
    hidden = sorted(_redacted(params))
    if hidden:
        return f"the intent's inputs hold a secret the audit log does not keep: {', '.join(hidden)}"
    try:
        return spec.inputs.model_validate(params)
    except ValidationError as exc:
        return f"the intent's inputs do not validate any more ({exc.error_count()} error(s))"


def _redacted(params: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    for key, value in params.items():
        if value == REDACTED:
            yield prefix + str(key)
        elif isinstance(value, Mapping):
            yield from _redacted(value, f"{prefix}{key}.")


def _target(runner: ActionRunner, spec: ActionSpec, name: str) -> Target | str:
    """The target as the palette offered it (its attrs matter to some verifies)."""
    config = runner.plugin_configs.get(spec.id.split(".", 1)[0])
    try:
        found = list(spec.targets(runner.inventory, config))
        if spec.live_targets is not None:
            found += list(spec.live_targets(runner.store, runner.inventory, config))
    except Exception as exc:
        return f"its targets could not be listed ({type(exc).__name__}: {exc})"
    for target in found:
        if target.name == name and target.kind == spec.target_kind:
            return target
    return f"{name} is not among the {spec.target_kind} targets of {spec.id} now"


async def _record(runner: ActionRunner, verdict: Verdict) -> None:
    """The verdict's own ``reconcile`` row (none from a read-only console)."""
    if runner.read_only:
        return
    try:
        await runner.audit.append_async(
            "reconcile",
            action=verdict.action,
            targets=[verdict.target],
            action_uid=verdict.action_uid,
            outcome=verdict.outcome,
            detail=verdict.detail,
            operator=runner.operator,
        )
    except AuditWriteError as exc:
        log.error("%s", exc)
        runner.audit.write_fallback(exc.event)
    except Exception:  # a closed log (the console stopping): the unknown row stands
        log.exception("could not record the read-back of %s", verdict.action_uid)
