"""Outbound safety for tenant webhook URLs: https only, no private or internal addresses (relaxed only locally).

Checked when an endpoint is registered and again at delivery time (DNS may change in between). The delivery
connection itself is made by `shared.delivery.transport`, which resolves the host once more, applies the same
address rules to that answer and connects to the address it checked (so a DNS rebind cannot slip in between).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from shared.settings import get_settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrlError(ValueError):
    """The URL may not be used as a webhook target; the message says why."""


def is_strict() -> bool:
    """https only, and every address a webhook host resolves to must be public: always, unless this is a machine
    running the system locally (`WAGW_ALLOW_LOCAL_WEBHOOKS` with `WAGW_ENV=dev`), whose receivers are local."""
    settings = get_settings()
    return not (settings.env == "dev" and settings.allow_local_webhooks)


def _refused_reason(address: Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return _refused_reason(address.ipv4_mapped)
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("unspecified", address.is_unspecified),
    )
    return next((name for name, hit in checks if hit), None)


def check_syntax(url: str, *, strict: bool) -> str:
    """Return the host of a well-formed webhook URL, or raise UnsafeUrlError."""
    parts = urlsplit(url)
    allowed = ("https",) if strict else ("https", "http")
    if parts.scheme not in allowed:
        raise UnsafeUrlError(f"webhook URL must use {' or '.join(allowed)}, not {parts.scheme or 'nothing'!r}")
    if not parts.hostname:
        raise UnsafeUrlError("webhook URL has no host")
    if parts.username or parts.password:
        raise UnsafeUrlError("webhook URL must not carry credentials")
    return parts.hostname


def check_addresses(host: str, addresses: Iterable[Address]) -> None:
    """Raise UnsafeUrlError unless every address `host` resolved to is public (one bad answer refuses the host)."""
    for address in addresses:
        reason = _refused_reason(address)
        if reason:
            raise UnsafeUrlError(f"webhook host {host!r} resolves to a {reason} address ({address})")


async def lookup(host: str) -> list[Address]:
    """Every address `host` resolves to (asyncio's getaddrinfo); raises OSError (socket.gaierror) if none."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


async def resolve(host: str) -> list[Address]:
    try:
        return await lookup(host)
    except socket.gaierror as exc:
        raise UnsafeUrlError(f"webhook host {host!r} does not resolve") from exc


async def check_url(url: str) -> None:
    """Refuse URLs a tenant may not target; unless relaxed locally (`is_strict`), every resolved address must
    be public."""
    strict = is_strict()
    host = check_syntax(url, strict=strict)
    if not strict:
        return
    check_addresses(host, await resolve(host))
