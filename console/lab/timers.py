"""systemd's transient timers on the lab's hosts: ``systemd-run --on-active``.

A drill's dead man's switch on a real host is a transient timer:
``systemd-run --unit=NAME --on-active=90s -- /bin/sh -c 'RESTORE'``, cancelled
with ``systemctl stop NAME.timer``. The lab answers those the way systemd does
and, when a timer is not stopped in time, runs its command on that host through
the lab's own command handling -- so the restore really happens, by the target,
with nobody connected.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from console.plugin import CommandReply

log = logging.getLogger(__name__)

_SPAN = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|sec|m|min)?$")


@dataclass(slots=True)
class Timer:
    host: str
    unit: str
    command: str
    due: float
    handle: asyncio.TimerHandle | None = None
    fired_at: float | None = None
    reply: CommandReply | None = None


@dataclass(slots=True)
class HostTimers:
    """Transient timers of every lab host, keyed by (host, unit)."""

    now: Callable[[], float]
    speed: float
    run: Callable[[str, str], Awaitable[CommandReply]]
    """Runs a command on a host (the lab's ``answer``) when a timer fires."""
    active: dict[tuple[str, str], Timer] = field(default_factory=dict)
    fired: list[Timer] = field(default_factory=list)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def answer(self, host: str, command: str) -> CommandReply | None:
        """``systemd-run --on-active`` and ``systemctl stop|is-active X.timer``; else None."""
        try:
            argv = shlex.split(command)
        except ValueError:
            return None
        if argv[:1] == ["systemd-run"]:
            return self._run(host, argv)
        if argv[:1] == ["systemctl"] and len(argv) == 3 and argv[2].endswith(".timer"):
            unit = argv[2].removesuffix(".timer")
            if argv[1] == "stop":
                timer = self.active.pop((host, unit), None)
                if timer is not None and timer.handle is not None:
                    timer.handle.cancel()
                return CommandReply()
            if argv[1] == "is-active":
                up = (host, unit) in self.active
                return CommandReply(stdout="active\n" if up else "inactive\n",
                                    exit_status=0 if up else 3)  # fmt: skip
        return None

    def _run(self, host: str, argv: list[str]) -> CommandReply:
        unit, delay, rest = None, None, []
        args = iter(argv[1:])
        for a in args:
            if a == "--":
                rest = list(args)
                break
            if a.startswith("--unit="):
                unit = a.split("=", 1)[1]
            elif a.startswith("--on-active="):
                delay = _span(a.split("=", 1)[1])
            elif a.startswith("-"):
                continue  # --timer-property=..., --quiet, --collect
            else:
                rest = [a, *args]
                break
        if unit is None or delay is None or not rest:
            return CommandReply(
                stderr="lab: systemd-run needs --unit=, --on-active= and a command\n",
                exit_status=1,
            )
        if (host, unit) in self.active:
            return CommandReply(stderr=f"Failed to start transient timer unit: Unit {unit}.timer "
                                "already exists.\n", exit_status=1)  # fmt: skip
        command = " ".join(shlex.quote(w) for w in rest)
        if rest[:2] == ["/bin/sh", "-c"] and len(rest) == 3:
            command = rest[2]
        timer = Timer(host, unit, command, self.now() + delay)
        loop = asyncio.get_running_loop()
        timer.handle = loop.call_later(delay / self.speed, self._fire, host, unit)
        self.active[(host, unit)] = timer
        return CommandReply(
            stdout=f"Running timer as unit: {unit}.timer\n"
            f"Will run service as unit: {unit}.service\n"
        )

    def _fire(self, host: str, unit: str) -> None:
        timer = self.active.pop((host, unit), None)
        if timer is None:
            return
        timer.fired_at = self.now()
        log.warning("lab: timer %s on %s fired: %s", unit, host, timer.command)

        async def go() -> None:
            timer.reply = await self.run(host, timer.command)
            self.fired.append(timer)

        task = asyncio.get_running_loop().create_task(go())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_all(self) -> None:
        for timer in self.active.values():
            if timer.handle is not None:
                timer.handle.cancel()
        self.active.clear()


def _span(text: str) -> float | None:
    m = _SPAN.match(text.strip())
    if m is None:
        return None
    value = float(m.group(1))
    unit = m.group(2) or "s"
    return value / 1000 if unit == "ms" else value * 60 if unit in ("m", "min") else value
