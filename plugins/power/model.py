"""What one BMC tells about its node, whatever the protocol (IPMI or Redfish).

Parsers fill these; collectors turn them into ``Reading``s. Unknown is None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SensorKind = Literal["inlet", "exhaust", "temp", "fan", "power", "psu", "redundancy", "other"]
SensorState = Literal["ok", "warning", "critical", "absent", "unknown"]


@dataclass(frozen=True, slots=True)
class Sensor:
    """One sensor as the BMC reports it."""

    name: str
    kind: SensorKind
    value: float | None
    unit: str = ""
    state: SensorState = "unknown"
    text: str = ""
    """The BMC's own words (``Presence detected``, ``Fully Redundant``)."""


@dataclass(frozen=True, slots=True)
class Psu:
    name: str
    state: SensorState
    """``ok``, ``critical`` (failed, input lost), ``absent`` or ``unknown``."""
    input_w: float | None = None
    capacity_w: float | None = None
    text: str = ""


@dataclass(frozen=True, slots=True)
class LogEvent:
    """A SEL or Redfish log entry."""

    id: str
    when: str
    severity: Literal["ok", "warning", "critical"]
    message: str


@dataclass(frozen=True, slots=True)
class BmcSnapshot:
    """Everything one poll of one BMC learned; None where it said nothing."""

    power_state: Literal["on", "off"] | None = None
    inlet_c: float | None = None
    exhaust_c: float | None = None
    power_w: float | None = None
    sensors: tuple[Sensor, ...] = ()
    psus: tuple[Psu, ...] = ()
    redundancy: Literal["ok", "lost"] | None = None
    """PSU redundancy as the BMC states it (or derived from PSU states)."""
    events: tuple[LogEvent, ...] = ()
    identify: bool | None = None
    notes: tuple[str, ...] = field(default=())
    """What could not be read (a resource missing, DCMI unsupported)."""

    @property
    def fans(self) -> tuple[Sensor, ...]:
        return tuple(s for s in self.sensors if s.kind == "fan")

    @property
    def fans_failed(self) -> tuple[Sensor, ...]:
        return tuple(s for s in self.fans if s.state == "critical")

    @property
    def psus_failed(self) -> tuple[Psu, ...]:
        return tuple(p for p in self.psus if p.state == "critical")


def redundancy_from_psus(
    psus: tuple[Psu, ...], declared: str | None
) -> Literal["ok", "lost"] | None:
    """The BMC's own redundancy word wins; else two or more PSUs with one failed is *lost*."""
    if declared in ("ok", "lost"):
        return declared  # type: ignore[return-value]
    present = [p for p in psus if p.state != "absent"]
    if len(present) < 2:
        return None  # one PSU (or none known): no redundancy to speak of
    if any(p.state == "critical" for p in present):
        return "lost"
    if all(p.state == "ok" for p in present):
        return "ok"
    return None
