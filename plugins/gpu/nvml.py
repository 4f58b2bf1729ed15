"""The local path: NVML through pynvml (nvidia-ml-py), in a worker thread.

Gives the same readings as the SSH fast read. A function the library does not
have, or that fails for one GPU, makes that value unknown; a GPU that is lost
(NVML_ERROR_GPU_IS_LOST) is reported lost, like nvidia-smi's "Unable to
determine the device handle".
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from console.plugin import Reading
from plugins.gpu.model import GpuFast
from plugins.gpu.readings import fast_readings

T = TypeVar("T")
_LOCK = threading.Lock()


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def read_gpus() -> tuple[list[GpuFast], str]:
    """Blocking: every GPU NVML sees. Raises RuntimeError when NVML cannot start."""
    import pynvml

    with _LOCK:
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise RuntimeError(f"NVML: {exc}") from None
        try:
            driver: str | None
            try:
                driver = _text(pynvml.nvmlSystemGetDriverVersion())
            except pynvml.NVMLError:
                driver = None
            out = []
            for i in range(pynvml.nvmlDeviceGetCount()):
                out.append(_one(pynvml, i, driver))
            return out, "ok"
        finally:
            pynvml.nvmlShutdown()


def _one(pynvml: Any, i: int, driver: str | None) -> GpuFast:
    handle = pynvml.nvmlDeviceGetHandleByIndex(i)
    lost: list[str] = []

    def get(fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except pynvml.NVMLError_GpuIsLost as exc:
            lost.append(str(exc))
            return None
        except pynvml.NVMLError:
            return None

    name = get(lambda: _text(pynvml.nvmlDeviceGetName(handle)))
    uuid = get(lambda: _text(pynvml.nvmlDeviceGetUUID(handle)))
    temp = get(lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))
    power = get(lambda: pynvml.nvmlDeviceGetPowerUsage(handle))
    limit = get(lambda: pynvml.nvmlDeviceGetEnforcedPowerLimit(handle))
    util = get(lambda: pynvml.nvmlDeviceGetUtilizationRates(handle))
    mem = get(lambda: pynvml.nvmlDeviceGetMemoryInfo(handle))
    mig = get(lambda: pynvml.nvmlDeviceGetMigMode(handle))
    reasons = get(lambda: pynvml.nvmlDeviceGetCurrentClocksEventReasons(handle))
    if lost:
        return GpuFast(index=i, lost=True, lost_reason=lost[0])
    return GpuFast(
        index=i,
        uuid=uuid,
        name=name,
        driver=driver,
        util_pct=float(util.gpu) if util is not None else None,
        mem_util_pct=float(util.memory) if util is not None else None,
        mem_used_mib=mem.used / 1048576 if mem is not None else None,
        mem_total_mib=mem.total / 1048576 if mem is not None else None,
        temp_c=float(temp) if temp is not None else None,
        power_w=power / 1000.0 if power is not None else None,
        power_limit_w=limit / 1000.0 if limit is not None else None,
        mig_current=bool(mig[0]) if mig is not None else None,
        mig_pending=bool(mig[1]) if mig is not None else None,
        throttle_mask=int(reasons) if reasons is not None else None,
    )


async def collect_nvml(node: str) -> Sequence[Reading]:
    """Readings for ``node`` from the local NVML, off the event loop."""
    try:
        gpus, smi = await asyncio.to_thread(read_gpus)
    except RuntimeError as exc:
        return fast_readings(node, [], "nvml", str(exc))
    return fast_readings(node, gpus, "nvml", smi)
