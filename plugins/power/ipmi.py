"""Talking to IPMI BMCs through ipmitool or freeipmi, as local processes.

The password never goes on the command line (``ps`` would show it): ipmitool
reads it from ``IPMI_PASSWORD`` (``-E``); freeipmi from a 0600 config file in a
private temporary folder, removed after the call.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from console.transports import CommandResult, CommandTimeout, TransportError
from plugins.power.config import PowerConfig, bmc_host, read_secret

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, Node
    from console.transports import Transports

log = logging.getLogger(__name__)


class BmcSilent(TransportError):
    """The BMC did not answer (no session could be opened in time)."""


class BmcRefused(TransportError):
    """The BMC answered but refused the command (bad credentials, unsupported)."""


# What each operation is in each tool; the argv tails never hold a secret.
IPMITOOL = {
    "sdr": ["sdr", "elist"],
    "chassis": ["chassis", "status"],
    "power_status": ["chassis", "power", "status"],
    "dcmi": ["dcmi", "power", "reading"],
    "sel": ["sel", "elist"],
    "identify": ["chassis", "identify"],
    "on": ["chassis", "power", "on"],
    "soft": ["chassis", "power", "soft"],
    "off": ["chassis", "power", "off"],
    "cycle": ["chassis", "power", "cycle"],
    "reset": ["chassis", "power", "reset"],
}
FREEIPMI = {
    "sdr": ["ipmi-sensors"],
    "chassis": ["ipmi-chassis", "--get-chassis-status"],
    "power_status": ["ipmi-power", "--stat"],
    "dcmi": ["ipmi-dcmi", "--get-system-power-statistics"],
    "sel": ["ipmi-sel"],
    "identify": ["ipmi-chassis"],
    "on": ["ipmi-power", "--on"],
    "soft": ["ipmi-power", "--soft"],
    "off": ["ipmi-power", "--off"],
    "cycle": ["ipmi-power", "--cycle"],
    "reset": ["ipmi-power", "--reset"],
}


def ipmitool_argv(cfg: PowerConfig, node: Node, op: Sequence[str]) -> list[str]:
    assert node.bmc is not None
    argv = ["ipmitool", "-I", "lanplus", "-C", str(cfg.cipher_suite), "-H", bmc_host(node)]
    if node.bmc.port:
        argv += ["-p", str(node.bmc.port)]
    if node.bmc.user:
        argv += ["-U", node.bmc.user]
    argv += [
        "-E",
        "-N",
        str(max(1, int(cfg.timeout / (cfg.retries + 1)))),
        "-R",
        str(cfg.retries + 1),
    ]
    return argv + list(op)


def freeipmi_argv(cfg: PowerConfig, node: Node, op: Sequence[str], conf: str | None) -> list[str]:
    assert node.bmc is not None
    host = bmc_host(node) + (f":{node.bmc.port}" if node.bmc.port else "")
    argv = [op[0], "-D", "LAN_2_0", "-h", host, "-l", "ADMIN"]
    if node.bmc.user:
        argv += ["-u", node.bmc.user]
    if conf:
        argv += ["--config-file", conf]
    if cfg.freeipmi_workaround:
        argv += ["-W", cfg.freeipmi_workaround]
    per_try_ms = int(cfg.timeout * 1000 / (cfg.retries + 1))
    argv += [
        "--session-timeout",
        str(int(cfg.timeout * 1000)),
        "--retransmission-timeout",
        str(per_try_ms),
    ]
    if op[0] == "ipmi-sensors":
        argv += ["--quiet-cache", "--sdr-cache-recreate", "--output-sensor-state"]
    return argv + list(op[1:])


@contextlib.contextmanager
def _freeipmi_conf(password: str | None) -> Iterator[str | None]:
    if password is None:
        yield None
        return
    folder = tempfile.mkdtemp(prefix="dcc-ipmi-")  # 0700
    path = os.path.join(folder, "freeipmi.conf")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"password {password}\n")
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(folder)


_SILENT = (
    "unable to establish",
    "connection timed out",
    "session timeout",
    "no response",
    "insufficient resources for session",
)
_REFUSED_AUTH = (
    "password invalid",
    "unauthorized name",
    "rakp",
    "username invalid",
    "invalid password",
)


READS = frozenset({"sdr", "chassis", "power_status", "dcmi", "sel"})
"""Operations safe to repeat. A power command is never repeated: one sent but not
acknowledged has an unknown outcome and is read back instead (RELIABILITY F1)."""


async def run_ipmi(
    transports: Transports,
    inventory: Inventory,
    cfg: PowerConfig,
    node: Node,
    op: str,
    *,
    extra: Sequence[str] = (),
) -> CommandResult:
    """Run one IPMI operation; a read gets one more try after a timeout or no session.

    Raises:
        BmcSilent: no session (timeout, no answer; with ipmitool a wrong password
            reads the same, so the message says both).
        TransportError: the tool could not run or was killed.
    """
    try:
        return await _run_ipmi_once(transports, inventory, cfg, node, op, extra=extra)
    except (BmcSilent, CommandTimeout) as exc:
        if op not in READS:
            raise
        log.info("%s BMC: %s failed (%s); one more try", node.name, op, exc)
    return await _run_ipmi_once(transports, inventory, cfg, node, op, extra=extra)


async def _run_ipmi_once(
    transports: Transports,
    inventory: Inventory,
    cfg: PowerConfig,
    node: Node,
    op: str,
    *,
    extra: Sequence[str] = (),
) -> CommandResult:
    """Run one IPMI operation against ``node``'s BMC with the tool the config names."""
    assert node.bmc is not None
    password = read_secret(node.bmc.password, inventory)
    tool = cfg.tool_for(node.name)
    deadline = cfg.timeout * (cfg.retries + 1) + 5.0
    if tool == "ipmitool":
        argv = ipmitool_argv(cfg, node, [*IPMITOOL[op], *extra])
        env = {"IPMI_PASSWORD": password} if password is not None else {}
        result = await transports.proc.run(argv, timeout=deadline, env=env)
    else:
        with _freeipmi_conf(password) as conf:
            argv = freeipmi_argv(cfg, node, [*FREEIPMI[op], *extra], conf)
            # freeipmi keeps its SDR cache in $HOME; give it a private one.
            env = {"HOME": tempfile.gettempdir()}
            result = await transports.proc.run(argv, timeout=deadline, env=env)
    if result.exit_status != 0:
        err = (result.stderr or result.stdout).strip().splitlines()
        why = err[-1] if err else f"exit {result.exit_status}"
        low = " ".join(err).lower()
        if any(w in low for w in _REFUSED_AUTH):
            raise BmcRefused(f"{node.name} BMC refused the credentials: {why}")
        if any(w in low for w in _SILENT):
            raise BmcSilent(
                f"{node.name} BMC {bmc_host(node)}: no IPMI session ({why}); "
                "the BMC is silent or refused the credentials"
            )
        raise BmcRefused(f"{node.name} BMC: {' '.join(IPMITOOL.get(op, [op]))}: {why}")
    return result
