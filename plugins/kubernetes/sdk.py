"""The Kubernetes client library (kubernetes-asyncio), imported on first use.

Importing it loads about 860 modules and 37 MB (every API model class). A
console starts every plugin, and most sites have clusters on only some of
their consoles' screens, or none: the library is loaded when a cluster is
first contacted, not when the plugin is. Use ``sdk.client``, ``sdk.config``,
``sdk.watch`` and ``sdk.ApiException`` at run time; for annotations import
``kubernetes_asyncio`` under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {
    "client": "kubernetes_asyncio.client",
    "config": "kubernetes_asyncio.config",
    "watch": "kubernetes_asyncio.watch",
}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    if name == "ApiException":
        return importlib.import_module("kubernetes_asyncio.client.exceptions").ApiException
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
