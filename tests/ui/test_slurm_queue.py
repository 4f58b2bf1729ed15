"""The queues layout on the demo: the Slurm queue pane and the nodes out of service."""

from __future__ import annotations

from console.app import DcConsoleApp
from console.session import Session
from console.widgets.out_of_service import OutOfServicePane
from plugins.slurm.lab import SlurmLab
from plugins.slurm.panes import SlurmQueuePane
from tests.ui.conftest import press_layout


def texts(pane: SlurmQueuePane | OutOfServicePane) -> list[str]:
    return [" ".join(str(c) for c in row.cells) for row in pane.table.rows]


async def test_queues_layout_shows_gpus_pending_and_a_drained_node_with_its_reason(
    demo_session: Session,
) -> None:
    assert demo_session.lab is not None and demo_session.poller is not None
    emu = demo_session.lab.emulations["slurm"]
    assert isinstance(emu, SlurmLab)
    demo_session.lab.faults.inject("slurm.gpu_failure", "gpu003")
    emu.tick(demo_session.lab.clock.now())
    await demo_session.poller.poll_once()
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await press_layout(pilot, "5", "queues")
        await pilot.pause()
        queue = app.query_one(SlurmQueuePane)
        out = app.query_one(OutOfServicePane)
        queue.data_changed()
        out.data_changed()
        shown = texts(queue)
        assert any("GPUs" in t and "64 total" in t for t in shown), shown
        assert any("pending" in t for t in shown)
        assert queue.status.state == "ok"
        rows = texts(out)
        assert any(
            # draining while its jobs finish, drained after: either way out of service
            "gpu003" in t and "slurm" in t and "drain" in t and "gres/gpu count" in t
            for t in rows
        ), rows
