"""Prometheus exporters in the lab: one per simulated host, on loopback, in the real format.

An emulation that can be read through Prometheus serves its exporter with an
``ExporterSet``: one aiohttp runner and one listening socket per host (on the
host's own loopback address in a spread lab), answering ``GET /metrics`` with
what its ``render(host_name)`` returns, from the same state its SSH/BMC side
answers from, so the direct and the Prometheus sources agree. ``render``
returning None is a host whose exporter does not answer (powered off): 503,
which Prometheus records as ``up == 0`` and whose series it marks stale.

The emulation keeps its sets in ``self.exporters`` (job name -> ExporterSet);
``lab_exporters(lab)`` lists every one, for a prometheus.yml (see
``console.lab.prometheus_peer``), and ``exporter_instances`` gives what the
effective inventory declares as each node's ``exporters:``.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web

from console.lab.addresses import require_loopback
from console.sources.exposition import CONTENT_TYPE

log = logging.getLogger(__name__)

RenderFn = Callable[[str], str | None]


class ExporterSet:
    """One exporter (``dcgm``, ``ipmi``, ``node``) on every host it is given."""

    def __init__(self, job: str, render: RenderFn, *, path: str = "/metrics") -> None:
        self.job = job
        self.render = render
        self.path = path
        self.instances: dict[str, str] = {}
        """Host name -> ``address:port``: the ``instance`` label Prometheus gives it."""
        self.scrapes: dict[str, int] = {}
        """Host name -> how many times it was scraped (tests wait on it)."""
        self._by_port: dict[tuple[str, int], str] = {}
        self._runner: web.AppRunner | None = None
        self.hidden: set[str] = set()
        """Hosts whose exporter answers 503 whatever render says (tests stop one)."""

    async def start(self, hosts: Iterable[tuple[str, str]]) -> dict[str, str]:
        """Listen for each (host name, loopback address); returns host -> instance."""
        app = web.Application()
        app.router.add_get(self.path, self._metrics)
        app.router.add_get("/", self._index)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runner = runner
        try:
            for name, address in hosts:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind((require_loopback(address), 0))
                except OSError:
                    sock.close()
                    raise
                port = int(sock.getsockname()[1])
                await web.SockSite(runner, sock).start()
                self._by_port[(address, port)] = name
                self.instances[name] = f"{address}:{port}"
        except BaseException:
            await self.stop()
            raise
        return dict(self.instances)

    async def stop(self) -> None:
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner.cleanup()
        self._runner = None

    def _host(self, request: web.Request) -> str | None:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        if not sockname:
            return None
        return self._by_port.get((str(sockname[0]), int(sockname[1])))

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text=f'<a href="{self.path}">{self.job} exporter (lab)</a>\n')

    async def _metrics(self, request: web.Request) -> web.Response:
        name = self._host(request)
        if name is None:
            return web.Response(status=404, text="unknown host\n")
        self.scrapes[name] = self.scrapes.get(name, 0) + 1
        if name in self.hidden:
            return web.Response(status=503, text="exporter stopped (lab)\n")
        try:
            text = self.render(name)
        except Exception:  # an emulation bug: what a broken exporter answers
            log.exception("lab: the %s exporter failed on %s", self.job, name)
            return web.Response(status=500, text="exporter error\n")
        if text is None:
            return web.Response(status=503, text="host not answering (lab)\n")
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


def host_addresses(lab: Any, names: Iterable[str]) -> list[tuple[str, str]]:
    """(host, its loopback address) for the lab's hosts among ``names``."""
    out = []
    for name in names:
        host = lab.hosts.get(name)
        if host is not None:
            out.append((name, str(getattr(host, "address", None) or lab.bind)))
    return out


def lab_exporters(lab: Any) -> dict[str, ExporterSet]:
    """Every emulation's exporters, by job name."""
    found: dict[str, ExporterSet] = {}
    for emu in getattr(lab, "emulations", {}).values():
        for job, exporter in (getattr(emu, "exporters", None) or {}).items():
            found[job] = exporter
    return found


def declare_exporters(
    data: dict[str, Any], exporter: str, instances: Mapping[str, str]
) -> dict[str, Any]:
    """An effective inventory document with each node's ``exporters.<exporter>`` set.

    The lab writes one node group per node (``nodes: <name>``), so the group is the node.
    """
    for group in data.get("nodes", []):
        instance = instances.get(str(group.get("nodes", "")))
        if instance is not None:
            exporters = dict(group.get("exporters") or {})
            exporters[exporter] = instance
            group["exporters"] = exporters
    return data


def exporters_enabled(lab: Any) -> bool:
    """Exporters are served unless the lab says otherwise (``lab.exporters = False``)."""
    return bool(getattr(lab, "serve_exporters", True))


def host_answers(host: Any) -> bool:
    """Whether a simulated host's exporters answer: powered, and its network not cut."""
    if not getattr(host, "powered", True):
        return False
    return host.fault("host.down") is None and host.fault("host.blackhole") is None
