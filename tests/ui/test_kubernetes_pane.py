"""Pilot: the queues layout (key 5) shows the Kubernetes queue; the node card its pods."""

from __future__ import annotations

from console.app import DcConsoleApp
from console.screens.node_card import NodeCardScreen
from console.session import Session
from plugins.kubernetes import watch
from plugins.kubernetes.panes import KubernetesQueuePane
from tests.ui.conftest import press_layout


async def test_queues_layout_shows_gpus_pending_reasons_and_the_node_card_pods(
    demo_session: Session,
) -> None:
    assert demo_session.poller is not None
    try:
        app = DcConsoleApp(demo_session.options, session=demo_session)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await press_layout(pilot, "5", "queues")
            await pilot.pause()
            pane = app.query_one(KubernetesQueuePane)
            rows = {r.key: r for r in pane.table.rows}
            gpus = str(rows["k8s-demo:gpus"].cells[2])
            # inf01 (4 A30) and inf02 (2 whole + 2 partitioned into 8 MIG slices).
            assert gpus.startswith("6 total · ") and "unavail" in gpus
            assert "mig-1g.6gb" in str(rows["k8s-demo:mig"].cells[2])
            assert str(rows["k8s-demo:reason:0"].cells[2]) == "Insufficient nvidia.com/gpu"
            assert "ml/llm-finetune-" in str(rows["k8s-demo:wait:0"].cells[2])
            assert pane.status.state == "ok"
            app.open_node("inf01")
            await pilot.pause()
            assert isinstance(app.screen, NodeCardScreen)
            text = str(app.screen.body.render())
            assert "Kubernetes" in text and "inference/triton-" in text
            assert "ready in k8s-demo" in text
    finally:
        await watch.stop_all()
