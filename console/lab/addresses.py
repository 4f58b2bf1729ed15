"""Where a large lab's hosts live: one loopback address per host, never outside 127.0.0.0/8.

A small lab serves every host on 127.0.0.1, each on its own port. A fleet of
thousands spreads them out instead, the way a site has one address per host
and a separate management network for the BMCs: host ``i`` answers on
``127.1.x.y`` and its BMC on ``127.2.x.y``. Linux routes the whole /8 to the
loopback interface, so no setup is needed; and because every connection then
has its own destination address, clients never run short of source ports.
"""

from __future__ import annotations

import ipaddress

HOST_PLANE = 1
"""Second octet of the hosts' addresses (their SSH, their exporters)."""
BMC_PLANE = 2
"""Second octet of the BMCs' addresses: the management network."""
PER_SUBNET = 250
"""Hosts per /24 (last octet 1..250: no .0 or .255, which read like network/broadcast)."""
MAX_SPREAD = 256 * PER_SUBNET
"""Hosts one plane holds (64,000)."""


def spread_address(index: int, plane: int = HOST_PLANE) -> str:
    """The loopback address of host number ``index`` (0-based) on a plane.

    Raises:
        ValueError: the index or the plane is out of range.
    """
    if not 0 <= index < MAX_SPREAD:
        raise ValueError(f"a spread lab holds at most {MAX_SPREAD} hosts, not {index + 1}")
    if not 1 <= plane <= 255:
        raise ValueError(f"plane {plane} is not an octet in 1..255")
    return f"127.{plane}.{index // PER_SUBNET}.{1 + index % PER_SUBNET}"


def require_loopback(address: str) -> str:
    """``address`` itself, if it is in 127.0.0.0/8; the lab never binds anything else."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"the lab binds only to loopback addresses, not {address!r}") from None
    if ip.version != 4 or ip not in ipaddress.ip_network("127.0.0.0/8"):
        raise ValueError(f"the lab binds only to 127.0.0.0/8, not {address}")
    return address
