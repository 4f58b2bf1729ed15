"""A lab behind a real Prometheus, shared by the test session (``prom_lab``).

The lab runs in its own thread and event loop (tests each have their own loop
and reach it over loopback, as a console reaches a site): every plugin's
emulation, with their exporters on loopback, one per simulated host. A real
``prometheus`` (Debian package) scrapes them every second. The lab's clock runs
at 1/1000 speed so the simulated load stands nearly still and the two sources
can be compared value by value; wall-clock ages (sample timestamps) are real.

Plugins that add an exporter need nothing here: every emulation's
``exporters`` are scraped (``console.lab.exporters.lab_exporters``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from console.inventory import load_inventory
from console.inventory.load import apply_plugin_configs, inventory_from_data
from console.inventory.model import Inventory
from console.lab import Lab
from console.lab.exporters import ExporterSet, lab_exporters
from console.lab.prometheus_peer import PrometheusPeer, find_binary
from console.plugin import Plugin
from console.registry import discover
from console.session import DEMO_INVENTORY

T = TypeVar("T")
PROM_PLUGINS = ("gpu", "power", "infiniband")
"""Plugins whose lab serves an exporter the tests read through Prometheus."""


class PromLab:
    """The shared lab and its Prometheus. Call into the lab with ``run``/``call``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="prom-lab", daemon=True)
        self.registry = discover()
        self.lab: Lab | None = None
        self.peer: PrometheusPeer | None = None

    @property
    def plugins(self) -> Sequence[Plugin]:
        return self.registry.plugins

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run a coroutine in the lab's loop and wait for it (from any thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[Lab], T], timeout: float = 30.0) -> T:
        """``fn(lab)`` in the lab's loop (the lab is not thread-safe)."""

        async def call() -> T:
            assert self.lab is not None
            return fn(self.lab)

        return self.run(call(), timeout)

    async def acall(self, fn: Callable[[Lab], T]) -> T:
        """``call`` for a test's own event loop (does not block it)."""
        return await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(self._call(fn), self.loop)
        )

    async def _call(self, fn: Callable[[Lab], T]) -> T:
        assert self.lab is not None
        return fn(self.lab)

    def start(self) -> None:
        self.thread.start()
        lab = Lab(
            load_inventory(DEMO_INVENTORY), self.folder / "lab", self.plugins, seed=11, speed=0.001
        )
        self.run(lab.start())
        self.lab = lab
        jobs = {job: e.instances for job, e in lab_exporters(lab).items()}
        self.peer = PrometheusPeer(self.folder / "prometheus", jobs)
        self.peer.start(ready_timeout=45.0)

    def stop(self) -> None:
        if self.peer is not None:
            self.peer.stop()
        if self.lab is not None:
            self.run(self.lab.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def url(self) -> str:
        assert self.peer is not None
        return self.peer.url

    def exporter(self, job: str) -> ExporterSet:
        assert self.lab is not None
        return lab_exporters(self.lab)[job]

    def direct_inventory(self) -> Inventory:
        """The lab's inventory as a console reads it directly (SSH, BMCs)."""
        assert self.lab is not None
        models = {p.name: p.config_model for p in self.plugins}
        return apply_plugin_configs(self.lab.inventory, models)

    def inventory(
        self,
        plugins: Sequence[str] = PROM_PLUGINS,
        *,
        url: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Inventory:
        """The lab's inventory with ``plugins`` set to ``source: prometheus`` (this one, or
        ``url``); ``extra`` is merged into each of those plugin sections."""
        assert self.lab is not None
        data = self.lab.inventory.doc.model_dump(mode="json", exclude_none=True)
        data["prometheus"] = {"url": url or self.url}
        for name in plugins:
            section = data["plugins"].setdefault(name, {})
            section["source"] = "prometheus"
            section.update(extra or {})
        inventory = inventory_from_data(data, self.folder / "lab" / "inventory.yaml")
        return apply_plugin_configs(inventory, {p.name: p.config_model for p in self.plugins})


@pytest.fixture(scope="session")
def prom_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromLab]:
    """The demo lab with its exporters, scraped by a real Prometheus on 127.0.0.1."""
    if find_binary() is None:
        pytest.fail(
            "prometheus is not installed: run `sudo scripts/install-peers.sh` "
            "(Debian package prometheus)"
        )
    env = PromLab(tmp_path_factory.mktemp("promlab"))
    try:
        env.start()
        yield env
    finally:
        env.stop()
