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
