"""The lab's own actions: inject and clear faults, arm and cancel dead man's switches.

They run through the ActionRunner like any plugin's action (planned, confirmed,
audited), so a drill in the demo is on the record exactly as a real one. They
reach the lab through a ``LabPort``: ``LocalLab`` when the lab runs in this
process (the demo console), ``RemoteLab`` over the control API of a ``dcc lab``
running elsewhere (what another console, or a drill in another process, uses).

- ``lab.fault`` (destructive): inject a fault (``revert_after_s`` gives it a lifetime).
- ``lab.fault_clear``: end every active fault of that name on the target.
- ``lab.deadman_arm``: "clear these faults on this target in ``after_s`` unless
  cancelled" -- the lab's side of a drill's dead man's switch.
- ``lab.deadman_cancel``: disarm it (after a normal restore).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from pydantic import Field

from console.lab.control import ControlClient
from console.lab.faults import FaultBook, FaultError
from console.plugin import ActionContext, ActionInputs, ActionSpec, Outcome, Preview, Target

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory
    from console.lab.deadman import DeadmanBook

LAB_TARGET = "lab-target"


class LabPort(Protocol):
    """What the lab actions need of a lab, wherever it runs."""

    async def fault_names(self) -> list[str]: ...

    async def inject(
        self, name: str, target: str, params: dict[str, Any], duration: float | None
    ) -> str: ...

    async def clear(self, name: str, target: str) -> int: ...

    async def active(self, name: str, target: str) -> bool: ...

    async def arm(
        self, key: str, clears: Sequence[tuple[str, str]], after_s: float, by: str
    ) -> None: ...

    async def disarm(self, key: str) -> bool: ...

    async def armed(self, key: str) -> bool: ...


@dataclass(slots=True)
class LocalLab:
    """A lab in this process (its fault book and, when there is one, its switches)."""

    faults: FaultBook
    deadman: DeadmanBook | None = None

    async def fault_names(self) -> list[str]:
        return self.faults.names()

    async def inject(
        self, name: str, target: str, params: dict[str, Any], duration: float | None
    ) -> str:
        return self.faults.inject(name, target, params, duration)

    async def clear(self, name: str, target: str) -> int:
        ids = [f.id for f in self.faults.active() if f.name == name and f.target == target]
        for fid in ids:
            self.faults.clear(fid)
        return len(ids)

    async def active(self, name: str, target: str) -> bool:
        return self.faults.get(name, target) is not None

    def _book(self) -> DeadmanBook:
        if self.deadman is None:
            raise FaultError("this lab has no dead man's switches")
        return self.deadman

    async def arm(
        self, key: str, clears: Sequence[tuple[str, str]], after_s: float, by: str
    ) -> None:
        try:
            self._book().arm(key, clears, after_s, by)
        except ValueError as exc:
            raise FaultError(str(exc)) from None

    async def disarm(self, key: str) -> bool:
        return self._book().cancel(key)

    async def armed(self, key: str) -> bool:
        return self._book().get(key) is not None


class RemoteLab:
    """A ``dcc lab`` in another process, through its control API (bearer token)."""

    def __init__(self, state_dir: Path) -> None:
        self.client = ControlClient(state_dir)

    async def fault_names(self) -> list[str]:
        data = await self.client.call("GET", "/status")
        return [str(n) for n in data.get("fault_names", [])]

    async def _ids(self, name: str, target: str) -> list[str]:
        data = await self.client.call("GET", "/faults")
        return [
            str(f["id"])
            for f in data.get("faults", [])
            if f.get("name") == name and f.get("target") == target
        ]

    async def inject(
        self, name: str, target: str, params: dict[str, Any], duration: float | None
    ) -> str:
        body = {"name": name, "target": target, "params": params, "duration": duration}
        data = await self.client.call("POST", "/faults", body)
        return str(data["id"])

    async def clear(self, name: str, target: str) -> int:
        ids = await self._ids(name, target)
        for fid in ids:
            await self.client.call("DELETE", f"/faults/{quote(fid, safe='')}")
        return len(ids)

    async def active(self, name: str, target: str) -> bool:
        return bool(await self._ids(name, target))

    async def arm(
        self, key: str, clears: Sequence[tuple[str, str]], after_s: float, by: str
    ) -> None:
        body = {"key": key, "clears": [list(c) for c in clears], "after_s": after_s, "by": by}
        await self.client.call("POST", "/deadman", body)

    async def disarm(self, key: str) -> bool:
        try:
            await self.client.call("DELETE", f"/deadman/{quote(key, safe='')}")
        except FaultError:  # 404: not armed (it fired, or was never armed)
            return False
        return True

    async def armed(self, key: str) -> bool:
        data = await self.client.call("GET", "/deadman")
        return any(s.get("key") == key for s in data.get("armed", []))


class FaultInputs(ActionInputs):
    fault: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    revert_after_s: float | None = Field(default=None, gt=0)


class ClearInputs(ActionInputs):
    fault: str = Field(min_length=1)


class ArmInputs(ActionInputs):
    faults: list[str] = Field(min_length=1)
    """The faults the switch clears on the target when it fires."""
    after_s: float = Field(gt=0)
    """Set by the drill: its maximum duration plus a margin."""
    key: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    """Set by the drill: its id."""


class CancelInputs(ActionInputs):
    key: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")


def _no_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    return ()


def _switch_key(key: str, target: Target) -> str:
    return f"{key}:{target.name}"


def lab_actions(port: LabPort) -> tuple[ActionSpec, ActionSpec, ActionSpec, ActionSpec]:
    """``lab.fault``, ``lab.fault_clear``, ``lab.deadman_arm``, ``lab.deadman_cancel``."""

    async def preview(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
        assert isinstance(inputs, FaultInputs)
        if inputs.fault not in await port.fault_names():
            return Preview((), refuse=f"the lab knows no fault {inputs.fault!r}")
        life = (
            f", reverts by itself after {inputs.revert_after_s:g} s"
            if inputs.revert_after_s
            else ""
        )
        return Preview((f"lab: inject {inputs.fault} on {target.name}{life}",))

    async def execute(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
        assert isinstance(inputs, FaultInputs)
        try:
            fid = await port.inject(
                inputs.fault, target.name, dict(inputs.params), inputs.revert_after_s
            )
        except FaultError as exc:
            return Outcome(False, str(exc))
        return Outcome(True, f"fault {fid} {inputs.fault} on {target.name}")

    async def verify(ctx: ActionContext, target: Target, inputs: Any, outcome: Outcome) -> Outcome:
        assert isinstance(inputs, FaultInputs)
        if not outcome.ok:
            return outcome
        active = await port.active(inputs.fault, target.name)
        return Outcome(active, outcome.detail + ("" if active else ": not active"))

    async def preview_clear(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
        assert isinstance(inputs, ClearInputs)
        return Preview((f"lab: clear {inputs.fault} on {target.name}",))

    async def execute_clear(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
        assert isinstance(inputs, ClearInputs)
        n = await port.clear(inputs.fault, target.name)
        return Outcome(True, f"cleared {n} {inputs.fault} fault(s) on {target.name}")

    async def verify_clear(
        ctx: ActionContext, target: Target, inputs: Any, outcome: Outcome
    ) -> Outcome:
        assert isinstance(inputs, ClearInputs)
        gone = not await port.active(inputs.fault, target.name)
        return Outcome(gone, outcome.detail + ("" if gone else ": still active"))

    async def preview_arm(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
        assert isinstance(inputs, ArmInputs)
        return Preview(
            (
                f"lab: in {inputs.after_s:g} s clear {', '.join(inputs.faults)} on "
                f"{target.name}, unless cancelled (dead man's switch {inputs.key})",
            )
        )

    async def execute_arm(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
        assert isinstance(inputs, ArmInputs)
        key = _switch_key(inputs.key, target)
        try:
            await port.arm(
                key, [(f, target.name) for f in inputs.faults], inputs.after_s, ctx.operator
            )
        except FaultError as exc:
            return Outcome(False, str(exc))
        return Outcome(True, f"armed {key}: restores {target.name} in {inputs.after_s:g} s")

    async def verify_arm(
        ctx: ActionContext, target: Target, inputs: Any, outcome: Outcome
    ) -> Outcome:
        assert isinstance(inputs, ArmInputs)
        if not outcome.ok:
            return outcome
        armed = await port.armed(_switch_key(inputs.key, target))
        return Outcome(armed, outcome.detail + ("" if armed else ": not armed"))

    async def preview_cancel(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
        assert isinstance(inputs, CancelInputs)
        return Preview((f"lab: cancel the dead man's switch {_switch_key(inputs.key, target)}",))

    async def execute_cancel(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
        assert isinstance(inputs, CancelInputs)
        key = _switch_key(inputs.key, target)
        was = await port.disarm(key)
        return Outcome(True, f"cancelled {key}" if was else f"{key} was not armed (it fired?)")

    async def verify_cancel(
        ctx: ActionContext, target: Target, inputs: Any, outcome: Outcome
    ) -> Outcome:
        assert isinstance(inputs, CancelInputs)
        gone = not await port.armed(_switch_key(inputs.key, target))
        return Outcome(gone, outcome.detail + ("" if gone else ": still armed"))

    def spec(id_: str, label: str, p: Any, e: Any, v: Any, inputs: Any, **kw: Any) -> ActionSpec:
        return ActionSpec(
            id=id_,
            label=label,
            target_kind=LAB_TARGET,
            targets=_no_targets,
            preview=p,
            execute=e,
            verify=v,
            inputs=inputs,
            timeout=10.0,
            **kw,
        )

    return (
        spec(
            "lab.fault",
            "Inject a lab fault",
            preview,
            execute,
            verify,
            FaultInputs,
            destructive=True,
        ),
        spec(
            "lab.fault_clear",
            "Clear a lab fault",
            preview_clear,
            execute_clear,
            verify_clear,
            ClearInputs,
        ),
        spec(
            "lab.deadman_arm",
            "Arm a dead man's switch (lab)",
            preview_arm,
            execute_arm,
            verify_arm,
            ArmInputs,
        ),
        spec(
            "lab.deadman_cancel",
            "Cancel a dead man's switch (lab)",
            preview_cancel,
            execute_cancel,
            verify_cancel,
            CancelInputs,
        ),
    )


def lab_port(lab: Any) -> LabPort:
    """The port of a ``console.lab.Lab`` running in this process."""
    return LocalLab(lab.faults, getattr(lab, "deadman", None))
