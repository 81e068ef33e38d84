"""The client's address: the one rule for `X-Forwarded-For` (TRUSTED_PROXIES).

A request's client is its direct peer unless that peer is a configured proxy; only then is
`X-Forwarded-For` read, from the right: each hop a trusted proxy appended is skipped, and the
first address that is not a trusted proxy is the client. Everything to its left was written
by the client itself and is ignored, so a forged header cannot change which per-client limit
a request counts against. uvicorn's own proxy-header rewriting is off (`sentinel serve`), so
this is the only place the header is read; `scope["client"]` carries the result and every
reader (`request.client.host`, the rate limits, the login limit) sees the same address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> tuple[IPNetwork, ...]:
    """Comma-separated addresses or CIDRs; ValueError names the entry that is neither.

    `*` is refused: trusting every peer lets any client write its own address.
    """
    networks = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        if entry == "*":
            raise ValueError(
                "'*' would trust X-Forwarded-For from every client; list the proxies' "
                "addresses or CIDRs"
            )
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or CIDR") from None
    return tuple(networks)


def parse_address(text: str) -> IPAddress | None:
    """An address as proxies write it (`1.2.3.4`, `1.2.3.4:5678`, `[::1]:80`, `::1`); else None.

    IPv4-mapped IPv6 (`::ffff:10.0.0.1`, what dual-stack sockets report) reads as IPv4.
    """
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The configured proxies, and the client address a request's headers resolve to."""

    def __init__(self, networks: Iterable[IPNetwork]) -> None:
        self.networks = tuple(networks)

    @classmethod
    def parse(cls, value: str) -> TrustedProxies:
        return cls(parse_networks(value))

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in net for net in self.networks)

    def trusts_text(self, text: str) -> bool:
        """`trusts` for an address as written (a peer, a header hop)."""
        return self.trusts(parse_address(text))

    def client(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client address: `peer` unless it is trusted, then the right-most untrusted hop.

        A malformed hop ends the walk at the proxy that passed it on (the address on its
        right), so garbage cannot mint a new identity either; when every hop is trusted the
        left-most is the client.
        """
        address = parse_address(peer)
        if not self.trusts(address):
            return peer
        client = str(address)
        hops = [hop for value in forwarded_for for hop in value.split(",")]
        for hop in reversed(hops):
            parsed = parse_address(hop)
            if parsed is None:
                return client
            client = str(parsed)
            if not self.trusts(parsed):
                return client
        return client


class ClientAddressMiddleware:
    """Outermost: sets `scope["client"]` (and the scheme) from the headers of trusted proxies.

    Only installed when TRUSTED_PROXIES lists any; without it the peer is the client and the
    headers are ignored entirely.
    """

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] in ("http", "websocket") and peer:
            self._resolve(scope, peer)
        await self.app(scope, receive, send)

    def _resolve(self, scope: Scope, peer: tuple[str, int]) -> None:
        if not self.proxies.trusts_text(peer[0]):
            return  # a direct client: its X-Forwarded-* headers are its own words
        forwarded: list[str] = []
        proto = ""
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1")
        if forwarded:
            host = self.proxies.client(peer[0], forwarded)
            scope["client"] = (host, peer[1] if host == peer[0] else 0)
        # The nearest proxy's view of the scheme (nginx sets `$scheme`, overwriting).
        scheme = proto.rpartition(",")[2].strip().lower()
        if scheme in ("http", "https"):
            if scope["type"] == "websocket":
                scheme = "wss" if scheme == "https" else "ws"
            scope["scheme"] = scheme
