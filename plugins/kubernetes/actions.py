"""Actions: cordon, uncordon, drain a node (``node_actions``); delete a stuck pod
(``pod_actions``).

Only the ActionRunner calls these coroutines. Previews say which API call
goes to which cluster and read the live state; verification reads the object back.
"""

from __future__ import annotations

from plugins.kubernetes.node_actions import CORDON, DRAIN, UNCORDON
from plugins.kubernetes.pod_actions import DELETE_POD

ACTIONS = (CORDON, UNCORDON, DRAIN, DELETE_POD)
