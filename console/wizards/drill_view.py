"""What a drill looks like as text: the stopwatch, the live status, the preflight.

Plain strings (no Textual), shared by the TUI screens, logs and tests. Every
state reads from its glyph or word, so NO_COLOR loses nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from console.plugin import Severity

if TYPE_CHECKING:  # pragma: no cover
    from console.action_plan import Plan
    from console.wizards.drill_model import Scenario
    from console.wizards.drill_run import DrillRun

GLYPH = {Severity.OK: "●", Severity.UNKNOWN: "?", Severity.WARNING: "▲", Severity.CRITICAL: "✖"}


def clock_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{int(seconds // 60):02d}:{seconds % 60:04.1f}"


def _secs(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f}s"


def stopwatch_lines(run: DrillRun) -> list[str]:
    """The drill stopwatch as SCREENS.md draws it (plain text, for the TUI and logs)."""
    s = run.scenario
    lines = [
        f'Drill "{s.title}" · target RTO {s.targets.rto_s:g}s'
        + (f" RPO {s.targets.rpo_s:g}" if s.targets.rpo_s is not None else "")
        + f" · stop if > {s.stop.max_unexpected_failures} unexpected failures"
    ]
    marks = "   ".join(f"{p} {_secs(v)}" for p, v in run.phases.items())
    lines.append(f"{run.step}  {marks}   ▶ {clock_text(run.elapsed)}")
    lines.append("A abort and restore")
    return lines


def live_lines(run: DrillRun) -> list[str]:
    """The live view under the stopwatch: measures, stop conditions, data, switch."""
    s = run.scenario
    out = [f"phase {run.step}   elapsed {clock_text(run.elapsed)}"]
    for phase in s.phases:
        at = run.phases.get(phase)
        mark = "●" if at is not None else "·"
        out.append(f"  {mark} time to {phase:<9} {_secs(at)}")
    rto = run.phases.get(s.rto_phase)
    out.append(
        f"  RTO {_secs(rto)} / target {s.targets.rto_s:g}s"
        + (
            ""
            if s.targets.rpo_s is None
            else f"   RPO {_secs(run.report.rpo.measured_s)} / target {s.targets.rpo_s:g}s"
        )
    )
    unexpected = len(run.unexpected)
    stop_glyph = "✖" if unexpected > s.stop.max_unexpected_failures else "●"
    out.append(
        f"stop conditions {stop_glyph} unexpected {unexpected}/{s.stop.max_unexpected_failures}"
        + (f" ({', '.join(run.unexpected)})" if run.unexpected else "")
    )
    contact = run.contact_age
    out.append(
        f"  contact {'—' if contact is None else f'{contact:.1f}s ago'} "
        f"(limit {s.stop.contact_lost_s:g}s)   max {s.max_duration_s:g}s"
    )
    if run.markers is not None:
        m = run.markers
        out.append(f"  RPO markers: {len(m.acked)} written, {m.failed} refused")
    if s.deadman is not None:
        state = "armed" if run.deadman_armed else "not armed"
        out.append(f"  dead man's switch: {state} ({s.deadman_after_s:g}s)")
    if run.abort_reason:
        out.append(f"ABORTED: {run.abort_reason}")
    return out


def timeline_lines(run: DrillRun, limit: int = 8) -> list[str]:
    """The newest timeline entries, oldest first."""
    return [f"{e.at:6.1f}s {e.who:<8} {e.step:<10} {e.text}" for e in run.report.timeline[-limit:]]


def confirm_text(run: DrillRun, plan: Plan | None) -> str:
    """What the operator types to start a drill (the TUI and ``dcc drill run`` alike): the
    injection's own confirmation (its blast radius: ``triton-inf01``, ``gpu[001-004]``),
    or the scenario's id when the injection needs none."""
    if plan is not None and plan.confirm_text is not None:
        return plan.confirm_text
    return run.scenario.id


def preflight_lines(run: DrillRun, plan: Plan | None, problem: str | None) -> list[str]:
    """What the operator reads before typing the confirmation."""
    s: Scenario = run.scenario
    out = [s.title, f"scope {s.scope}   RTO target {s.targets.rto_s:g}s"]
    if s.targets.rpo_s is not None:
        out[-1] += f"   RPO target {s.targets.rpo_s:g}s"
    if s.description:
        out.append(s.description.strip())
    out.append("steady state (now):")
    for ref in s.steady_state:
        sev, msg = run.check_status(ref)
        out.append(f"  {GLYPH[sev]} {ref.key}: {msg}")
    out.append(f"inject: {s.inject.action} {s.inject.target}")
    if plan is not None:
        for preview in plan.previews:
            out += [f"  {line}" for line in preview.lines]
            out += [f"  ▲ {w}" for w in preview.warnings]
    if problem:
        out.append(f"✖ {problem}")
    out.append(f"restore: {s.restore.action} {s.restore.target}")
    if s.deadman is not None:
        out.append(
            f"dead man's switch: {s.deadman.arm.action} {s.deadman.arm.target}, "
            f"restores by itself after {s.deadman_after_s:g}s unless cancelled"
        )
    else:
        out.append("▲ no dead man's switch: if this console dies, restore by hand")
    if s.data is not None:
        out.append(f"RPO: markers every {s.data.interval_s:g}s to {s.data.target} ({s.data.probe})")
    out.append(
        f"stop: > {s.stop.max_unexpected_failures} unexpected failure(s), "
        f"no contact {s.stop.contact_lost_s:g}s, max {s.max_duration_s:g}s"
    )
    return out
