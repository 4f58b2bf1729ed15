"""Plugin discovery: broken plugins are listed with their error, the rest load.

The entry points are real ``importlib.metadata.EntryPoint`` objects pointing at
attributes of this very module, so ``ep.load()`` does a real import.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from importlib.metadata import EntryPoint
from typing import Any

from console.plugin import CONTRACT_VERSION, CollectorSpec, PaneSpec, Plugin, Reading, Target
from console.registry import CORE_PANES, GROUP, build, discover

MODULE = "tests.unit.test_registry"


def _no_targets(inventory: Any, config: Any) -> Sequence[Target]:
    return []


async def _collect(ctx: Any, target: Target) -> Sequence[Reading]:
    return []


GOOD = Plugin(
    name="goodtest",
    description="a well-formed test plugin",
    collectors=(CollectorSpec("goodtest.read", _no_targets, _collect),),
    panes=(PaneSpec("goodtest.pane", "Good", "tests.unit.test_registry:GOOD"),),
)

NOT_A_PLUGIN = "I am a string"

UNPREFIXED = Plugin(
    name="sloppy",
    description="ids without the plugin prefix",
    collectors=(CollectorSpec("read", _no_targets, _collect),),
    panes=(PaneSpec("other.pane", "Other", "x:y"),),
)

FUTURE = replace(
    GOOD, name="future", contract_version=CONTRACT_VERSION + 1, collectors=(), panes=()
)


def make_good() -> Plugin:
    """A factory is allowed in place of a Plugin object."""
    return replace(GOOD, name="madegood", collectors=(), panes=())


def make_crash() -> Plugin:
    raise RuntimeError("factory exploded")


def ep(name: str, attr: str, module: str = MODULE) -> EntryPoint:
    return EntryPoint(name=name, value=f"{module}:{attr}", group=GROUP)


def test_broken_plugins_are_listed_with_their_error_and_the_good_one_loads() -> None:
    reg = build(
        [
            ep("missing", "plugin", module="no_such_module_for_dcc_tests"),
            ep("notaplugin", "NOT_A_PLUGIN"),
            ep("sloppy", "UNPREFIXED"),
            ep("future", "FUTURE"),
            ep("goodtest", "GOOD"),
        ]
    )
    assert [p.name for p in reg.plugins] == ["goodtest"]
    assert reg.plugins[0] is GOOD
    errors = {b.name: b.error for b in reg.broken}
    assert set(errors) == {"missing", "notaplugin", "sloppy", "future"}
    assert errors["missing"].startswith("ModuleNotFoundError:")
    assert "no_such_module_for_dcc_tests" in errors["missing"]
    assert errors["notaplugin"] == (
        f"TypeError: {MODULE}:NOT_A_PLUGIN is a str, not a console.plugin.Plugin"
    )
    assert "collector id 'read' must start with 'sloppy.'" in errors["sloppy"]
    assert "pane id 'other.pane' must start with 'sloppy.'" in errors["sloppy"]
    assert errors["future"] == (
        f"TypeError: written for plugin contract {CONTRACT_VERSION + 1}, "
        f"this console speaks {CONTRACT_VERSION}"
    )


def test_a_broken_plugin_records_where_it_was_declared() -> None:
    reg = build([ep("notaplugin", "NOT_A_PLUGIN")])
    (broken,) = reg.broken
    assert broken.origin == f"{MODULE}:NOT_A_PLUGIN"


def test_a_factory_is_called_and_a_crashing_factory_is_broken() -> None:
    reg = build([ep("madegood", "make_good"), ep("crash", "make_crash")])
    assert [p.name for p in reg.plugins] == ["madegood"]
    assert [(b.name, b.error) for b in reg.broken] == [("crash", "RuntimeError: factory exploded")]


def test_an_entry_point_name_that_differs_from_the_plugin_name_is_refused() -> None:
    reg = build([ep("othername", "GOOD")])
    assert reg.plugins == []
    (broken,) = reg.broken
    assert "named 'othername' but the plugin calls itself 'goodtest'" in broken.error


def test_a_plugin_declared_twice_loads_once() -> None:
    reg = build([ep("goodtest", "GOOD"), ep("goodtest", "GOOD")])
    assert [p.name for p in reg.plugins] == ["goodtest"]
    assert [b.error for b in reg.broken] == ["declared twice; the first one wins"]


def test_lookups_span_plugins_and_include_the_core_panes() -> None:
    reg = build([ep("goodtest", "GOOD")])
    panes = reg.panes()
    assert {p.id for p in CORE_PANES} <= set(panes)
    assert {"core.alerts", "core.nodes", "core.collectors"} <= set(panes)
    assert "goodtest.pane" in panes
    assert [c.id for _, c in reg.collectors()] == ["goodtest.read"]
    assert reg.get("goodtest") is GOOD
    assert reg.get("nope") is None
    assert reg.plugin_of("goodtest.read") is GOOD
    assert reg.plugin_of("other.x") is None


def test_core_panes_are_namespaced_core() -> None:
    assert all(p.id.startswith("core.") for p in CORE_PANES)


def test_discover_finds_the_installed_services_plugin() -> None:
    reg = discover()
    names = [p.name for p in reg.plugins]
    assert "services" in names
    services = reg.get("services")
    assert services is not None
    assert services.validate_ids() == []
    assert services.contract_version == CONTRACT_VERSION


def test_discover_adds_extra_plugins() -> None:
    reg = discover(extra=[GOOD])
    assert reg.get("goodtest") is GOOD
    assert reg.get("services") is not None


def test_every_installed_plugin_declares_valid_ids_and_its_long_history() -> None:
    reg = discover()
    for plugin in reg.plugins:
        assert plugin.validate_ids() == [], plugin.name
    gpu, power = reg.get("gpu"), reg.get("power")
    assert gpu is not None and power is not None
    # What their rules read far back: idle time, a node's typical draw.
    assert "gpu.util_pct" in gpu.long_history
    assert "power.power_w" in power.long_history


def test_a_long_history_metric_of_another_plugin_is_refused() -> None:
    bad = Plugin(name="badhist", description="test", long_history=frozenset({"gpu.util_pct"}))
    assert bad.validate_ids() == ["long-history metric 'gpu.util_pct' must start with 'badhist.'"]


def test_discovering_the_plugins_does_not_load_the_kubernetes_client() -> None:
    # 860 modules and 37 MB: loaded when a cluster is first contacted, not at start.
    code = (
        "import sys; from console.registry import discover; discover(); "
        "print(any(m.startswith('kubernetes_asyncio') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
