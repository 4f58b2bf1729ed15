"""Typed confirmation: near-miss strings (case, whitespace, homoglyphs) never execute (S7)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.actions import ActionRefused, ActionRunner
from console.audit import AuditLog
from console.identity import Operator
from console.inventory.model import Inventory, InventoryDoc, Site
from console.plugin import ActionContext, ActionSpec, Outcome, Preview, Role, Target
from console.store import Store
from console.transports import Transports

OP = Operator(user="alice", console_host="jump1", pid=1)
NAMES = ["gpu001", "gpu002", "gpu003"]
EXPECTED = "gpu[001-003]"

HOMOGLYPHS = {
    "g": ["ɡ", "ց"],
    "p": ["р", "ρ"],  # Cyrillic er, Greek rho
    "u": ["υ", "ս"],
    "0": ["O", "o", "О", "०"],  # Latin O, Cyrillic O, Devanagari zero
    "1": ["l", "I", "١", "𝟏"],
    "2": ["ƻ", "２"],
    "3": ["З", "３"],
    "[": ["［", "("],
    "]": ["］", ")"],
    "-": ["‐", "–", "−", "_"],
}


@st.composite
def near_misses(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from([EXPECTED, "gpu001,gpu002,gpu003", "gpu001"]))
    kind = draw(st.sampled_from(["case", "space", "homoglyph", "edit", "any"]))
    if kind == "case":
        chars = list(text)
        i = draw(st.integers(0, len(chars) - 1))
        chars[i] = chars[i].swapcase() if chars[i].isalpha() else chars[i] + "X"
        text = "".join(chars)
    elif kind == "space":
        ws = draw(st.sampled_from([" ", "\t", "\n", "\u00a0", "\u200b", "\u3000", "\r"]))
        i = draw(st.integers(0, len(text)))
        text = text[:i] + ws + text[i:]
    elif kind == "homoglyph":
        positions = [i for i, c in enumerate(text) if c in HOMOGLYPHS]
        i = draw(st.sampled_from(positions))
        text = text[:i] + draw(st.sampled_from(HOMOGLYPHS[text[i]])) + text[i + 1 :]
    elif kind == "edit":
        i = draw(st.integers(0, len(text) - 1))
        text = text[:i] + text[i + 1 :]
    else:
        text = draw(st.text(max_size=20))
    return text


def make_runner(log: AuditLog, executed: list[str]) -> tuple[ActionRunner, ActionSpec]:
    async def preview(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
        return Preview((f"power off {target.name}",))

    async def execute(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
        executed.append(target.name)
        return Outcome(True)

    async def verify(ctx: ActionContext, target: Target, inputs: Any, outcome: Outcome) -> Outcome:
        return outcome

    spec = ActionSpec(
        id="testplug.power_off",
        label="Power off",
        target_kind="node",
        targets=lambda inv, cfg: [],
        preview=preview,
        execute=execute,
        verify=verify,
        destructive=True,
        role=Role.OPERATOR,
    )
    inventory = Inventory(doc=InventoryDoc(site=Site(name="t")), nodes={})
    transports = Transports(None, None, None)  # type: ignore[arg-type]  # unused here
    runner = ActionRunner(log, inventory, transports, Store(), OP, Role.ADMIN, False, {})
    return runner, spec


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(typed=near_misses())
def test_no_near_miss_confirmation_ever_executes(tmp_path: Path, typed: str) -> None:
    if typed == EXPECTED:
        return  # the exact string is not a near miss
    executed: list[str] = []
    log = AuditLog(tmp_path / "audit.db", operator=OP)
    try:
        runner, spec = make_runner(log, executed)

        async def attempt() -> None:
            plan = await runner.plan(spec, [Target("node", n) for n in NAMES], {})
            assert plan.confirm_text == EXPECTED
            try:
                await runner.execute(plan, typed)
            except ActionRefused:
                return
            raise AssertionError(f"executed with {typed!r}")

        asyncio.run(attempt())
    finally:
        log.close()
    assert executed == []


def test_the_exact_folded_node_set_executes_every_target(tmp_path: Path) -> None:
    executed: list[str] = []
    log = AuditLog(tmp_path / "audit.db", operator=OP)
    try:
        runner, spec = make_runner(log, executed)

        async def attempt() -> None:
            plan = await runner.plan(spec, [Target("node", n) for n in NAMES], {})
            results = await runner.execute(plan, EXPECTED)
            assert [r.outcome for r in results] == ["ok"] * 3

        asyncio.run(attempt())
    finally:
        log.close()
    assert executed == NAMES
