"""The NVML path: pynvml unchanged, against a fake libnvidia-ml.so.1 built here with gcc."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FAKE = r"""
#include <stdio.h>
#include <stdlib.h>
typedef int nvmlReturn_t; typedef void *nvmlDevice_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
static int inited = 0; static int handles[4] = {0, 1, 2, 3};
static int idx(nvmlDevice_t h) { return *(int *)h; }
static int lost(nvmlDevice_t h) {
    const char *s = getenv("FAKE_NVML_LOST");
    return s && atoi(s) == idx(h);
}
nvmlReturn_t nvmlInit_v2(void) { inited = 1; return 0; }
nvmlReturn_t nvmlInitWithFlags(unsigned int f) { (void)f; inited = 1; return 0; }
nvmlReturn_t nvmlShutdown(void) { inited = 0; return 0; }
const char *nvmlErrorString(nvmlReturn_t r) {
    return r == 15 ? "GPU is lost" : "Unknown Error";
}
nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned int n) {
    snprintf(v, n, "550.54.15");
    return 0;
}
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *c) {
    if (!inited) return 1;
    *c = 4;
    return 0;
}
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *h) {
    if (i >= 4) return 2;
    *h = &handles[i];
    return 0;
}
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t h, char *n, unsigned int l) {
    (void)h;
    snprintf(n, l, "NVIDIA H100 80GB HBM3");
    return 0;
}
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t h, char *u, unsigned int l) {
    snprintf(u, l, "GPU-fake-%d", idx(h));
    return 0;
}
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t h, int s, unsigned int *t) {
    (void)s;
    if (lost(h)) return 15;
    *t = 40 + idx(h);
    return 0;
}
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t h, unsigned int *mw) {
    if (lost(h)) return 15;
    *mw = 350000 + 1000 * idx(h);
    return 0;
}
nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t h, unsigned int *mw) {
    (void)h;
    *mw = 700000;
    return 0;
}
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t h, nvmlUtilization_t *u) {
    if (lost(h)) return 15;
    u->gpu = 90;
    u->memory = 40;
    return 0;
}
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t h, nvmlMemory_t *m) {
    (void)h;
    m->total = 85520809984ULL;
    m->used = 1073741824ULL;
    m->free = m->total - m->used;
    return 0;
}
"""

SCRIPT = """
import asyncio, json
from plugins.gpu.nvml import collect_nvml
rs = asyncio.run(collect_nvml("gpu001"))
print(json.dumps([[r.target, r.metric, r.value, r.source] for r in rs]))
"""


@pytest.fixture(scope="module")
def fake_nvml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is needed to build the fake libnvidia-ml.so.1 (apt-get install gcc)")
    d = tmp_path_factory.mktemp("nvml")
    (d / "fakenvml.c").write_text(FAKE)
    subprocess.run(
        [gcc, "-shared", "-fPIC", "-O2", "-o", str(d / "libnvidia-ml.so.1"), str(d / "fakenvml.c")],
        check=True,
        capture_output=True,
    )
    return d


def run_nvml(lib: Path, **env: str) -> dict[tuple[str, str], object]:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LD_LIBRARY_PATH": str(lib), **env},
        check=True,
    )
    return {(t, m): v for t, m, v, _s in json.loads(out.stdout)}


def test_nvml_readings_match_the_ssh_shape(fake_nvml: Path) -> None:
    v = run_nvml(fake_nvml)
    assert v[("gpu001", "gpu.count")] == 4 and v[("gpu001", "gpu.driver")] == "550.54.15"
    assert v[("gpu001/2", "gpu.temp_c")] == 42.0 and v[("gpu001/2", "gpu.power_w")] == 352.0
    assert v[("gpu001/0", "gpu.util_pct")] == 90.0 and v[("gpu001/0", "gpu.mem_used_mib")] == 1024.0
    # Functions the library lacks (MIG mode, clock event reasons) are unknown, not 0/False.
    assert v[("gpu001/0", "gpu.mig_current")] is None and v[("gpu001/0", "gpu.throttle")] is None


def test_nvml_lost_gpu_is_reported_lost(fake_nvml: Path) -> None:
    v = run_nvml(fake_nvml, FAKE_NVML_LOST="1")
    assert v[("gpu001/1", "gpu.state")] == "lost" and v[("gpu001/1", "gpu.util_pct")] is None
    assert v[("gpu001/0", "gpu.state")] == "ok"


def test_without_a_library_nvml_says_so() -> None:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LD_LIBRARY_PATH": "/nonexistent"},
        check=True,
    )
    rows = {(t, m): val for t, m, val, _s in json.loads(out.stdout)}
    assert "NVML" in str(rows[("gpu001", "gpu.smi")]) and rows[("gpu001", "gpu.count")] is None
