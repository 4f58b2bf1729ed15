"""Remote text made safe for the terminal (RELIABILITY.md §2.1 last row, S11)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from console.sanitize import clean

# What must never reach the terminal: C0 but tab/newline, DEL, C1 (incl. CSI \x9b), bidi.
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

ESC = "\x1b"
ST = "\x1b\\"
BEL = "\x07"

_printable = st.text(
    alphabet=st.characters(whitelist_categories=("L", "N", "P", "S", "Zs")), max_size=12
)

_pieces = st.one_of(
    _printable,
    st.characters(min_codepoint=0x00, max_codepoint=0x1F).map(str),  # C0
    st.characters(min_codepoint=0x7F, max_codepoint=0x9F).map(str),  # DEL, C1
    st.sampled_from(["\u202a", "\u202b", "\u202c", "\u202d", "\u202e"]),
    st.sampled_from(["\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f"]),
    st.builds(
        lambda p, f: f"{ESC}[{p}{f}",
        st.from_regex(r"[0-9;?]{0,6}", fullmatch=True),
        st.sampled_from("mHJKABCDsulh"),
    ),
    st.builds(lambda p: f"\x9b{p}m", st.from_regex(r"[0-9;]{0,4}", fullmatch=True)),
    st.builds(
        lambda code, body, term: f"{ESC}]{code};{body}{term}",
        st.sampled_from(["0", "8", "52"]),
        _printable,
        st.sampled_from([BEL, ST, ""]),
    ),
    st.builds(lambda body: f"{ESC}]8;;https://evil.example/{body}{ST}", _printable),
    st.builds(lambda body: f"{ESC}]52;c;{body}{BEL}", _printable),
    st.builds(lambda body, term: f"{ESC}P{body}{term}", _printable, st.sampled_from([ST, ""])),
    st.sampled_from([ESC, f"{ESC}c", f"{ESC}7", f"{ESC}=", ST, f"{ESC}{ESC}[31m"]),
)

hostile_text = st.lists(_pieces, max_size=20).map("".join)


@settings(max_examples=1000, deadline=None)
@given(hostile_text)
def test_no_control_sequence_survives(text: str) -> None:
    out = clean(text)
    assert "\x1b" not in out
    assert "\x9b" not in out
    assert "\x07" not in out
    assert FORBIDDEN.search(out) is None
    assert "\n" not in out and "\t" not in out


@settings(max_examples=1000, deadline=None)
@given(hostile_text)
def test_no_control_sequence_survives_when_newlines_are_kept(text: str) -> None:
    out = clean(text, keep_newlines=True)
    assert FORBIDDEN.search(out) is None


@settings(max_examples=300, deadline=None)
@given(_printable)
def test_plain_printable_text_is_unchanged(text: str) -> None:
    assert clean(text) == text
    assert clean(text, keep_newlines=True) == text


def test_sgr_colour_codes_are_removed_and_the_text_kept() -> None:
    assert clean("\x1b[1;31mFAILED\x1b[0m unit") == "FAILED unit"


def test_osc_52_clipboard_write_is_removed_entirely() -> None:
    assert clean("ok\x1b]52;c;cm0gLXJmIC8K\x07done") == "okdone"
    assert clean("ok\x1b]52;c;cm0gLXJmIC8K\x1b\\done") == "okdone"


def test_osc_8_hyperlink_keeps_only_its_visible_text() -> None:
    assert clean("\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\") == "click"


def test_dcs_string_is_removed() -> None:
    assert clean("a\x1bPq#0;2;0;0;0\x1b\\b") == "ab"


def test_title_set_is_removed() -> None:
    assert clean("\x1b]0;pwned\x07host up") == "host up"


def test_bidi_override_is_replaced_visibly() -> None:
    assert clean("file\u202etxt.exe") == "file\ufffdtxt.exe"


def test_newlines_and_tabs_become_spaces_by_default() -> None:
    assert clean("a\tb\nc\r\nd\re") == "a b c d e"


def test_keep_newlines_keeps_lf_and_folds_crlf() -> None:
    assert clean("line1\r\nline2\nline3", keep_newlines=True) == "line1\nline2\nline3"


def test_a_lone_escape_is_replaced_visibly() -> None:
    assert clean("a\x1b") == "a\ufffd"
