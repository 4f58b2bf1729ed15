"""The services parsers on real output, on odd output, and on arbitrary text."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.plugin import ParseError
from plugins.services.collect import match_units, show_command, unit_state_name
from plugins.services.parse import (
    UnitState,
    parse_systemctl_show,
    parse_systemctl_status,
    worst,
)

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples"
FAILED_STATUS = SAMPLES / "systemd" / "systemctl-status-failed-nvidia-vgpu-mgr.txt"

SHOW_TWO_UNITS = """\
Result=success
NRestarts=0
ExecMainStatus=0
Id=minio.service
LoadState=loaded
ActiveState=active
SubState=running
ActiveEnterTimestamp=Thu 2025-03-20 13:55:26 UTC

Result=exit-code
NRestarts=4
ExecMainStatus=1
Id=mlflow.service
LoadState=loaded
ActiveState=failed
SubState=failed
ActiveEnterTimestamp=
"""


def test_show_with_two_units_gives_both_in_order():
    units = parse_systemctl_show(SHOW_TWO_UNITS)
    assert [u.id for u in units] == ["minio.service", "mlflow.service"]
    minio, mlflow = units
    assert (minio.active_state, minio.sub_state, minio.n_restarts) == ("active", "running", 0)
    assert minio.active_enter_ts == 1742478926.0
    assert mlflow.failed and mlflow.result == "exit-code" and mlflow.exec_main_status == 1
    assert mlflow.n_restarts == 4
    assert mlflow.active_enter is None and mlflow.active_enter_ts is None
    assert mlflow.summary == "failed (exit-code)"
    assert minio.summary == "active (running)"


def test_show_odd_or_missing_fields_are_unknown_not_zero():
    (unit,) = parse_systemctl_show(
        "Id=x.service\nNRestarts=[not set]\nActiveEnterTimestamp=Thu 2025-03-20 13:55:26 CET\n"
    )
    assert unit.n_restarts is None
    assert unit.active_state is None and unit.load_state is None
    assert unit.active_enter == "Thu 2025-03-20 13:55:26 CET"
    assert unit.active_enter_ts is None  # not UTC: we do not guess the zone
    assert unit.summary == "unknown"


def test_show_keeps_unrequested_properties_aside_and_tolerates_crlf():
    (unit,) = parse_systemctl_show("Id=a.service\r\nMainPID=42\r\nActiveState=active\r\n")
    assert unit.extra == {"MainPID": "42"}
    assert unit.active_state == "active"


def test_show_of_empty_output_is_no_units():
    assert parse_systemctl_show("") == []
    assert parse_systemctl_show("\n\n") == []


def test_show_rejects_lines_that_are_not_key_value_and_names_the_line():
    with pytest.raises(ParseError, match="line 2"):
        parse_systemctl_show("Id=a.service\nFailed to connect to bus: No such file\n")


def test_status_of_the_real_failed_unit_sample():
    if not FAILED_STATUS.exists():
        pytest.skip("../shared/samples is not present")
    unit = parse_systemctl_status(FAILED_STATUS.read_text(encoding="utf-8"))
    assert unit.id == "nvidia-vgpu-mgr.service"
    assert unit.description == "NVIDIA vGPU Manager Daemon"
    assert unit.load_state == "loaded"
    assert unit.active_state == "failed" and unit.sub_state == "failed"
    assert unit.result == "exit-code"
    assert unit.exec_main_status == 1
    assert unit.active_enter == "Thu 2025-03-20 13:55:26 UTC"
    assert unit.active_enter_ts == 1742478926.0
    assert unit.extra["Invocation"] == "124cbaf9031a4f618acfb6d2c5730a8d"
    assert len(unit.log) == 5 and "Failed with result 'exit-code'" in unit.log[-1]


def test_status_of_a_running_unit():
    text = (
        "● minio.service - MinIO\n"
        "     Loaded: loaded (/etc/systemd/system/minio.service; enabled; preset: enabled)\n"
        "     Active: active (running) since Mon 2025-01-06 08:00:00 UTC; 2 weeks ago\n"
        "   Main PID: 811 (minio)\n"
    )
    unit = parse_systemctl_status(text)
    assert (unit.active_state, unit.sub_state, unit.result) == ("active", "running", "success")
    assert unit.exec_main_status is None


def test_status_without_a_unit_header_or_active_line_is_a_parse_error():
    with pytest.raises(ParseError, match="header"):
        parse_systemctl_status("Unit foo.service could not be found.\n")
    with pytest.raises(ParseError, match="Active"):
        parse_systemctl_status("● foo.service - Foo\n   Loaded: loaded\n")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises_anything_but_parse_error(text: str):
    for parser in (parse_systemctl_show, parse_systemctl_status):
        with contextlib.suppress(ParseError):
            parser(text)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(
                [
                    "Id",
                    "ActiveState",
                    "SubState",
                    "NRestarts",
                    "Result",
                    "ActiveEnterTimestamp",
                    "ExecMainStatus",
                    "LoadState",
                ]
            ),
            st.text(
                alphabet=st.characters(
                    blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
                ),
                max_size=30,
            ),
            min_size=1,
        ),
        max_size=5,
    )
)
def test_any_key_value_blocks_parse_to_one_unit_each(blocks: list[dict[str, str]]):
    text = "\n".join("".join(f"{k}={v}\n" for k, v in b.items()) for b in blocks)
    units = parse_systemctl_show(text)
    assert len(units) == len(blocks)
    for unit in units:
        assert unit.n_restarts is None or isinstance(unit.n_restarts, int)


def test_show_command_quotes_every_unit():
    cmd = show_command(["minio.service", "odd unit;rm -rf /.service"])
    assert cmd.startswith("systemctl show -p Id,LoadState,ActiveState,SubState,Result,NRestarts,")
    assert cmd.endswith("-- minio.service 'odd unit;rm -rf /.service'")


def test_units_are_matched_by_order_then_by_id():
    a, b = UnitState(id="a.service"), UnitState(id="b.service")
    assert match_units(["alias.service", "b.service"], [a, b])["alias.service"] is a
    assert match_units(["a.service", "b.service", "c.service"], [b]) == {"b.service": b}


def test_unit_state_names():
    assert unit_state_name(None) == "unknown"
    assert unit_state_name(UnitState(active_state="active")) == "ok"
    assert unit_state_name(UnitState(active_state="activating")) == "degraded"
    assert unit_state_name(UnitState(active_state="failed")) == "down"
    assert worst(["ok", "slow", "down", "unknown"]) == "down"
    assert worst([]) == "ok"
