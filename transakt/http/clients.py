"""Who is calling: the client's address, through trusted reverse proxies only."""

from __future__ import annotations

import functools
import ipaddress
from typing import Final

from aiohttp import web

from transakt.http.keys import SETTINGS_KEY

__all__ = ["client_address", "trusted_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_UNKNOWN: Final = "unknown"


@functools.cache
def trusted_networks(setting: str) -> tuple[Network, ...]:
    """The networks of ``TRANSAKT_TRUSTED_PROXIES`` (addresses or CIDRs, comma-separated)."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False)
        for part in setting.split(",")
        if part.strip()
    )


def _is_trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: web.Request) -> str:
    """The address throttles count by: the peer, or what a trusted proxy says the peer was.

    X-Forwarded-For is read from the right, skipping trusted proxies: the first address not
    trusted is the client (anything left of it the client may have written itself).
    """
    remote = request.remote or _UNKNOWN
    networks = trusted_networks(request.app[SETTINGS_KEY].trusted_proxies)
    if not networks or not _is_trusted(remote, networks):
        return remote
    hops = [
        hop.strip()
        for header in request.headers.getall("X-Forwarded-For", [])
        for hop in header.split(",")
    ]
    for hop in reversed(hops):
        if not _is_trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote  # a proxy we trust would not write garbage: ignore the header
    return remote
