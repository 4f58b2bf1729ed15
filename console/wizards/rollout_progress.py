"""A rollout's progress as plain values: waves, nodes, steps, elapsed, ETA, failures.

Built from what the rollouts database holds (so another console, or
``dcc rollout status``, sees the same as the one running it) plus, when the
runner is in this process, the step each node is in right now. Rendered as
text for the CLI; the TUI draws the same values.

The ETA is the mean duration of the finished waves times the waves still to
run, less what the current wave has already taken; with no finished wave it
is unknown (None), never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean

from console.sanitize import clean
from console.wizards.rollout_state import GateRow, RolloutRow, StepRow

FORWARD = ("pre_check", "drain", "change", "post_check", "resume", "resume_check")
ROLLBACK = ("rb_drain", "rb_change", "rb_post_check", "rb_resume", "rb_resume_check")
STEP_NAMES = {
    "pre_check": "pre-check",
    "drain": "drain",
    "change": "change",
    "post_check": "post-check",
    "resume": "resume",
    "resume_check": "resume-check",
    "rb_drain": "rollback drain",
    "rb_change": "rollback change",
    "rb_post_check": "rollback post-check",
    "rb_resume": "rollback resume",
    "rb_resume_check": "rollback resume-check",
}
TERMINAL = ("done", "failed", "skipped", "rolled_back")
MARK = {
    "done": "✔",
    "rolled_back": "↺",
    "failed": "✖",
    "skipped": "–",
    "running": "▶",
    "pending": "·",
}
"""A glyph per node state: the state reads without colour (NO_COLOR)."""


@dataclass(frozen=True, slots=True)
class NodeProgress:
    name: str
    wave: int
    state: str
    step: str
    """The step it is in (running), or the last step recorded."""
    done_steps: int
    total_steps: int
    reason: str
    """The first line of the node's detail (why it failed or was skipped)."""
    output: str
    """The failed step's output (the rest of the detail), may be empty."""

    @property
    def fraction(self) -> float:
        if self.state in ("done", "rolled_back"):
            return 1.0
        return self.done_steps / self.total_steps if self.total_steps else 0.0


@dataclass(frozen=True, slots=True)
class WaveProgress:
    index: int
    label: str
    nodes: tuple[NodeProgress, ...]
    gate: str
    """``passed``, ``halted``, ``override`` or empty (not reached)."""

    @property
    def finished(self) -> int:
        return sum(1 for n in self.nodes if n.state in TERMINAL)

    @property
    def fraction(self) -> float:
        return fmean(n.fraction for n in self.nodes) if self.nodes else 1.0


@dataclass(frozen=True, slots=True)
class Progress:
    id: str
    name: str
    status: str
    mode: str
    halt_reason: str
    operator: str
    waves: tuple[WaveProgress, ...]
    elapsed_s: float
    eta_s: float | None
    in_flight: tuple[tuple[str, str], ...]
    """(node, step) started by a console that stopped: verified on resume."""

    @property
    def nodes(self) -> list[NodeProgress]:
        return [n for w in self.waves for n in w.nodes]

    @property
    def failures(self) -> list[NodeProgress]:
        return [n for n in self.nodes if n.state == "failed"]

    @property
    def fraction(self) -> float:
        nodes = self.nodes
        return fmean(n.fraction for n in nodes) if nodes else 0.0


def _wave_span(nodes: Sequence[str], steps: Mapping[tuple[str, str], StepRow]) -> float | None:
    starts = [s.started for (n, _), s in steps.items() if n in nodes and s.started is not None]
    ends = [s.ts for (n, _), s in steps.items() if n in nodes and s.ts is not None]
    if not starts or not ends:
        return None
    return max(0.0, max(ends) - min(starts))


def build_progress(
    row: RolloutRow,
    nodes: Mapping[str, tuple[int, str, str]],
    steps: Mapping[tuple[str, str], StepRow],
    gates: Mapping[int, GateRow],
    now: float,
    current: Mapping[str, str] | None = None,
    labels: Mapping[int, str] | None = None,
) -> Progress:
    """The progress of one recorded rollout at wall time ``now``."""
    rollback = row.mode == "rollback"
    order = ROLLBACK if rollback else FORWARD
    by_wave: dict[int, list[NodeProgress]] = {}
    for name, (wave, state, detail) in nodes.items():
        own = {k: s for (n, k), s in steps.items() if n == name}
        done = sum(1 for k in order if k in own and own[k].state == "done")
        last = max(own.values(), key=lambda s: s.ts or 0.0, default=None)
        step = (current or {}).get(name) or (STEP_NAMES.get(last.step, last.step) if last else "")
        head, _, rest = detail.partition("\n")
        by_wave.setdefault(wave, []).append(
            NodeProgress(name, wave, state, step, done, len(order), head, rest)
        )
    plan_waves: list[list[str]] = list(row.plan.get("waves") or [])
    waves = []
    for index in sorted(by_wave):
        ordered = plan_waves[index] if index < len(plan_waves) else []
        members = sorted(
            by_wave[index], key=lambda n: ordered.index(n.name) if n.name in ordered else 0
        )
        label = (labels or {}).get(index) or ("canary" if index == 0 else f"wave {index}")
        gate = gates[index].decision if index in gates else ""
        if not gate and all(n.state in TERMINAL for n in members) and row.status != "halted":
            gate = "passed" if any(n.state != "skipped" for n in members) else ""
        waves.append(WaveProgress(index, label, tuple(members), gate))
    in_flight = tuple(
        (s.node, STEP_NAMES.get(s.step, s.step)) for s in steps.values() if s.state == "started"
    )
    return Progress(
        id=row.id,
        name=row.name,
        status=row.status,
        mode=row.mode,
        halt_reason=row.halt_reason,
        operator=row.operator,
        waves=tuple(waves),
        elapsed_s=max(0.0, (now if row.status not in _ENDED else row.updated) - row.created),
        eta_s=_eta(waves, steps, now, row.status),
        in_flight=in_flight if row.status not in _ENDED else (),
    )


_ENDED = ("done", "aborted", "rolled_back")


def _eta(
    waves: Sequence[WaveProgress],
    steps: Mapping[tuple[str, str], StepRow],
    now: float,
    status: str,
) -> float | None:
    if status in _ENDED:
        return 0.0
    if status not in ("running", "rolling_back", "awaiting_approval"):
        return None  # halted or interrupted: nothing runs until the operator decides
    finished = [w for w in waves if all(n.state in TERMINAL for n in w.nodes)]
    spans = [s for w in finished if (s := _wave_span([n.name for n in w.nodes], steps)) is not None]
    left = [w for w in waves if not all(n.state in TERMINAL for n in w.nodes)]
    if not left:
        return 0.0
    if not spans:
        return None
    mean = fmean(spans)
    members = {m.name for m in left[0].nodes}
    firsts = [s.started for (n, _), s in steps.items() if s.started is not None and n in members]
    spent = max(0.0, now - min(firsts)) if firsts else 0.0
    return max(0.0, mean * len(left) - spent)


def duration(seconds: float | None) -> str:
    """``1h02m``, ``3m05s``, ``42s``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def bar(fraction: float, width: int = 10) -> str:
    """A text progress bar, ``█████·····``: readable without colour."""
    full = max(0, min(width, round(fraction * width)))
    return "█" * full + "·" * (width - full)


def headline(p: Progress) -> str:
    what = "rollback of " if p.mode == "rollback" else ""
    return (
        f"{what}{clean(p.name)} [{p.id}] {p.status.replace('_', ' ')}  "
        f"{bar(p.fraction)} {p.fraction:4.0%}  elapsed {duration(p.elapsed_s)}  "
        f"ETA {duration(p.eta_s)}"
    )


def render_text(p: Progress, width: int = 80, output_lines: int = 6) -> list[str]:
    """The progress as text lines (``dcc rollout status``; the end of ``dcc rollout run``)."""
    lines = [headline(p)]
    if p.halt_reason:
        lines.append(f"  halted: {clean(p.halt_reason)}")
    for node, step in p.in_flight:
        lines.append(f"  ? {node}: {step} was in flight (outcome unknown): verified on resume")
    for wave in p.waves:
        gate = f"  gate {wave.gate}" if wave.gate else ""
        lines.append(
            f"  {wave.label:<8} {bar(wave.fraction)} {wave.finished}/{len(wave.nodes)}{gate}"
        )
        for n in wave.nodes:
            mark = MARK.get(n.state, "?")
            text = f"    {mark} {n.name:<12} {n.state:<11} {n.step}"
            if n.reason and n.state in ("failed", "skipped"):
                text += f": {n.reason}"
            lines.append(clean(text)[:width])
    for n in p.failures:
        if n.output:
            lines.append(f"  output of {n.name}:")
            lines += [f"    | {clean(x)}"[:width] for x in n.output.splitlines()[-output_lines:]]
    return lines
