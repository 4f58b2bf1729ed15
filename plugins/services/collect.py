"""Collectors: HTTP and TCP checks per service, systemd per node (one SSH round trip).

Readings are about ``svc:<name>`` with ``node`` set to the node the service
runs on. The HTTP and TCP collectors turn a failure to answer into a reading
(the service is *down*: that is what we observed). The systemd collector
raises on an SSH failure instead: then we do not know the unit's state, and
the poller records the collector as failed.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from console.plugin import CollectContext, CollectorSpec, ReadContext, Reading, Target
from console.transports import TransportError
from plugins.services.config import (
    ServiceCheck,
    ServicesConfig,
    check_url,
    node_problems,
    tcp_address,
)
from plugins.services.parse import SHOW_PROPERTIES, UnitState, judge_http, parse_systemctl_show

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, Node

log = logging.getLogger(__name__)

SYSTEMD_TIMEOUT = 10.0
"""Seconds one ``systemctl show`` round trip may take."""

# ``services.state``: the HTTP check decides when there is one, else TCP, else systemd.
SOURCE_OF_STATE = ("http", "tcp", "systemd")


def _cfg(config: Any) -> ServicesConfig:
    return config if isinstance(config, ServicesConfig) else ServicesConfig()


def _check(ctx: ReadContext, target: Target) -> ServiceCheck:
    check = _cfg(ctx.config).get(target.name)
    if check is None:
        raise LookupError(f"no service check named {target.name!r} in the inventory")
    return check


def state_source(check: ServiceCheck) -> str:
    """Which collector writes ``services.state`` for this check."""
    if check.http is not None:
        return "http"
    return "tcp" if check.tcp is not None else "systemd"


def _readings(
    check: ServiceCheck,
    source: str,
    state: str,
    detail: str,
    latency_ms: float | None,
    **extra: Any,
) -> list[Reading]:
    now = time.time()
    target, node = check.target_name, check.node
    up = None if state == "unknown" else state != "down"
    values: dict[str, Any] = {}
    if state_source(check) == source:
        values |= {"services.state": state, "services.up": up}
    values[f"services.{source}_state"] = state
    if source != "systemd":
        values["services.latency_ms"] = latency_ms
    values |= extra
    return [
        Reading(target, metric, value, ts=now, source=source, detail=detail, node=node)
        for metric, value in values.items()
    ]


# --------------------------------------------------------------------------- targets


def _refuse_dangling(inventory: Inventory, config: ServicesConfig) -> None:
    problems = node_problems(config, inventory)
    if problems:
        raise LookupError("; ".join(problems))


def service_targets(config: ServicesConfig, kind: str) -> list[Target]:
    """One target per check that has a ``kind`` (http/tcp) check."""
    return [
        Target(
            "service",
            c.name,
            node=c.node,
            attrs={"check": c.name, "interval": c.interval, "service": c.service},
        )
        for c in config.checks
        if getattr(c, kind) is not None
    ]


def http_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    """Raises LookupError (naming the check) when a check names an unknown node."""
    _refuse_dangling(inventory, _cfg(config))
    return service_targets(_cfg(config), "http")


def tcp_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    _refuse_dangling(inventory, _cfg(config))
    return service_targets(_cfg(config), "tcp")


def systemd_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    """One target per node that has units to read, carrying its checks in order."""
    _refuse_dangling(inventory, _cfg(config))
    by_node: dict[str, list[ServiceCheck]] = {}
    for c in _cfg(config).checks:
        if c.systemd is not None and c.node is not None:
            by_node.setdefault(c.node, []).append(c)
    return [
        Target(
            "node",
            node,
            node=node,
            attrs={
                "checks": tuple(c.name for c in checks),
                "units": tuple(c.systemd.unit for c in checks if c.systemd is not None),
                "interval": min(c.interval for c in checks),
            },
        )
        for node, checks in by_node.items()
    ]


# --------------------------------------------------------------------------- HTTP


async def collect_http(ctx: ReadContext, target: Target) -> Sequence[Reading]:
    """One request to the check's URL, judged by its catalogue entry."""
    check = _check(ctx, target)
    http = check.http
    assert http is not None  # targets only list checks with http
    url = check_url(check, ctx.inventory)
    assert url is not None
    ca_file = str(ctx.inventory.resolve_path(http.ca_file)) if http.ca_file else None
    started = time.monotonic()
    try:
        async with asyncio.timeout(http.timeout + 1.0):
            resp = await ctx.transports.http.request(
                "GET",
                url,
                timeout=http.timeout,
                tls_fingerprint=http.tls_fingerprint,
                ca_file=ca_file,
            )
    except (TransportError, TimeoutError, OSError) as exc:
        # The service did not answer: that *is* the observation.
        text = str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            text = f"no answer within {http.timeout:g}s"
        return _readings(check, "http", "down", text, None, **{"services.http_status": None})
    latency_ms = resp.elapsed * 1000 if resp.elapsed else (time.monotonic() - started) * 1000
    health = judge_http(
        check.entry, resp.status, resp.body, latency_ms, check.slow_ms, http.expect_status
    )
    return _readings(
        check,
        "http",
        health.state,
        health.detail,
        round(latency_ms, 2),
        **{"services.http_status": resp.status},
    )


# --------------------------------------------------------------------------- TCP


async def tcp_probe(host: str, port: int, limit: float) -> tuple[bool, float | None, str]:
    """Connect and close; (connected, latency in ms, error text)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit):
            _reader, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return False, None, f"connect to {host}:{port} timed out after {limit:g}s"
    except OSError as exc:
        return False, None, f"connect to {host}:{port}: {exc.strerror or exc}"
    latency = (time.monotonic() - started) * 1000
    writer.close()
    try:
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
    except (OSError, TimeoutError):
        pass  # the port answered; how it closes does not matter
    return True, latency, ""


async def collect_tcp(ctx: CollectContext, target: Target) -> Sequence[Reading]:
    check = _check(ctx, target)
    assert check.tcp is not None
    address = tcp_address(check, ctx.inventory)
    assert address is not None
    ok, latency, error = await tcp_probe(address[0], address[1], check.tcp.timeout)
    if not ok:
        return _readings(check, "tcp", "down", error, None)
    state = "slow" if check.slow_ms is not None and latency and latency > check.slow_ms else "ok"
    return _readings(
        check, "tcp", state, f"{address[0]}:{address[1]} accepts", round(latency or 0.0, 2)
    )


# --------------------------------------------------------------------------- systemd


def show_command(units: Sequence[str], properties: Sequence[str] = SHOW_PROPERTIES) -> str:
    """``systemctl show -p ... -- UNIT...`` with every unit shell-quoted."""
    quoted = " ".join(shlex.quote(u) for u in units)
    return f"systemctl show -p {','.join(properties)} -- {quoted}"


def match_units(units: Sequence[str], states: Sequence[UnitState]) -> dict[str, UnitState]:
    """Pair the units asked for with the blocks printed.

    systemd prints one block per unit in the order given; an alias prints its
    canonical ``Id``, so order is the reliable key when the counts agree.
    """
    if len(states) == len(units):
        return dict(zip(units, states, strict=True))
    by_id = {s.id: s for s in states if s.id}
    return {u: by_id[u] for u in units if u in by_id}


def unit_state_name(unit: UnitState | None) -> str:
    """The service state a unit implies: ok, down (failed/inactive) or unknown."""
    if unit is None or unit.active_state is None:
        return "unknown"
    if unit.active_state in ("active", "reloading"):
        return "ok"
    if unit.active_state == "activating":
        return "degraded"
    return "down"


async def read_units(
    ctx: Any, node: Node, units: Sequence[str], limit: float = SYSTEMD_TIMEOUT
) -> dict[str, UnitState]:
    """Run one ``systemctl show`` for ``units`` on ``node``. Raises on SSH or tool failure."""
    command = show_command(units)
    async with asyncio.timeout(limit + 1.0):
        result = await ctx.transports.ssh.run(node, command, timeout=limit)
    if result.exit_status != 0 and not result.stdout.strip():
        raise RuntimeError(
            f"systemctl show on {node.name} exited {result.exit_status}: "
            f"{result.stderr.strip()[:200] or 'no output'}"
        )
    return match_units(units, parse_systemctl_show(result.stdout))


async def collect_systemd(ctx: CollectContext, target: Target) -> Sequence[Reading]:
    """Every unit on one node in one SSH round trip."""
    node = ctx.inventory.nodes.get(target.name)
    if node is None:
        raise LookupError(f"node {target.name!r} is not in the inventory")
    config = _cfg(ctx.config)
    checks = [c for c in config.checks if c.node == target.name and c.systemd is not None]
    units = [c.systemd.unit for c in checks if c.systemd is not None]
    states = await read_units(ctx, node, units)
    out: list[Reading] = []
    for check in checks:
        assert check.systemd is not None
        unit = states.get(check.systemd.unit)
        state = unit_state_name(unit)
        if unit is not None and unit.load_state == "not-found":
            detail = f"{check.systemd.unit} not found on {node.name}"
        else:
            detail = f"{check.systemd.unit} {unit.summary if unit else 'not reported'}"
        out += _readings(
            check,
            "systemd",
            state,
            detail,
            None,
            **{
                "services.unit_active": unit.active_state if unit else None,
                "services.unit_sub": unit.sub_state if unit else None,
                "services.unit_result": unit.result if unit else None,
                "services.restarts": unit.n_restarts if unit else None,
                "services.unit_since": unit.active_enter_ts if unit else None,
            },
        )
    return out


COLLECTORS = (
    CollectorSpec(
        id="services.http",
        targets=http_targets,
        collect=collect_http,
        interval=15.0,
        timeout=20.0,
        label="Service HTTP health",
    ),
    CollectorSpec(
        id="services.tcp",
        targets=tcp_targets,
        collect=collect_tcp,
        interval=15.0,
        timeout=10.0,
        label="Service TCP ports",
    ),
    CollectorSpec(
        id="services.systemd",
        targets=systemd_targets,
        collect=collect_systemd,
        interval=15.0,
        timeout=SYSTEMD_TIMEOUT + 2.0,
        label="systemd units (systemctl show)",
    ),
)
