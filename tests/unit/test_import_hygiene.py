"""The data layer and every plugin's non-UI modules import without Textual.

Collectors, parsers and the CLI checks run where no terminal UI is wanted
(`dcc check`, exporters, tests); a stray Textual import would also slow the
first frame. Run in a subprocess so this test's own imports do not count.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import plugins

CORE = [
    "console.plugin",
    "console.audit",
    "console.poller",
    "console.store",
    "console.inventory",
    "console.actions",
    "console.registry",
    "console.transports",
    "console.health",
    "console.filtering",
]
UI_MODULES = {"panes"}


def plugin_modules() -> list[str]:
    found = []
    for pkg in pkgutil.iter_modules(plugins.__path__):
        if not pkg.ispkg:
            continue
        folder = Path(plugins.__path__[0]) / pkg.name
        for mod in pkgutil.iter_modules([str(folder)]):
            if mod.name not in UI_MODULES:
                found.append(f"plugins.{pkg.name}.{mod.name}")
    return found


def imported_after(modules: list[str]) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(out.stdout))


def test_core_data_layer_imports_without_textual() -> None:
    loaded = imported_after(CORE)
    assert not {m for m in loaded if m == "textual" or m.startswith("textual.")}


def test_every_plugin_parser_and_collector_imports_without_textual() -> None:
    modules = plugin_modules()
    assert any(m.endswith(".parse") for m in modules), "no plugin parser found"
    loaded = imported_after(modules)
    assert "textual" not in loaded


def test_plugin_manifests_do_not_import_their_panes() -> None:
    manifests = [m for m in plugin_modules() if m.endswith(".manifest")]
    assert manifests
    loaded = imported_after(manifests)
    assert not [m for m in loaded if m.endswith(".panes")]
