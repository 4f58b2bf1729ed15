"""Scaffolding shared by the plugin integration tests: a running lab, a collector
context, an ActionRunner with its audit log, and small reading helpers.

Plain helpers (not fixtures) so each test file keeps its own fixtures, seeds and
inventories and states them in one line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from console.actions import ActionRunner
from console.audit import AuditLog
from console.identity import Operator
from console.inventory.model import Inventory
from console.lab import Lab
from console.plugin import Plugin, Reading, Role
from console.store import Store
from console.transports import Transports

E = TypeVar("E")


@asynccontextmanager
async def running_lab(
    inventory: Inventory,
    state_dir: Path,
    plugins: Sequence[Plugin],
    seed: int,
    *,
    before_stop: Callable[[], Awaitable[Any]] | None = None,
) -> AsyncIterator[Lab]:
    """A started lab, stopped on exit (``before_stop`` first, e.g. to end watches)."""
    lab = Lab(inventory, state_dir, plugins, seed=seed)
    await lab.start()
    try:
        yield lab
    finally:
        if before_stop is not None:
            await before_stop()
        await lab.stop()


def lab_fixture(
    inventory: Callable[[], Inventory],
    plugins: Callable[[], Sequence[Plugin]] | Sequence[Plugin],
    seed: int,
    *,
    before_stop: Callable[[], Awaitable[Any]] | None = None,
) -> Any:
    """A ``lab`` fixture: a fresh running lab per test, its state in ``tmp_path / "lab"``.

    ``plugins`` may be a callable, for emulations that must be new for each test.
    """

    @pytest.fixture(name="lab")
    async def _lab(tmp_path: Path) -> AsyncIterator[Lab]:
        chosen = plugins() if callable(plugins) else plugins
        async with running_lab(
            inventory(), tmp_path / "lab", chosen, seed, before_stop=before_stop
        ) as lab:
            yield lab

    return _lab


@asynccontextmanager
async def open_transports() -> AsyncIterator[Transports]:
    """Fresh transports, closed on exit."""
    transports = Transports.create()
    try:
        yield transports
    finally:
        await transports.close()


@dataclass(frozen=True)
class CollectCtx:
    """What a collector is given: the inventory, the transports, its plugin's config and memory."""

    inventory: Inventory
    transports: Any
    config: Any = None
    memory: dict[str, Any] = field(default_factory=dict)
    """The plugin's memory between runs (the poller keeps one per plugin and session)."""


def ctx_for(inventory: Inventory, transports: Any, plugin_name: str | None = None) -> CollectCtx:
    """A collector context for ``plugin_name``'s config in ``inventory`` (None: no config)."""
    config = None if plugin_name is None else inventory.plugin_configs[plugin_name]
    return CollectCtx(inventory, transports, config)


@asynccontextmanager
async def collect_context(lab: Lab, plugin_name: str) -> AsyncIterator[CollectCtx]:
    """A collector context on the lab's inventory with its own transports, closed on exit."""
    async with open_transports() as transports:
        yield ctx_for(lab.inventory, transports, plugin_name)


@asynccontextmanager
async def action_runner(
    inventory: Inventory,
    transports: Transports | None,
    audit_db: Path,
    *,
    role: Role = Role.OPERATOR,
    read_only: bool = False,
    user: str = "alice",
    fallback: Path | None = None,
) -> AsyncIterator[ActionRunner]:
    """An ActionRunner with an audit log at ``audit_db`` and an empty Store.

    With ``transports`` None the runner gets its own, closed on exit; given ones
    are left open for their owner. The audit log is closed on exit.
    """
    audit = AuditLog(audit_db, fallback_path=fallback or audit_db.with_name("fallback.jsonl"))
    own = Transports.create() if transports is None else None
    try:
        yield ActionRunner(
            audit,
            inventory,
            transports or own,  # type: ignore[arg-type]
            Store(),
            Operator(user=user),
            role,
            read_only,
            inventory.plugin_configs,
        )
    finally:
        audit.close()
        if own is not None:
            await own.close()


def ctx_fixture(plugin_name: str) -> Any:
    """A ``ctx`` fixture: a collector context for ``plugin_name`` on the test's ``lab``."""

    @pytest.fixture(name="ctx")
    async def _ctx(lab: Lab) -> AsyncIterator[CollectCtx]:
        async with collect_context(lab, plugin_name) as ctx:
            yield ctx

    return _ctx


def runner_fixture(*, role: Role = Role.OPERATOR) -> Any:
    """A ``runner`` fixture: an ActionRunner (as alice) on the test's ``lab``, with its own
    transports and its audit log at ``tmp_path / "audit.db"``."""

    @pytest.fixture(name="runner")
    async def _runner(lab: Lab, tmp_path: Path) -> AsyncIterator[ActionRunner]:
        async with action_runner(lab.inventory, None, tmp_path / "audit.db", role=role) as runner:
            yield runner

    return _runner


def emulation(lab: Lab, name: str, cls: type[E]) -> E:
    """The lab's emulation of plugin ``name``, checked to be a ``cls``."""
    found = lab.emulations[name]
    assert isinstance(found, cls)
    return found


def by_metric(readings: Iterable[Reading], target: str | None = None) -> dict[str, Reading]:
    """Readings by metric, only those of ``target`` when given."""
    return {r.metric: r for r in readings if target is None or r.target == target}


def values(readings: Iterable[Reading], target: str | None = None) -> dict[str, Any]:
    """Reading values by metric, only those of ``target`` when given."""
    return {m: r.value for m, r in by_metric(readings, target).items()}


async def eventually(
    check: Callable[[], Awaitable[Any]], what: str, timeout: float = 15.0, interval: float = 0.05
) -> Any:
    """Poll an async check until it returns something truthy, and return it (a deadline,
    not a sleep to synchronise)."""
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)
