"""The checks the built-in runbooks added to their plugins, on Store readings as the
collectors write them: unknown until read, the problem while it lasts, OK after."""

from __future__ import annotations

from console.plugin import Reading, Severity, Target
from console.store import Store
from plugins.gpu.checks import check_gpu_answers
from plugins.infiniband.checks import check_port
from plugins.power.checks import check_powered_on, check_psu_redundant, check_rack_budget
from plugins.slurm.checks import check_responding


def store(*readings: tuple[str, str, object, str]) -> Store:
    s = Store()
    s.put([Reading(t, m, v, detail=d) for t, m, v, d in readings])  # type: ignore[arg-type]
    return s


def test_gpu_answers_is_about_the_gpu_now_not_its_xid_history() -> None:
    gpu = Target("gpu", "gpu007/2", node="gpu007", attrs={"index": 2})
    assert check_gpu_answers(Store(), gpu).severity == Severity.UNKNOWN
    lost = store(
        ("gpu007/2", "gpu.state", "lost", "GPU is lost"), ("gpu007/2", "gpu.xid_last", 79, "")
    )
    f = check_gpu_answers(lost, gpu)
    assert f.severity == Severity.CRITICAL and "lost (fallen off the bus)" in f.message
    back = store(("gpu007/2", "gpu.state", "ok", ""), ("gpu007/2", "gpu.xid_last", 79, ""))
    f = check_gpu_answers(back, gpu)
    assert f.severity == Severity.OK and "(last XID in the log: 79)" in f.message
    ecc = store(("gpu007/2", "gpu.state", "ok", ""), ("gpu007/2", "gpu.ecc_unc_volatile", 2, ""),
                ("gpu007/2", "gpu.remap_pending", True, ""))  # fmt: skip
    f = check_gpu_answers(ecc, gpu)
    assert f.severity == Severity.CRITICAL
    assert "2 uncorrectable ECC errors; row remap pending" in f.message


def test_an_ib_port_flapping_fails_and_a_clean_active_port_passes() -> None:
    port = Target("ib_port", "ib:gpu001:mlx5_0/1", node="gpu001")
    t = port.name
    assert check_port(Store(), port).severity == Severity.UNKNOWN
    up = [(t, "infiniband.state", "ACTIVE", ""), (t, "infiniband.phys_state", "LinkUp", "")]
    flapping = store(*up, (t, "infiniband.rate.link_downed", 6.0, ""))
    f = check_port(flapping, port)
    assert f.severity == Severity.CRITICAL and "flapping" in f.message
    clean = store(*up, (t, "infiniband.rate_gbps", 400.0, ""))
    f = check_port(clean, port)
    assert f.severity == Severity.OK and f.message == "gpu001 mlx5_0/1: active 400G"


def test_slurm_responding_allows_drained_but_not_down() -> None:
    node = Target("node", "gpu003", node="gpu003")
    assert check_responding(Store(), node).severity == Severity.UNKNOWN
    assert (
        check_responding(store(("gpu003", "slurm.allocation", "drain", "")), node).severity
        == Severity.OK
    )
    down = check_responding(store(("gpu003", "slurm.allocation", "down", "")), node)
    assert down.severity == Severity.CRITICAL


def test_power_on_and_psu_redundancy_from_the_bmc() -> None:
    node = Target("node", "gpu003", node="gpu003")
    assert check_powered_on(Store(), node).severity == Severity.UNKNOWN
    assert (
        check_powered_on(store(("gpu003", "power.state", "off", "")), node).severity
        == Severity.CRITICAL
    )
    assert (
        check_powered_on(store(("gpu003", "power.state", "on", "")), node).severity == Severity.OK
    )
    assert check_psu_redundant(Store(), node).severity == Severity.UNKNOWN
    lost = store(
        ("gpu003", "power.redundancy", "lost", ""), ("gpu003", "power.psus_failed", 1, "PSU2")
    )
    f = check_psu_redundant(lost, node)
    assert f.severity == Severity.CRITICAL and f.message == "gpu003: PSU redundancy lost (PSU2)"
    ok = store(("gpu003", "power.redundancy", "ok", ""), ("gpu003", "power.psus_failed", 0, ""))
    assert check_psu_redundant(ok, node).severity == Severity.OK


def test_a_rack_over_its_budget_fails_and_counts_what_it_read() -> None:
    rack = Target("rack", "R02", attrs={"budget_kw": 10, "nodes": ("a", "b", "c")})
    assert check_rack_budget(Store(), rack).severity == Severity.UNKNOWN
    over = store(("a", "power.power_w", 6000.0, ""), ("b", "power.power_w", 5000.0, ""))
    f = check_rack_budget(over, rack)
    assert f.severity == Severity.CRITICAL
    assert f.message == "rack R02 draws 11.0 kW of 10 kW (2/3 nodes read)"
    under = store(("a", "power.power_w", 6000.0, ""), ("b", "power.power_w", 1000.0, ""))
    assert check_rack_budget(under, rack).severity == Severity.OK
