"""Cold start to first frame: `dcc` against a bare Textual app, in fresh processes.

Each run is a new interpreter (a cold import), the app runs headless and exits
right after its first refresh. The figure that matters is the ratio: both
sides run on the same machine in the same minute.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

BARE = """
from textual.app import App
from textual.widgets import Static
class Bare(App):
    def compose(self):
        yield Static("hello")
    def on_mount(self):
        self.call_after_refresh(self.exit)
Bare().run(headless=True, size=(80, 24))
"""

DCC = """
from console.app import DcConsoleApp
from console.options import LaunchOptions
class FirstFrame(DcConsoleApp):
    def _start_session(self):
        pass  # the session starts after the first frame; not part of this figure
    def on_mount(self):
        super().on_mount()
        self.call_after_refresh(self.exit)
FirstFrame(LaunchOptions()).run(headless=True, size=(80, 24))
"""


def _time(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
    return time.perf_counter() - start


def run(repeat: int = 7) -> dict[str, float]:
    bare, dcc = [], []
    for _ in range(repeat):  # interleaved so both see the same machine load
        bare.append(_time(BARE))
        dcc.append(_time(DCC))
    b, d = statistics.median(bare), statistics.median(dcc)
    return {"bare_s": b, "dcc_s": d, "ratio": d / b}


CLOCK = """
import asyncio, sys, time
from textual.app import App
from textual.widgets import Footer, Static
class Clock(App):
    def compose(self):
        yield Static("", id="clock")
        yield Footer()
    def on_mount(self):
        self.set_interval(1.0, self.tick)
    def tick(self):
        self.query_one("#clock", Static).update(time.strftime("%H:%M:%S"))
async def main(seconds):
    async with Clock().run_test(size=(120, 40)):
        await asyncio.sleep(2)
        cpu, start = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        print(100 * (time.process_time() - cpu) / (time.perf_counter() - start))
asyncio.run(main(float(sys.argv[1])))
"""


def idle_floor(seconds: float) -> float:
    """CPU (% of a core) of a bare Textual app that only shows a clock, as the console's
    header does: the floor of any Textual console on this machine."""
    out = subprocess.run(
        [sys.executable, "-c", CLOCK, str(seconds)],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    return float(out.stdout.strip().splitlines()[-1])
