"""The progress of a rollout as values and text: steps, bars, ETA, failures; the glyphs
carry every state (no colour needed); and the rollout file's references and approvals."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.plugin import CheckSpec, Finding, Severity, Target
from console.registry import discover
from console.wizards.rollout_model import SiteCheck, check_references, rollout_from_data
from console.wizards.rollout_progress import bar, build_progress, duration, render_text
from console.wizards.rollout_state import GateRow, RolloutRow, StepRow
from console.wizards.rollout_steps import evaluate

T0 = 1_000_000.0
WAVES = [["a"], ["b", "c"], ["d"]]


def row(status: str = "running", **over: object) -> RolloutRow:
    data: dict[str, object] = {
        "id": "r1",
        "name": "driver",
        "plan_hash": "h",
        "status": status,
        "halt_reason": "",
        "operator": "alice",
        "plan": {"waves": WAVES, "file": "x.yaml"},
        "created": T0,
        "updated": T0 + 50,
    }
    data.update(over)
    return RolloutRow(**data)  # type: ignore[arg-type]


def done_steps(node: str, start: float, end: float) -> dict[tuple[str, str], StepRow]:
    names = ("pre_check", "drain", "change", "post_check", "resume", "resume_check")
    return {(node, s): StepRow(node, s, "done", "ok", start, end) for s in names}


def test_progress_counts_steps_and_estimates_from_the_finished_waves() -> None:
    steps = {**done_steps("a", T0, T0 + 60), **done_steps("b", T0 + 60, T0 + 100)}
    steps[("c", "pre_check")] = StepRow("c", "pre_check", "done", "ok", T0 + 60, T0 + 61)
    steps[("c", "drain")] = StepRow("c", "drain", "started", "", T0 + 61, T0 + 61)
    nodes = {
        "a": (0, "done", ""),
        "b": (1, "done", ""),
        "c": (1, "running", ""),
        "d": (2, "pending", ""),
    }
    p = build_progress(row(), nodes, steps, {}, T0 + 100, current={"c": "drain"})
    assert [w.label for w in p.waves] == ["canary", "wave 1", "wave 2"]
    assert [n.name for n in p.waves[1].nodes] == ["b", "c"]
    c = p.waves[1].nodes[1]
    assert (c.step, c.done_steps, c.total_steps) == ("drain", 1, 6)
    assert p.waves[0].gate == "passed" and p.waves[1].gate == ""
    # one finished wave of 60 s; two waves left; the current one has run 40 s
    assert p.eta_s == pytest.approx(60 * 2 - 40)
    assert p.elapsed_s == pytest.approx(100)
    assert p.in_flight == (("c", "drain"),)
    assert p.fraction == pytest.approx((1 + 1 + 1 / 6 + 0) / 4)


def test_no_finished_wave_means_an_unknown_eta_and_a_halt_stops_the_clock() -> None:
    nodes = {
        "a": (0, "running", ""),
        "b": (1, "pending", ""),
        "c": (1, "pending", ""),
        "d": (2, "pending", ""),
    }
    assert build_progress(row(), nodes, {}, {}, T0 + 5).eta_s is None
    assert duration(None) == "?"
    steps = done_steps("a", T0, T0 + 30)
    nodes["a"] = (
        0,
        "failed",
        "post-check failed: GPU count 7 != 8\nnvidia-smi: GPU 3 lost\nXID 79",
    )
    halted = row("halted", halt_reason="1 of 1 node(s) failed in this wave: more than 0%")
    gates = {0: GateRow(0, "halted", "alice", "1 of 1 failed")}
    p = build_progress(halted, nodes, steps, gates, T0 + 40)
    assert p.eta_s is None and p.waves[0].gate == "halted"
    (failed,) = p.failures
    assert failed.reason == "post-check failed: GPU count 7 != 8"
    assert failed.output == "nvidia-smi: GPU 3 lost\nXID 79"
    text = "\n".join(render_text(p))
    assert "halted: 1 of 1 node(s) failed" in text
    assert "✖ a            failed" in text and "GPU count 7 != 8" in text
    assert "· b" in text  # pending
    assert "    | XID 79" in text
    assert "ETA ?" in text


def test_a_finished_rollout_has_its_own_duration_and_no_eta() -> None:
    nodes = {n: (i, "done", "") for i, w in enumerate(WAVES) for n in w}
    p = build_progress(row("done"), nodes, {}, {}, T0 + 9999)
    assert p.elapsed_s == pytest.approx(50) and p.eta_s == 0.0 and p.fraction == 1.0
    assert "100%" in render_text(p)[0]
    assert (duration(42), duration(185), duration(3720)) == ("42s", "3m05s", "1h02m")
    assert (bar(0.0, 4), bar(0.5, 4), bar(1.0, 4)) == ("····", "██··", "████")


def _svc(store: object, target: Target) -> Finding:
    ok = target.name == "mlflow" and target.attrs.get("unit") == "mlflow.service"
    return Finding(Severity.OK if ok else Severity.CRITICAL, target.name, f"{target.name} down")


def test_a_site_check_runs_on_its_named_target_with_the_plugins_attrs() -> None:
    checks = {"svc.up": CheckSpec("svc.up", "service up", "service", _svc)}
    targets = {("service", "mlflow"): Target("service", "mlflow", attrs={"unit": "mlflow.service"})}
    ok = SiteCheck(check="svc.up", target="mlflow")
    bad = SiteCheck(check="svc.up", target="minio")
    assert evaluate(None, checks, [ok], "gpu001", targets) == []
    assert evaluate(None, checks, [bad], "gpu001", targets) == ["svc.up@minio: minio down"]


def test_references_name_site_targets_and_refuse_bare_service_checks(tmp_path: Path) -> None:
    reg = discover()
    targets = {
        ("service", "mlflow"): Target("service", "mlflow"),
        ("cluster", "train"): Target("cluster", "train"),
    }
    rollout = rollout_from_data(
        {
            "name": "x",
            "targets": "gpu001",
            "change": {"command": "true"},
            "pre_checks": [{"check": "slurm.controller", "target": "train"}],
            "post_checks": ["gpu.healthy", {"check": "services.healthy", "target": "mlflw"}],
            "resume_checks": ["services.healthy"],
        }
    )
    problems = [str(p) for p in check_references(rollout, reg.checks(), reg.actions(), targets)]
    assert len(problems) == 2, problems
    assert any(
        "post_checks[1].target: no service called 'mlflw'" in p and "did you mean 'mlflow'?" in p
        for p in problems
    )
    assert any(
        "resume_checks[0]" in p and "is about a service" in p and "{check: services.healthy" in p
        for p in problems
    )


def test_a_second_operator_is_needed_when_declared_or_above_a_target_cap() -> None:
    base = {"name": "x", "targets": "n1", "change": {"command": "true"}, "post_checks": ["a.b"]}
    assert rollout_from_data(base).doc.needs_second_operator(50) is None
    declared = rollout_from_data(dict(base, approval={"second_operator": True})).doc
    assert "second operator" in str(declared.needs_second_operator(1))
    capped = rollout_from_data(dict(base, approval={"above_targets": 8})).doc
    assert capped.needs_second_operator(8) is None
    assert "9 target nodes, more than approval.above_targets 8" in str(
        capped.needs_second_operator(9)
    )
