"""The client's address, believing X-Forwarded-For only from proxies the operator trusts.

A client can write any X-Forwarded-For it likes; only the hops added by our own load balancers are
facts. So the header is read right to left, skipping trusted proxies, and the first untrusted address
is the client. With no trusted proxies configured the header is ignored entirely.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Sequence[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def peer_host(peer: str) -> str:
    """'1.2.3.4:5678' -> '1.2.3.4'; '[::1]:5678' -> '::1'; a bare address is returned as is."""
    if peer.startswith("["):
        return peer[1:].split("]", 1)[0]
    if peer.count(":") == 1:
        return peer.split(":", 1)[0]
    return peer


def _trusted(addr: str, trusted: tuple[IPNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_address(
    peer: str, forwarded_for: str | Sequence[str] | None, trusted: tuple[IPNetwork, ...]
) -> str:
    """The client's address. `forwarded_for` is every X-Forwarded-For line in the order received: a
    proxy may append its own line rather than extend the client's, and reading only the first line
    would believe the hops the client wrote itself."""
    host = peer_host(peer)
    if not trusted or not forwarded_for or not _trusted(host, trusted):
        return host
    joined = forwarded_for if isinstance(forwarded_for, str) else ",".join(forwarded_for)
    hops = [h.strip() for h in joined.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else host
