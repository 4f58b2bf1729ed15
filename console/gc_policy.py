"""Garbage collection at fleet size: no stop-the-world pauses in the event loop.

CPython's cyclic collector walks every tracked object in a full (generation 2)
collection. At 1,000 hosts the Store holds over half a million of them
(readings, history rings, statuses) and a full collection took 100-400 ms on a
2-core machine, a dozen times in half a minute of polling: the screen and the
keyboard froze for that long each time (measured by `make bench`). The
Store's objects never form cycles (a replaced reading is freed by its
reference count at once), so those walks found nothing.

The policy: once a second, ``gc.freeze()`` moves what survived into the
permanent generation, which collections skip (it is a list splice, O(1)).
Young objects are still collected as usual; a full collection waits for ten
times more young collections than CPython's default (a poll round allocates
a million objects, which by default set off a dozen full collections).
Every ``full_every_s`` the frozen objects are handed back (``gc.unfreeze()``)
so that cyclic garbage among them (finished tasks holding tracebacks) is
collected: one full collection in that period instead of one every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time

log = logging.getLogger(__name__)

FREEZE_EVERY_S = 1.0
FULL_EVERY_S = 600.0
GEN2_AFTER = 100
"""Generation-1 collections between two full ones (CPython's default: 10)."""


class GcPolicy:
    """Started with a session, stopped with it. The process-wide gc state is restored at stop."""

    def __init__(self, freeze_every_s: float = FREEZE_EVERY_S, full_every_s: float = FULL_EVERY_S):
        self.freeze_every_s = freeze_every_s
        self.full_every_s = full_every_s
        self.freezes = 0
        self.thaws = 0
        self._task: asyncio.Task[None] | None = None
        self._thresholds: tuple[int, int, int] | None = None

    def start(self) -> None:
        if self._task is None:
            self._thresholds = gc.get_threshold()
            gen0, gen1, gen2 = self._thresholds
            gc.set_threshold(gen0, gen1, max(gen2, GEN2_AFTER))
            gc.freeze()  # what start-up made (modules, inventory, widgets) lives on
            self._task = asyncio.get_running_loop().create_task(self._run(), name="gc-policy")

    async def _run(self) -> None:
        last_thaw = time.monotonic()
        while True:
            await asyncio.sleep(self.freeze_every_s)
            now = time.monotonic()
            if now - last_thaw >= self.full_every_s:
                gc.unfreeze()  # the next automatic full collection sees everything again
                self.thaws += 1
                last_thaw = now
            else:
                gc.freeze()
                self.freezes += 1

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            gc.unfreeze()
            if self._thresholds is not None:
                gc.set_threshold(*self._thresholds)
