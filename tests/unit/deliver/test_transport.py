"""The outbound transport: the address checked against urlsafety's rules is the address connected to."""

from __future__ import annotations

import ipaddress
from typing import Any

import httpcore
import httpx
import pytest

from shared.delivery.transport import SafeNetworkBackend, SafeTransport
from shared.delivery.urlsafety import Address, UnsafeUrlError
from tests.conftest import refresh_settings

HOST = "hooks.example.com"
PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
REPLY = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


class Dns:
    """A resolver that answers every name with the given addresses (or fails) and records what it was asked."""

    def __init__(self, *answers: str, fail: bool = False) -> None:
        self.answers = [ipaddress.ip_address(a) for a in answers]
        self.fail = fail
        self.asked: list[str] = []

    async def __call__(self, host: str) -> list[Address]:
        self.asked.append(host)
        if self.fail:
            raise OSError(-2, "Name or service not known")
        return self.answers


class Network(httpcore.AsyncNetworkBackend):
    """The inner backend: records every connect, the TLS server name and the bytes sent; answers with REPLY."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.refuse = refuse
        self.connects: list[tuple[str, int]] = []
        self.tls_names: list[str | None] = []
        self.sent = bytearray()

    async def connect_tcp(self, host: str, port: int, **options: Any) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if host in self.refuse:
            raise httpcore.ConnectError("connection refused")
        return _Stream(self)


class _Stream(httpcore.AsyncMockStream):
    def __init__(self, network: Network) -> None:
        super().__init__([REPLY])
        self.network = network

    async def write(self, buffer: bytes, **options: Any) -> None:
        self.network.sent += buffer

    async def start_tls(self, ssl_context: Any, server_hostname: str | None = None, **options: Any) -> _Stream:
        self.network.tls_names.append(server_hostname)
        return self


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        (["10.0.0.1"], "private"),
        (["127.0.0.1"], "loopback"),
        (["169.254.169.254"], "link-local"),
        (["::1"], "loopback"),
        (["::ffff:127.0.0.1"], "loopback"),
        (["224.0.0.251"], "multicast"),
        (["ff02::1"], "multicast"),
        ([PUBLIC_V4, "10.0.0.1"], "private"),
    ],
)
async def test_a_host_with_any_disallowed_address_is_refused_without_connecting(
    staging: None, answers: list[str], reason: str
) -> None:
    # Given a non-dev environment and a name that resolves to these addresses
    network, dns = Network(), Dns(*answers)
    backend = SafeNetworkBackend(network, dns)
    # When a connection to it is asked for, then it is refused as unsafe, naming the reason
    with pytest.raises(UnsafeUrlError, match=reason):
        await backend.connect_tcp(HOST, 443, timeout=5)
    # And the name was resolved once, and no connection was attempted
    assert dns.asked == [HOST]
    assert network.connects == []


async def test_a_public_host_is_connected_to_by_the_address_that_was_checked(staging: None) -> None:
    # Given a name that resolves to public addresses (IPv6 first, as getaddrinfo may order them)
    network = Network()
    backend = SafeNetworkBackend(network, Dns(PUBLIC_V6, PUBLIC_V4))
    # When a connection is asked for
    await backend.connect_tcp(HOST, 443, timeout=5)
    # Then the inner backend connects to the first checked address, not to the name
    assert network.connects == [(PUBLIC_V6, 443)]


async def test_the_next_checked_address_is_tried_when_one_refuses(staging: None) -> None:
    # Given a name with two public addresses, the first of which refuses connections
    network = Network(refuse=(PUBLIC_V6,))
    backend = SafeNetworkBackend(network, Dns(PUBLIC_V6, PUBLIC_V4))
    # When a connection is asked for, then the second address is connected to
    await backend.connect_tcp(HOST, 443, timeout=5)
    assert network.connects == [(PUBLIC_V6, 443), (PUBLIC_V4, 443)]


async def test_a_name_that_does_not_resolve_is_a_connection_error_not_an_unsafe_url(staging: None) -> None:
    # Given a name the resolver has no answer for
    network = Network()
    backend = SafeNetworkBackend(network, Dns(fail=True))
    # When a connection is asked for, then it fails as a (retryable) connection error, and nothing is connected
    with pytest.raises(httpcore.ConnectError, match="does not resolve"):
        await backend.connect_tcp(HOST, 443, timeout=5)
    assert network.connects == []


async def test_dev_connects_to_local_receivers_by_name_as_urlsafety_allows(env: pytest.MonkeyPatch) -> None:
    # Given the dev environment (local receivers on 127.0.0.1 allowed)
    env.setenv("WAGW_ENV", "dev")
    refresh_settings()
    network, dns = Network(), Dns("127.0.0.1")
    # When a connection to localhost is asked for
    await SafeNetworkBackend(network, dns).connect_tcp("localhost", 8080, timeout=5)
    # Then it is handed to the inner backend unchanged
    assert network.connects == [("localhost", 8080)]
    assert dns.asked == []


async def test_through_httpx_the_ip_is_connected_while_tls_and_host_keep_the_name(staging: None) -> None:
    # Given an httpx client over the safe transport, and a public name
    network = Network()
    transport = SafeTransport(limits=httpx.Limits(), network_backend=SafeNetworkBackend(network, Dns(PUBLIC_V4)))
    async with httpx.AsyncClient(transport=transport) as client:
        # When a webhook is posted
        response = await client.post(f"https://{HOST}/hook", content=b"{}")
    # Then the TCP connection went to the checked IP, while SNI (so the certificate check) and Host are the name
    assert (response.status_code, response.text) == (200, "ok")
    assert network.connects == [(PUBLIC_V4, 443)]
    assert network.tls_names == [HOST]
    assert f"Host: {HOST}\r\n".encode() in network.sent


async def test_through_httpx_a_refusal_stays_unsafe_and_a_refused_connect_is_an_httpx_error(staging: None) -> None:
    # Given an httpx client over the safe transport
    network = Network(refuse=(PUBLIC_V4,))
    answers = {"rebound.example.com": "127.0.0.1", HOST: PUBLIC_V4}

    async def dns(host: str) -> list[Address]:
        return [ipaddress.ip_address(answers[host])]

    transport = SafeTransport(limits=httpx.Limits(), network_backend=SafeNetworkBackend(network, dns))
    async with httpx.AsyncClient(transport=transport) as client:
        # When a name now resolving to loopback is posted to, then UnsafeUrlError comes out (not an httpx error)
        with pytest.raises(UnsafeUrlError, match="loopback"):
            await client.post("https://rebound.example.com/hook", content=b"{}")
        # When a public address refuses the connection, then it is httpx's ConnectError (retried by deliver)
        with pytest.raises(httpx.ConnectError):
            await client.post(f"https://{HOST}/hook", content=b"{}")
    assert network.connects == [(PUBLIC_V4, 443)]
