"""Refusing the network: ``--block-network`` (as in pytest-recording) for a whole test run.

Replay is meant to be offline; this makes "offline" checked rather than assumed. Inside the block:

* a TCP or UDP ``connect`` to a non-loopback address is refused before a packet leaves;
* so is a datagram sent to one (``sendto``, ``sendmsg``: UDP needs no connect);
* so is a host-name lookup that could ask a DNS server (``getaddrinfo``, ``gethostbyname``,
  ``gethostbyname_ex``, ``gethostbyaddr``, ``getnameinfo``): a query is itself a packet, and
  names what the test wanted to reach.

Allowed: loopback addresses, Unix sockets, ``localhost`` (and ``*.localhost``), numeric addresses
(resolving them asks no one; connecting to a remote one is still refused), and the machine's own
host name (``socket.gethostname()``), which the standard library and many tools resolve
(``socket.getfqdn()``, logging, SMTP helpers) and which connecting to remains refused unless it
is loopback. Everything is put back exactly as it was when the block ends.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import ApiRecorderError


class NetworkBlockedError(ApiRecorderError, OSError):
    """A connection, datagram or name lookup to a non-loopback host while the network is blocked."""


def is_local(address: Any) -> bool:
    """Whether a socket address (``(host, port, ...)``, a Unix path) stays on this machine."""
    if not isinstance(address, tuple) or not address:
        return True  # Unix socket paths and other families never leave the machine
    host = address[0]
    if isinstance(host, (bytes, bytearray)):
        host = bytes(host).decode("ascii", "replace")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def resolves_locally(host: Any) -> bool:
    """Whether looking ``host`` up asks no DNS server that a blocked run must not reach."""
    if host is None:
        return True  # getaddrinfo(None, port): the wildcard or loopback address
    if isinstance(host, (bytes, bytearray)):
        host = bytes(host).decode("ascii", "replace")
    name = str(host).strip().rstrip(".").lower()
    if name in ("", "localhost", "<broadcast>") or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
        return True  # a numeric address: nothing to look up
    except ValueError:
        pass
    return name == socket.gethostname().lower()


def _refuse(address: Any, what: str = "a connection") -> None:
    raise NetworkBlockedError(
        f"api-recorder blocked {what} to {address!r}: the network is blocked in this run "
        "(--block-network). Record the call first (--inference-mode=record-if-missing), or drop "
        "--block-network for this run."
    )


def _refuse_lookup(host: Any) -> None:
    raise NetworkBlockedError(
        f"api-recorder blocked a name lookup of {host!r}: the network is blocked in this run "
        "(--block-network), and a lookup asks a DNS server. Record the call first "
        "(--inference-mode=record-if-missing), or drop --block-network for this run."
    )


_ABSENT = object()


@contextmanager
def network_blocked() -> Iterator[None]:
    """Refuse every non-loopback connection, datagram and name lookup made through :mod:`socket`."""
    original: dict[str, Any] = {}
    replacements: dict[tuple[Any, str], Any] = {}

    def keep(owner: Any, name: str, replacement: Any) -> None:
        original[name] = getattr(owner, name)
        replacements[(owner, name)] = replacement

    def connect(sock: socket.socket, address: Any) -> None:
        if not is_local(address):
            _refuse(address)
        original["connect"](sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        if not is_local(address):
            _refuse(address)
        return int(original["connect_ex"](sock, address))

    def sendto(sock: socket.socket, data: Any, *rest: Any) -> int:
        if rest and not is_local(rest[-1]):  # sendto(data, address) or sendto(data, flags, address)
            _refuse(rest[-1], "a datagram")
        return int(original["sendto"](sock, data, *rest))

    def sendmsg(sock: socket.socket, buffers: Any, *rest: Any) -> int:
        if len(rest) >= 3 and rest[2] is not None and not is_local(rest[2]):  # (ancdata, flags, address)
            _refuse(rest[2], "a datagram")
        return int(original["sendmsg"](sock, buffers, *rest))

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not resolves_locally(host):
            _refuse_lookup(host)
        return original["getaddrinfo"](host, *args, **kwargs)

    def gethostbyname(host: Any) -> Any:
        if not resolves_locally(host):
            _refuse_lookup(host)
        return original["gethostbyname"](host)

    def gethostbyname_ex(host: Any) -> Any:
        if not resolves_locally(host):
            _refuse_lookup(host)
        return original["gethostbyname_ex"](host)

    def gethostbyaddr(host: Any) -> Any:  # a reverse lookup asks a DNS server too
        if not (is_local((host,)) or _own_name(host)):
            _refuse_lookup(host)
        return original["gethostbyaddr"](host)

    def getnameinfo(address: Any, flags: int) -> Any:  # a name in the address is looked up, an address reversed
        host = address[0] if isinstance(address, tuple) and address else None
        if not resolves_locally(host) or not (flags & socket.NI_NUMERICHOST or is_local(address)):
            _refuse_lookup(host)
        return original["getnameinfo"](address, flags)

    sockets: dict[str, Any] = {"connect": connect, "connect_ex": connect_ex, "sendto": sendto, "sendmsg": sendmsg}
    for name, replacement in sockets.items():
        if hasattr(socket.socket, name):  # sendmsg is not on every platform
            keep(socket.socket, name, replacement)
    lookups: tuple[Any, ...] = (getaddrinfo, gethostbyname, gethostbyname_ex, gethostbyaddr, getnameinfo)
    for lookup in lookups:
        keep(socket, lookup.__name__, lookup)

    # socket.socket inherits most of these from _socket.socket: put back "not set here", not a copy
    saved = {(owner, name): owner.__dict__.get(name, _ABSENT) for owner, name in replacements}
    for (owner, name), replacement in replacements.items():
        setattr(owner, name, replacement)
    try:
        yield
    finally:
        for (owner, name), value in saved.items():
            if value is _ABSENT:
                delattr(owner, name)
            else:
                setattr(owner, name, value)


def _own_name(host: Any) -> bool:
    if isinstance(host, (bytes, bytearray)):
        host = bytes(host).decode("ascii", "replace")
    return str(host).strip().rstrip(".").lower() in ("localhost", socket.gethostname().lower())
