"""The checks added for the bring-up scorecard, in their plugins: BMC answering, versions
uniform across GPU nodes, Kubernetes GPUs allocatable; and the OS/kernel read."""

from __future__ import annotations

from console.plugin import Reading, Severity, Target
from console.store import Store
from plugins.gpu.checks import check_versions_uniform
from plugins.gpu.parse import parse_os_release
from plugins.kubernetes.checks import check_gpus_allocatable
from plugins.power.checks import check_bmc_answering


def node(name: str, **attrs: object) -> Target:
    return Target("node", name, node=name, attrs=attrs)


def test_os_release_gives_kernel_and_distribution_and_missing_parts_are_unknown() -> None:
    text = '6.8.0-45-generic\nPRETTY_NAME="Ubuntu 24.04.1 LTS"\n'
    assert parse_os_release(text) == ("6.8.0-45-generic", "Ubuntu 24.04.1 LTS")
    missing = "5.14.0-427.el9.x86_64\ngrep: /etc/os-release: No such file or directory\n"
    assert parse_os_release(missing) == ("5.14.0-427.el9.x86_64", None)
    assert parse_os_release("bash: uname: command not found\n") == (None, None)


def fleet(drivers: dict[str, str]) -> Store:
    store = Store()
    store.put([Reading(n, "gpu.driver", d) for n, d in drivers.items()])
    store.put([Reading(n, "gpu.cuda", "12.4") for n in drivers])
    return store


def test_a_tie_between_two_drivers_blames_both_halves() -> None:
    store = fleet({"g1": "550.90.07", "g2": "550.90.07", "g3": "535.161.08", "g4": "535.161.08"})
    f = check_versions_uniform(store, node("g1"))
    assert f.severity == Severity.WARNING
    assert f.message == "g1: driver 550.90.07: no majority (550.90.07 on 2, 535.161.08 on 2)"
    assert check_versions_uniform(store, node("g3")).severity == Severity.WARNING


def test_peers_limit_the_comparison_and_a_node_without_a_driver_is_unknown() -> None:
    store = fleet({"g1": "550.90.07", "g2": "550.90.07", "old": "470.42.01"})
    assert check_versions_uniform(store, node("g1")).severity == Severity.OK
    f = check_versions_uniform(store, node("old"))
    assert f.message == "old: driver 470.42.01 ≠ 550.90.07 on 2 others"
    assert check_versions_uniform(store, node("old", peers=("old",))).severity == Severity.OK
    unread = check_versions_uniform(store, node("g9"))
    assert unread.severity == Severity.UNKNOWN and "no driver version" in unread.message


def k8s(name: str, **values: object) -> Store:
    store = Store()
    store.put([Reading(name, f"kubernetes.{k}", v) for k, v in values.items()])
    return store


def test_gpus_allocatable_needs_ready_and_every_expected_gpu_offered() -> None:
    ok = k8s("inf01", allocation="ready", gpu_capacity=4, gpu_allocatable=4)
    assert check_gpus_allocatable(ok, node("inf01", gpu_count=4)).message == (
        "inf01: Ready, 4 GPUs allocatable"
    )
    sick = k8s("inf01", allocation="ready", gpu_capacity=4, gpu_allocatable=3)
    f = check_gpus_allocatable(sick, node("inf01", gpu_count=4))
    assert f.severity == Severity.WARNING
    assert f.message == "inf01: only 3 GPUs allocatable, 4 in capacity, 4 expected"
    crashed = k8s("inf01", allocation="ready")
    f = check_gpus_allocatable(crashed, node("inf01", gpu_count=4))
    assert f.severity == Severity.CRITICAL and "device plugin not running" in f.message
    cpu = k8s("cpu01", allocation="ready")
    assert check_gpus_allocatable(cpu, node("cpu01", gpu_count=0)).severity == Severity.OK
    down = k8s("inf01", allocation="not-ready", gpu_capacity=4, gpu_allocatable=4)
    assert check_gpus_allocatable(down, node("inf01", gpu_count=4)).severity == Severity.CRITICAL


def test_gpus_under_mig_are_held_to_their_capacity_not_the_inventory_count() -> None:
    mig = k8s("inf02", allocation="ready", gpu_capacity=2, gpu_allocatable=2, mig="mig-1g.6gb 0/8")
    f = check_gpus_allocatable(mig, node("inf02", gpu_count=4))
    assert f.severity == Severity.OK
    assert f.message == "inf02: Ready, 2 GPUs allocatable + MIG mig-1g.6gb 0/8"


def test_a_bmc_is_answering_only_when_its_last_read_succeeded() -> None:
    store = Store()
    assert check_bmc_answering(store, node("g1")).severity == Severity.UNKNOWN
    store.put([Reading("g1", "power.bmc_ok", False, detail="TLS handshake timed out")])
    f = check_bmc_answering(store, node("g1"))
    assert f.severity == Severity.CRITICAL
    assert f.message == "g1: BMC not answering: TLS handshake timed out"
