"""Make remote text safe to put on the operator's terminal.

Tool output and API fields come from hosts and BMCs we do not trust (a
compromised BMC is hostile input). Control characters, escape sequences
(CSI, OSC incl. OSC 52 clipboard writes, DCS) and bidi overrides must never
reach the terminal; Rich/Textual would otherwise pass some of them through.
"""

from __future__ import annotations

import re

# ESC-introduced sequences: CSI ... final, OSC ... BEL/ST, DCS/SOS/PM/APC ... ST, 2-char escapes.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
# C0 except tab/newline, DEL, C1, and the bidi controls that reorder what is shown.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f]")


def clean(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` without escape sequences and control characters (tabs become spaces)."""
    text = _ESCAPES.sub("", text)
    text = text.replace("\t", " ")
    if keep_newlines:
        # CRLF output (Windows tools, HTTP bodies) would otherwise show U+FFFD on every line.
        text = text.replace("\r\n", "\n")
    else:
        text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return _CONTROLS.sub("\N{REPLACEMENT CHARACTER}", text)
