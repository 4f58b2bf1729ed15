"""The lab: a simulated datacenter on loopback (see ``console.lab.lab``)."""

from console.lab.faults import FRAME_FAULTS, Fault, FaultBook, FaultError
from console.lab.lab import Lab
from console.lab.sim import LabClock, SimHost

__all__ = ["FRAME_FAULTS", "Fault", "FaultBook", "FaultError", "Lab", "LabClock", "SimHost"]
