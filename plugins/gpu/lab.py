"""The GPU emulation for the lab: nvidia-smi, the kernel log's XIDs and dcgmi, per host.

GPU load, power and temperature follow the SimHost's load and inlet air.
Actions change the state (reset, MIG mode, MIG instances). Faults (target: a
host; param ``gpu`` picks one GPU, default 0):

- ``gpu.xid``: an XID in the kernel log (param ``xid``, default 48).
- ``gpu.fell_off_bus``: the GPU is lost (XID 79); nvidia-smi cannot get its handle. A
  GPU reset brings it back, unless the fault has param ``hard`` (while the fault lasts
  the reset fails); a cold boot (power off, then on) always does.
- ``gpu.ecc``: uncorrectable ECC errors and a pending row remap (XIDs 48, 63).
- ``gpu.thermal``: HW thermal slowdown, the GPU runs hot.
- ``gpu.idle``: the job on the node's GPUs stalls (allocated, utilisation ~0).
- ``gpu.no_driver``: nvidia-smi cannot talk to the driver.
- ``gpu.driver_drift``: the node runs another driver/CUDA (params driver, cuda; kernel
  and os change only when given).
"""

from __future__ import annotations

import json
import re
import time
import zlib
from collections.abc import Sequence
from typing import Any

from console.plugin import CommandReply, LabHostContext
from plugins.gpu import lab_render as render
from plugins.gpu.collect import LEGACY_FIELDS, OS_COMMAND, full_parts, query_command
from plugins.gpu.lab_model import SimGpu, SimInstance, SimProcess, mem_of_profile
from plugins.gpu.model import mig_profiles, slices_total
from plugins.gpu.parse import QUERY_FIELDS

FAULTS = {
    "gpu.xid": "an XID in the kernel log (params gpu, xid default 48)",
    "gpu.fell_off_bus": "a GPU falls off the bus (XID 79), param gpu",
    "gpu.ecc": "uncorrectable ECC errors and a pending row remap, param gpu",
    "gpu.thermal": "HW thermal slowdown on a GPU, param gpu",
    "gpu.idle": "the job on the node stalls: GPUs allocated but idle",
    "gpu.no_driver": "nvidia-smi cannot communicate with the driver",
    "gpu.driver_drift": "the node runs another driver (params driver, cuda, kernel, os)",
}
LAB_KERNEL = "5.15.0-105-generic"
DRIVER_INSTALL = "dcc-driver-install"
"""The demo rollout's change command (inventory/rollouts/demo-driver-upgrade.yaml)."""
LAB_OS = "Ubuntu 22.04.4 LTS"
NO_DRIVER = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running.\n"
)
DEFAULT_MODEL = "NVIDIA H100 80GB HBM3"


class GpuHost:
    """The GPUs of one simulated host and its kernel log."""

    def __init__(self, host: LabHostContext) -> None:
        node = host.node
        self.name = host.name
        count = node.hardware.gpu_count or 8
        model = node.hardware.gpu_model or DEFAULT_MODEL
        self.driver = node.hardware.driver_version or "550.90.07"
        self.cuda = node.hardware.cuda_version or "12.4"
        big = "H100" in model or "H200" in model or "A100" in model
        mem = 143771.0 if "H200" in model else 81559.0 if big else 24576.0
        limit = 700.0 if big else 165.0
        self.gpus = [
            SimGpu(
                index=i,
                model=model,
                bus=f"00000000:{0x18 + 0x10 * i:02X}:00.0",
                uuid=(
                    f"GPU-{zlib.crc32(f'{host.name}/{i}'.encode()) % 10**8:08d}"
                    f"-1d2e-4f50-8a6b-{i:012d}"
                ),
                serial=f"1654923{node.index:03d}{i:03d}",
                mem_total=mem,
                power_limit=limit,
                idle_w=70.0 if big else 30.0,
                mig_capable=bool(mig_profiles(model)),
                nvlinks=18 if big else 0,
            )
            for i in range(count)
        ]
        self.nics = node.hardware.ib_ports
        self.kernel_log: list[str] = []
        self.seen_faults: set[str] = set()
        self.hard_lost: set[int] = set()
        self.cold = False
        """The host was powered off since the last look (its GPUs come back on power-on)."""
        """GPUs that fell off the bus for good (fault param ``hard``): a reset fails."""
        self.next_pid = 41000 + node.index * 100
        self.job = node.role == "gpu-train"
        if node.role == "gpu-infer" and self.gpus[0].mig_capable:
            # Inference GPUs are partitioned: GPU 0 with two MIG instances serving models.
            g = self.gpus[0]
            g.mig_enabled = g.mig_pending = True
            for prof in (p for p in mig_profiles(model) if p.slices == 2 and "+me" not in p.name):
                for _ in range(2):
                    self.create(g, prof.name)
                if g.instances:
                    self._spawn(g, "tritonserver", 6000.0, g.instances[0].gi)

    # ---------------------------------------------------------------- dynamics

    def _spawn(self, g: SimGpu, name: str, mib: float, gi: int | None = None) -> None:
        self.next_pid += 1
        g.processes.append(SimProcess(self.next_pid, name, mib, gi))

    def log_xid(self, g: SimGpu, xid: int, text: str, now: float) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(now))
        pci = g.bus.lower()[4:-2]
        self.kernel_log.append(
            f"{stamp} {self.name} kernel: NVRM: Xid (PCI:{pci}): {xid}, pid=0, {text}"
        )
        del self.kernel_log[:-200]

    def update(self, host: LabHostContext) -> None:
        now = host.now
        self._faults(host, now)
        if not host.powered:
            self.cold = True
        elif self.cold:  # a cold boot brings back every GPU that fell off the bus
            self.cold = False
            for g in self.gpus:
                if g.lost:
                    g.lost = False
                    g.processes.clear()
        load = host.load
        idle = host.fault("gpu.idle") is not None
        for g in self.gpus:
            if g.lost:
                continue
            busy = self.job and load > 0.05 and host.powered
            if busy and not g.processes and not g.mig_enabled:
                self._spawn(g, "python3 train.py", 0.6 * g.mem_total)
            jitter = (
                (zlib.crc32(f"{self.name}/{g.index}/{int(now / 5)}".encode()) % 100) - 50
            ) / 25.0
            if g.mig_enabled:
                util = 40.0 * load * bool(g.processes)
            else:
                util = 100.0 * load + jitter if g.processes else 0.0
            if idle and g.processes:
                util = 0.0
            g.util = max(0.0, min(100.0, util))
            g.mem_util = g.util * 0.35
            g.mem_used = 512.0 + sum(p.used_mib for p in g.processes)
            for inst in g.instances:
                inst.used_mib = 13.0 + sum(p.used_mib for p in g.processes if p.gi == inst.gi)
            g.power = g.idle_w + (g.power_limit * 0.92 - g.idle_w) * g.util / 100.0
            inlet = getattr(host, "inlet_c", 24.0)
            g.temp = inlet + 8.0 + 0.055 * g.power
            g.throttle_mask = 0x1 if g.util < 1 else 0x0
            if host.fault("gpu.thermal") is not None and self._picked(host, "gpu.thermal", g):
                g.temp = 91.0
                g.throttle_mask |= 0x40 | 0x20
                g.sm_clock = 1275.0
            else:
                g.sm_clock = 1980.0 if g.util > 1 else 345.0

    def _picked(self, host: LabHostContext, fault: str, g: SimGpu) -> bool:
        params = host.fault(fault) or {}
        return int(params.get("gpu", 0)) == g.index

    def _faults(self, host: LabHostContext, now: float) -> None:
        for name in ("gpu.xid", "gpu.fell_off_bus", "gpu.ecc"):
            params = host.fault(name)
            if name == "gpu.fell_off_bus":
                hard = params is not None and bool(params.get("hard"))
                self.hard_lost = {int(params.get("gpu", 0))} if params and hard else set()
            if params is None:
                self.seen_faults.discard(name)
                continue
            if name in self.seen_faults:
                continue
            self.seen_faults.add(name)  # once per injection: a log line is an event
            idx = int(params.get("gpu", 0))
            if not 0 <= idx < len(self.gpus):
                continue
            g = self.gpus[idx]
            if name == "gpu.xid":
                xid = int(params.get("xid", 48))
                self.log_xid(g, xid, str(params.get("text", "lab-injected error")), now)
            elif name == "gpu.fell_off_bus":
                g.lost = True
                self.log_xid(g, 79, "GPU has fallen off the bus.", now)
            else:
                g.ecc_unc_volatile += 2
                g.ecc_unc_aggregate += 2
                g.remap_unc += 1
                g.remap_pending = True
                self.log_xid(
                    g, 48, "An uncorrectable double bit error (DBE) has been detected", now
                )
                self.log_xid(g, 63, "Row Remapper: New row marked for remapping, reset gpu", now)

    # ---------------------------------------------------------------- MIG

    def create(self, g: SimGpu, profile: str) -> SimInstance | str:
        prof = next(
            (p for p in mig_profiles(g.model) if p.name == profile or str(p.profile_id) == profile),
            None,
        )
        if prof is None:
            return (
                f"Unable to create a GPU instance on GPU {g.index:2d} "
                f"using profile {profile}: Invalid Argument"
            )
        total = slices_total(g.model) or 7
        used = {s for i in g.instances for s in range(i.start, i.start + i.slices)}
        same = sum(1 for i in g.instances if i.profile == prof.name)
        for start in range(0, total - prof.slices + 1, prof.slices):
            if same < prof.max_count and not used & set(range(start, start + prof.slices)):
                gi = max([i.gi for i in g.instances], default=0) + 1
                inst = SimInstance(
                    gi, prof.name, prof.profile_id, prof.slices, start, mem_of_profile(prof.name)
                )
                g.instances.append(inst)
                return inst
        return (
            f"Unable to create a GPU instance on GPU {g.index:2d} using profile "
            f"{prof.profile_id}: Insufficient Resources"
        )

    # ---------------------------------------------------------------- commands

    def install_driver(self, cmd: str) -> CommandReply | None:
        """The site's driver installer (the demo rollout's change): swaps the driver version.

        The lab's training processes are not tied to Slurm jobs, so unlike a real
        driver unload this does not insist on idle GPUs.
        """
        m = re.fullmatch(rf"{DRIVER_INSTALL} --version (\d+\.\d+(?:\.\d+)?)", cmd.strip())
        if m is None:
            return None
        old, self.driver = self.driver, m.group(1)
        return CommandReply(stdout=f"NVIDIA driver {old} -> {self.driver}: installed, loaded\n")

    def run(self, host: LabHostContext, cmd: str) -> CommandReply | None:
        if cmd.startswith(DRIVER_INSTALL + " "):
            return self.install_driver(cmd)  # None (not ours) unless it names a version
        if cmd.startswith("nvidia-smi") and host.fault("gpu.no_driver") is not None:
            return CommandReply(stdout=NO_DRIVER, exit_status=9)
        drift = host.fault("gpu.driver_drift")
        driver = str(drift.get("driver", "535.161.08")) if drift is not None else self.driver
        cuda = str(drift.get("cuda", "12.2")) if drift is not None else self.cuda
        if cmd in (query_command(QUERY_FIELDS), query_command(LEGACY_FIELDS)):
            lines = [
                render.lost_line(g) if g.lost else render.csv_line(g, driver) for g in self.gpus
            ]
            rc = 15 if any(g.lost for g in self.gpus) else 0
            return CommandReply(stdout="\n".join(lines) + "\n", exit_status=rc)
        if cmd == "nvidia-smi -q -x":
            # Like the CSV query: a lost GPU is left out of the report and named on stderr.
            lost = "".join(render.lost_line(g) + "\n" for g in self.gpus if g.lost)
            return CommandReply(
                stdout=render.smi_xml(self.gpus, driver, cuda, host.now),
                stderr=lost,
                exit_status=15 if lost else 0,
            )
        if cmd == "nvidia-smi mig -lgi":
            out, rc = render.mig_lgi(self.gpus)
            return CommandReply(stdout=out, exit_status=rc)
        if cmd == "nvidia-smi mig -lci":
            out, rc = render.mig_lci(self.gpus)
            return CommandReply(stdout=out, exit_status=rc)
        if cmd == "nvidia-smi nvlink -s":
            return CommandReply(stdout=render.nvlink_status(self.gpus))
        if cmd == "nvidia-smi topo -m":
            return CommandReply(stdout=render.topo_matrix(self.gpus, self.nics))
        if "NVRM: Xid" in cmd and "journalctl" in cmd:
            text = "".join(line + "\n" for line in self.kernel_log)
            return CommandReply(stdout=text, exit_status=0 if text else 1)
        if cmd == OS_COMMAND:
            kernel = str((drift or {}).get("kernel", LAB_KERNEL))
            os_name = str((drift or {}).get("os", LAB_OS))
            return CommandReply(stdout=f'{kernel}\nPRETTY_NAME="{os_name}"\n')
        if cmd == "command -v dcgmi":
            return CommandReply(stdout="/usr/bin/dcgmi\n")
        if cmd == "dcgmi diag -r 1 -j":
            return CommandReply(stdout=self.diag())
        return self.act(cmd)

    def _gpu(self, raw: str) -> SimGpu | None:
        i = int(raw)
        return self.gpus[i] if 0 <= i < len(self.gpus) else None

    def lost_for_good(self, g: SimGpu) -> bool:
        """A GPU that fell off the bus with the fault's param ``hard`` (a hardware defect)
        stays lost through a reset while the fault lasts; otherwise a reset recovers it."""
        return g.index in self.hard_lost

    def act(self, cmd: str) -> CommandReply | None:
        m = re.fullmatch(r"nvidia-smi -r -i (\d+)", cmd)
        if m:
            g = self._gpu(m.group(1))
            if g is None:
                return CommandReply(stdout="No devices were found\n", exit_status=6)
            if g.lost:
                if self.lost_for_good(g):
                    return CommandReply(
                        stdout=f"Unable to reset GPU {g.bus}: GPU is lost. Reboot the system "
                        "to recover this GPU\n",
                        exit_status=15,
                    )
                # A transient fall (a PCIe glitch): the bus reset brings it back; the job
                # it ran died with the XID.
                g.lost = False
                g.processes.clear()
                g.resets += 1
                return CommandReply(stdout=f"GPU {g.bus} was successfully reset.\nAll done.\n")
            if g.processes:
                return CommandReply(
                    stdout=f"The following GPUs could not be reset:\n  GPU {g.bus}: In use by "
                    "another client\n\n1 device is currently being used by one or more other "
                    "processes (e.g., Fabric Manager, CUDA application, graphics application "
                    "such as an X server, or a monitoring application such as another instance "
                    "of nvidia-smi).\n",
                    exit_status=255,
                )
            g.resets += 1
            g.ecc_unc_volatile = 0
            g.remap_pending = False
            if g.mig_pending != g.mig_enabled:
                g.mig_enabled = g.mig_pending
                g.instances.clear()
            return CommandReply(stdout=f"GPU {g.bus} was successfully reset.\nAll done.\n")
        m = re.fullmatch(r"nvidia-smi -i (\d+) -mig ([01])", cmd)
        if m:
            g = self._gpu(m.group(1))
            if g is None or not g.mig_capable:
                return CommandReply(
                    stdout="Unable to enable MIG Mode: Not Supported\n", exit_status=3
                )
            g.mig_pending = m.group(2) == "1"
            word = "Enabled" if g.mig_pending else "Disabled"
            note = (
                ""
                if g.mig_pending == g.mig_enabled
                else (
                    f"Warning: MIG mode is in pending {word.lower()[:-1]} state for GPU {g.bus}:"
                    " a GPU reset is required\n"
                )
            )
            return CommandReply(stdout=f"{word} MIG Mode for GPU {g.bus}\n{note}All done.\n")
        m = re.fullmatch(r"nvidia-smi mig -i (\d+) -cgi (\S+) -C", cmd)
        if m:
            g = self._gpu(m.group(1))
            if g is None or not g.mig_enabled:
                return CommandReply(
                    stdout="Unable to create a GPU instance: MIG mode is disabled\n", exit_status=3
                )
            got = self.create(g, m.group(2))
            if isinstance(got, str):
                return CommandReply(stdout=got + "\n", exit_status=2)
            return CommandReply(
                stdout=f"Successfully created GPU instance ID {got.gi:2d} on GPU {g.index:2d} "
                f"using profile MIG {got.profile} (ID {got.profile_id:2d})\n"
                f"Successfully created compute instance ID  0 on GPU {g.index:2d} GPU instance "
                f"ID {got.gi:2d} using profile MIG {got.profile} (ID  0)\n"
            )
        m = re.fullmatch(
            r"nvidia-smi mig -i (\d+) -gi (\d+) -dci && nvidia-smi mig -i \1 -gi \2 -dgi", cmd
        )
        if m:
            g = self._gpu(m.group(1))
            gi = int(m.group(2))
            inst = next((i for i in g.instances if i.gi == gi), None) if g else None
            if g is None or inst is None:
                return CommandReply(
                    stdout="Unable to destroy compute instance: Not Found\n", exit_status=6
                )
            if any(p.gi == gi for p in g.processes):
                return CommandReply(
                    stdout=f"Unable to destroy compute instance ID  0 from GPU {g.index:2d} GPU "
                    f"instance ID {gi:2d}: In use by another client\n",
                    exit_status=19,
                )
            g.instances.remove(inst)
            return CommandReply(
                stdout=f"Successfully destroyed compute instance ID  0 from GPU {g.index:2d} GPU "
                f"instance ID {gi:2d}\nSuccessfully destroyed GPU instance ID {gi:2d} from GPU "
                f"{g.index:2d}\n"
            )
        return None

    def diag(self) -> str:
        remap = any(g.remap_pending or g.ecc_unc_volatile for g in self.gpus)
        names = (
            "Denylist",
            "NVML Library",
            "CUDA Main Library",
            "Permissions and OS Blocks",
            "Persistence Mode",
            "Environment Variables",
            "Page Retirement/Row Remap",
            "Graphics Processes",
            "Inforom",
        )
        tests = [
            {"name": n, "results": [{"status": "Fail" if remap and "Remap" in n else "Pass"}]}
            for n in names
        ]
        return json.dumps(
            {
                "DCGM GPU Diagnostic": {
                    "test_categories": [{"category": "Deployment", "tests": tests}]
                }
            }
        )


class GpuLab:
    """``console.plugin.LabEmulation`` for the gpu plugin."""

    def __init__(self) -> None:
        self.hosts: dict[str, GpuHost] = {}
        self._lab: Any = None
        self.commands: list[tuple[str, str]] = []
        """Every action command run (host, command), for tests."""
        self.exporters: dict[str, Any] = {}
        """``dcgm``: the per-host dcgm-exporters (plugins.gpu.lab_exporter)."""

    async def start(self, lab: Any) -> None:
        self._lab = lab
        for name, host in lab.hosts.items():
            node = host.node
            if node.role in ("gpu-train", "gpu-infer") or node.hardware.gpu_count > 0:
                self.hosts[name] = GpuHost(host)
                self.hosts[name].update(host)
        from plugins.gpu.lab_exporter import start_exporters

        await start_exporters(self, lab)

    async def stop(self) -> None:
        for exporter in self.exporters.values():
            await exporter.stop()

    def rewrite_inventory(self, data: dict[str, Any]) -> dict[str, Any]:
        """Each GPU node declares its dcgm-exporter's address (``exporters.dcgm``)."""
        from console.lab.exporters import declare_exporters

        dcgm = self.exporters.get("dcgm")
        return declare_exporters(data, "dcgm", dcgm.instances) if dcgm is not None else data

    def tick(self, now: float) -> None:
        if self._lab is None:
            return
        for name, gh in self.hosts.items():
            gh.update(self._lab.hosts[name])

    def fault_names(self) -> Sequence[str]:
        return sorted(FAULTS)

    def rewrite_config(self, section: dict[str, Any]) -> dict[str, Any]:
        return section

    async def command(self, host: LabHostContext, command: str) -> CommandReply | None:
        gh = self.hosts.get(host.name)
        if gh is None:
            return None
        if "@@dcc-gpu" in command:
            gh.update(host)
            return self._script(gh, host, command)
        gh.update(host)  # faults injected since the last tick show at once
        reply = gh.run(host, command.strip())
        if (
            reply is not None
            and not command.startswith("nvidia-smi --query")
            and "-q -x" not in command
        ):
            self.commands.append((host.name, command.strip()))
        if reply is not None:
            gh.update(host)
        return reply

    def _script(self, gh: GpuHost, host: LabHostContext, command: str) -> CommandReply:
        """The collector's full round trip: each known part, then its marker."""
        parts = {cmd: name for name, cmd in full_parts(60)}
        out: list[str] = []
        for line in command.splitlines():
            m = re.fullmatch(r"\{ (.*); \} 2>&1; echo \"@@dcc-gpu (\w+) rc=\$\?@@\"", line)
            if not m:
                continue
            cmd, name = m.group(1), m.group(2)
            if name == "xid" or cmd in parts:
                reply = gh.run(host, cmd) or CommandReply(
                    stdout=f"bash: {cmd.split()[0]}: command not found\n", exit_status=127
                )
            else:
                reply = CommandReply(stdout="", exit_status=127)
            out.append(reply.stdout + reply.stderr)
            if out[-1] and not out[-1].endswith("\n"):
                out[-1] += "\n"
            out.append(f"@@dcc-gpu {name} rc={reply.exit_status}@@\n")
        return CommandReply(stdout="".join(out))
