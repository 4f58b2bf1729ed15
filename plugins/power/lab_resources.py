"""The Redfish resources a lab BMC serves, built from its SimHost on each GET.

Shapes follow the DMTF public-rackmount1 mockup and the iDRAC samples in
``shared/samples/redfish``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from plugins.power.lab import Bmc, PowerLab

C = "/redfish/v1/Chassis/1"
S = "/redfish/v1/Systems/1"
RESET_TYPES = [
    "On",
    "ForceOff",
    "GracefulShutdown",
    "PowerCycle",
    "ForceRestart",
    "GracefulRestart",
]


def _status(health: str = "OK", state: str = "Enabled") -> dict[str, str]:
    return {"State": state, "Health": health}


def _fans(lab: PowerLab, name: str) -> list[dict[str, Any]]:
    host = lab.host(name)
    failed = host.fault("power.fan_failed") is not None
    base = 3000 + 9000 * host.load if host.powered else 0
    out = []
    for i in (1, 2, 3, 4):
        dead = failed and i == 2
        rpm = 0 if dead else round(base + 37 * i)
        out.append(
            {
                "Id": f"Bay{i}",
                "Name": f"Fan Bay {i}",
                "rpm": rpm,
                "pct": round(rpm / 150) if rpm else 0,
                "health": "Critical" if dead else "OK",
            }
        )
    return out


def _psus(lab: PowerLab, name: str) -> list[dict[str, Any]]:
    host = lab.host(name)
    lost = host.fault("power.psu_lost") is not None
    watts = host.power_w
    share = watts if lost else watts / 2
    return [
        {"Id": "Bay1", "Name": "Power Supply Bay 1", "ok": True, "watts": round(share, 1)},
        {
            "Id": "Bay2",
            "Name": "Power Supply Bay 2",
            "ok": not lost,
            "watts": 0.0 if lost else round(share, 1),
        },
    ]


def resource(lab: PowerLab, bmc: Bmc, path: str) -> dict[str, Any] | None:
    name = bmc.name
    host = lab.host(name)
    inlet, exhaust = lab.inlet(name), lab.exhaust(name)
    watts = round(host.power_w, 1)
    lost = host.fault("power.psu_lost") is not None
    if path == "/redfish/v1/Systems":
        return _collection("/redfish/v1/Systems", [S])
    if path == S:
        return {
            "@odata.id": S,
            "@odata.type": "#ComputerSystem.v1_20_0.ComputerSystem",
            "Id": "1",
            "Name": name,
            "HostName": name,
            "PowerState": "On" if host.powered else "Off",
            "LocationIndicatorActive": bmc.identify,
            "Status": _status(),
            "Actions": {
                "#ComputerSystem.Reset": {
                    "target": f"{S}/Actions/ComputerSystem.Reset",
                    "ResetType@Redfish.AllowableValues": RESET_TYPES,
                }
            },
            "LogServices": {"@odata.id": f"{S}/LogServices"},
            "Links": {"Chassis": [{"@odata.id": C}]},
        }
    if path == f"{S}/LogServices":
        return _collection(path, [f"{S}/LogServices/SEL"])
    if path == f"{S}/LogServices/SEL":
        return {
            "@odata.id": path,
            "Id": "SEL",
            "Name": "System Event Log",
            "Entries": {"@odata.id": path + "/Entries"},
        }
    if path == f"{S}/LogServices/SEL/Entries":
        members = [dict(e, **{"@odata.id": f"{path}/{e['Id']}"}) for e in bmc.log]
        return {
            "@odata.id": path,
            "Name": "Log Entries",
            "Members": members,
            "Members@odata.count": len(members),
        }
    if path == "/redfish/v1/Chassis":
        return _collection(path, [C])
    if path == C:
        return {
            "@odata.id": C,
            "Id": "1",
            "Name": f"{name} chassis",
            "ChassisType": "RackMount",
            "PowerState": "On" if host.powered else "Off",
            "Status": _status(),
            "Thermal": {"@odata.id": f"{C}/Thermal"},
            "Power": {"@odata.id": f"{C}/Power"},
            "ThermalSubsystem": {"@odata.id": f"{C}/ThermalSubsystem"},
            "PowerSubsystem": {"@odata.id": f"{C}/PowerSubsystem"},
            "EnvironmentMetrics": {"@odata.id": f"{C}/EnvironmentMetrics"},
        }
    if path == f"{C}/Thermal":
        return {
            "@odata.id": path,
            "Id": "Thermal",
            "Name": "Thermal",
            "Temperatures": [
                {
                    "MemberId": "0",
                    "Name": "Inlet Temp",
                    "PhysicalContext": "Intake",
                    "ReadingCelsius": inlet,
                    "UpperThresholdNonCritical": 27,
                    "UpperThresholdCritical": 32,
                    "Status": _status(),
                },
                {
                    "MemberId": "1",
                    "Name": "Exhaust Temp",
                    "PhysicalContext": "Exhaust",
                    "ReadingCelsius": exhaust,
                    "Status": _status(),
                },
            ],
            "Fans": [
                {
                    "MemberId": str(i),
                    "Name": f["Name"],
                    "Reading": f["rpm"],
                    "ReadingUnits": "RPM",
                    "Status": _status(f["health"]),
                }
                for i, f in enumerate(_fans(lab, name))
            ],
        }
    if path == f"{C}/Power":
        return {
            "@odata.id": path,
            "Id": "Power",
            "Name": "Power",
            "PowerControl": [
                {
                    "MemberId": "0",
                    "Name": "System Input Power",
                    "PowerConsumedWatts": watts,
                    "PowerCapacityWatts": 2 * 3000,
                    "Status": _status(),
                }
            ],
            "PowerSupplies": [
                {
                    "MemberId": str(i),
                    "Name": p["Name"],
                    "PowerInputWatts": p["watts"],
                    "PowerCapacityWatts": 3000,
                    "Status": _status("OK" if p["ok"] else "Critical"),
                }
                for i, p in enumerate(_psus(lab, name))
            ],
            "Redundancy": [
                {
                    "MemberId": "0",
                    "Name": "PSU Redundancy",
                    "Mode": "N+m",
                    "MinNumNeeded": 1,
                    "Status": _status("Critical" if lost else "OK"),
                }
            ],
        }
    if path == f"{C}/ThermalSubsystem":
        fan_failed = host.fault("power.fan_failed") is not None
        return {
            "@odata.id": path,
            "Id": "ThermalSubsystem",
            "Name": "Thermal Subsystem for Chassis",
            "FanRedundancy": [
                {
                    "RedundancyType": "NPlusM",
                    "MinNeededInGroup": 3,
                    "Status": _status("Warning" if fan_failed else "OK"),
                }
            ],
            "Fans": {"@odata.id": f"{path}/Fans"},
            "ThermalMetrics": {"@odata.id": f"{path}/ThermalMetrics"},
            "Status": _status("Warning" if fan_failed else "OK"),
        }
    if path == f"{C}/ThermalSubsystem/ThermalMetrics":
        return {
            "@odata.id": path,
            "Id": "ThermalMetrics",
            "Name": "Chassis Thermal Metrics",
            "TemperatureSummaryCelsius": {
                "Intake": {"Reading": inlet, "DataSourceUri": f"{C}/Sensors/IntakeTemp"},
                "Exhaust": {"Reading": exhaust, "DataSourceUri": f"{C}/Sensors/ExhaustTemp"},
            },
        }
    if path == f"{C}/ThermalSubsystem/Fans":
        return _collection(path, [f"{path}/{f['Id']}" for f in _fans(lab, name)])
    for f in _fans(lab, name):
        if path == f"{C}/ThermalSubsystem/Fans/{f['Id']}":
            return {
                "@odata.id": path,
                "Id": f["Id"],
                "Name": f["Name"],
                "Status": _status(f["health"]),
                "SpeedPercent": {"Reading": f["pct"], "SpeedRPM": f["rpm"]},
            }
    if path == f"{C}/PowerSubsystem":
        return {
            "@odata.id": path,
            "Id": "PowerSubsystem",
            "Name": "Power Subsystem for Chassis",
            "CapacityWatts": 3000,
            "PowerSupplyRedundancy": [
                {
                    "RedundancyType": "Failover",
                    "MaxSupportedInGroup": 2,
                    "MinNeededInGroup": 1,
                    "Status": _status("Critical" if lost else "OK"),
                }
            ],
            "PowerSupplies": {"@odata.id": f"{path}/PowerSupplies"},
            "Status": _status("Critical" if lost else "OK"),
        }
    if path == f"{C}/PowerSubsystem/PowerSupplies":
        return _collection(path, [f"{path}/{p['Id']}" for p in _psus(lab, name)])
    for p in _psus(lab, name):
        base = f"{C}/PowerSubsystem/PowerSupplies/{p['Id']}"
        if path == base:
            return {
                "@odata.id": base,
                "Id": p["Id"],
                "Name": p["Name"],
                "Status": _status("OK" if p["ok"] else "Critical"),
                "LineInputStatus": "Normal" if p["ok"] else "LossOfInput",
                "PowerCapacityWatts": 3000,
                "Metrics": {"@odata.id": base + "/Metrics"},
            }
        if path == base + "/Metrics":
            return {
                "@odata.id": path,
                "Id": "Metrics",
                "Name": f"Metrics for {p['Name']}",
                "InputPowerWatts": {"Reading": p["watts"]},
            }
    if path == f"{C}/EnvironmentMetrics":
        return {
            "@odata.id": path,
            "Id": "EnvironmentMetrics",
            "Name": "Chassis Environment Metrics",
            "TemperatureCelsius": {"Reading": inlet},
            "PowerWatts": {"Reading": watts, "DataSourceUri": f"{C}/Sensors/TotalPower"},
        }
    return None


def _collection(path: str, members: list[str]) -> dict[str, Any]:
    return {
        "@odata.id": path,
        "Name": path.rsplit("/", 1)[-1],
        "Members": [{"@odata.id": m} for m in members],
        "Members@odata.count": len(members),
    }
