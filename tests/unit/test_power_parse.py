"""Power parsers on the real samples (IPMI and Redfish) and on arbitrary input."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.plugin import ParseError
from plugins.power import parse_ipmi as pi
from plugins.power import parse_redfish as pr

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples"


def sample(rel: str) -> str:
    path = SAMPLES / rel
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path.read_text(encoding="utf-8")


def rf(name: str) -> dict:
    return pr.load(sample(f"redfish/{name}"))


def test_ipmitool_sdr_of_a_system_x_reads_inlet_power_fans_and_keeps_unreadable_unknown():
    sensors = {
        s.name: s for s in pi.parse_sdr(sample("ipmi/telegraf-ipmitool-sdr-ibm-systemx.txt"))
    }
    assert sensors["Ambient Temp"].kind == "inlet" and sensors["Ambient Temp"].value == 20
    assert sensors["Avg Power"].kind == "power" and sensors["Avg Power"].value == 210
    assert sensors["Fan 1A Tach"].kind == "fan" and sensors["Fan 1A Tach"].value == 2610
    assert sensors["Planar 12V"].value == 12.04
    assert all(s.value is None for s in sensors.values() if s.text.startswith("0x"))
    unreadable = [s for s in sensors.values() if "not readable" in s.text.lower()]
    assert all(s.value is None for s in unreadable)


def test_ipmitool_psu_csv_shows_presence_and_full_redundancy():
    sensors = pi.parse_sdr(sample("ipmi/ipmitool-sdr-type-psu-csv.txt"))
    psus = pi.psus_from(sensors)
    assert [p.state for p in psus] == ["ok"] or len(psus) >= 1
    assert pi.redundancy_from(sensors) == "ok"
    assert all(p.state == "ok" for p in psus)


def test_ipmitool_elist_with_a_failed_psu_and_lost_redundancy():
    text = (
        "PS1 Status       | 85h | ok  | 10.1 | Presence detected\n"
        "PS2 Status       | 86h | cr  | 10.2 | Presence detected, Power Supply AC lost\n"
        "PS Redundancy    | 77h | cr  |  7.1 | Redundancy Lost\n"
        "Inlet Temp       | 04h | ok  | 64.1 | 24 degrees C\n"
        "Fan3             | 32h | ns  | 29.3 | No Reading\n"
    )
    sensors = pi.parse_sdr(text)
    psus = pi.psus_from(sensors)
    assert [p.state for p in psus] == ["ok", "critical"]
    assert pi.redundancy_from(sensors) == "lost"
    fan = next(s for s in sensors if s.name == "Fan3")
    assert fan.kind == "fan" and fan.value is None and fan.state == "unknown"


def test_dcmi_power_readings_from_ipmitool_and_freeipmi():
    assert pi.parse_dcmi_power(sample("ipmi/telegraf-dcmi-power-reading.txt")) == 167
    # freeipmi says the measurement is "Not Available": 105 W is still the current reading
    assert pi.parse_dcmi_power(sample("ipmi/freeipmi-ipmi-dcmi-power-stats.txt")) == 105
    deactivated = "Instantaneous power reading: 0 Watts\nPower reading state is: deactivated\n"
    assert pi.parse_dcmi_power(deactivated) is None
    with pytest.raises(ParseError):
        pi.parse_dcmi_power("DCMI request failed because: Invalid command (c1)")


def test_freeipmi_sel_marks_critical_events():
    events = pi.parse_sel(sample("ipmi/freeipmi-ipmi-sel-hpe.txt"))
    crit = [e for e in events if e.severity == "critical"]
    assert len(events) == 5 and len(crit) == 2
    assert "SysHealth_Stat" in crit[1].message


def test_ipmitool_sel_elist_and_power_state():
    sel = "   1 | 11/29/2026 | 10:01:02 | Power Supply #0x51 | Power Supply AC lost | Asserted\n"
    (event,) = pi.parse_sel(sel)
    assert event.severity == "critical" and "AC lost" in event.message
    assert pi.parse_sel("SEL has no entries\n") == []
    assert pi.parse_power_state("Chassis Power is off\n") == "off"
    assert pi.parse_power_state("127.0.0.1: on\n") == "on"


def test_redfish_legacy_thermal_of_dell_hpe_and_dmtf():
    dell = pr.parse_thermal(rf("dell-idrac-thermal.json"))
    # this iDRAC lists only a CPU temperature: the inlet stays unknown, not 0
    assert [(s.kind, s.value) for s in dell if s.kind != "fan"] == [("temp", 40)]
    assert sum(1 for s in dell if s.kind == "fan") == 16
    for name in ("hpe-ilo4-thermal.json", "hpe-ilo5-thermal.json"):
        sensors = pr.parse_thermal(rf(name))
        inlet = [s for s in sensors if s.kind == "inlet"]
        assert inlet and inlet[0].value == 19
        assert all(s.unit == "%" for s in sensors if s.kind == "fan")
    dmtf = pr.parse_thermal(rf("dmtf-rackmount1-thermal.json"))
    assert any(s.kind == "fan" and s.value == 2100 for s in dmtf)


def test_redfish_legacy_power_of_dell_and_dmtf():
    watts, psus, _red = pr.parse_power(rf("dell-idrac-power.json"))
    assert watts == 429 and psus and psus[0].capacity_w == 750
    watts, psus, _red = pr.parse_power(rf("dmtf-rackmount1-power.json"))
    assert watts == 344 and psus[0].state == "warning"


def test_redfish_subsystems_and_environment_metrics():
    assert pr.parse_thermal_metrics(rf("dmtf-rackmount1-thermalmetrics.json")) == (24.8, 40.5)
    fan = pr.parse_fan(rf("dmtf-rackmount1-fan-bay1.json"))
    assert fan.value == 2200 and fan.unit == "RPM" and fan.state == "ok"
    assert pr.parse_fan_redundancy(rf("dmtf-rackmount1-thermalsubsystem.json")) == "ok"
    # the mockup's PSU redundancy group is UnavailableOffline with Health OK: not stated
    assert (
        pr.parse_fan_redundancy(rf("dmtf-rackmount1-powersubsystem.json"), "PowerSupplyRedundancy")
        is None
    )
    psu = pr.parse_power_supply(
        rf("dmtf-rackmount1-psu-bay1.json"), rf("dmtf-rackmount1-psu-bay1-metrics.json")
    )
    assert psu.state == "warning" and psu.input_w == 937.4 and psu.capacity_w == 400
    assert pr.parse_environment_metrics(rf("dmtf-rackmount1-environmentmetrics.json")) == (374, 39)
    assert pr.parse_environment_metrics(rf("dmtf-rackmount1-cpu1-envmetrics.json")) == (12.87, 44)
    assert pr.parse_sensor(rf("dmtf-rackmount1-sensor-totalpower.json")) == ("Power", 374, "W")


def test_redfish_systems_give_power_state_reset_types_and_identify():
    dell = pr.parse_system(rf("dell-idrac-system.json"))
    assert dell["power_state"] in ("on", "off") and "ForceOff" in dell["reset_types"]
    dmtf = pr.parse_system(rf("dmtf-rackmount1-system.json"))
    assert dmtf["power_state"] == "on" and dmtf["identify"] is False
    assert pr.parse_system({})["power_state"] is None


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_ipmi_parsers_raise_only_parse_error_on_any_text(text: str):
    for fn in (
        pi.parse_sdr,
        pi.parse_sensor_list,
        pi.parse_freeipmi_sensors,
        pi.parse_dcmi_power,
        pi.parse_power_state,
        pi.parse_chassis_status,
        pi.parse_sel,
    ):
        with contextlib.suppress(ParseError):
            fn(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "Temperatures",
        "Fans",
        "PowerControl",
        "PowerSupplies",
        "Status",
        "Members",
        "TemperatureSummaryCelsius",
        "SpeedPercent",
        "PowerWatts",
        "Actions",
        "Redundancy",
        "PowerState",
        "FanRedundancy",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, json_values, max_size=6))
def test_redfish_parsers_never_raise_on_odd_json(data: dict):
    pr.parse_thermal(data)
    pr.parse_power(data)
    pr.parse_thermal_metrics(data)
    pr.parse_fan(data)
    pr.parse_fan_redundancy(data)
    pr.parse_power_supply(data, data)
    pr.parse_environment_metrics(data)
    pr.parse_system(data)
    pr.parse_log_entries(data)
    pr.members(data)


@given(st.binary(max_size=200))
def test_redfish_load_raises_only_parse_error(raw: bytes):
    with contextlib.suppress(ParseError):
        pr.load(raw)
