"""Refusing the network: ``--block-network`` (as in pytest-recording) for a whole test run.

Replay is meant to be offline; this makes "offline" checked rather than assumed. Sockets to
loopback addresses (the test's own servers) and Unix sockets stay allowed; any other connection is
refused before a packet leaves, and a host name other than ``localhost`` is refused without being
resolved.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import ApiRecorderError


class NetworkBlockedError(ApiRecorderError, OSError):
    """A connection to a non-loopback address while the network is blocked."""


def is_local(address: Any) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # Unix socket paths and other families never leave the machine
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _refuse(address: Any) -> None:
    raise NetworkBlockedError(
        f"api-recorder blocked a connection to {address!r}: the network is blocked in this run "
        "(--block-network). Record the call first (--inference-mode=record-if-missing), or drop "
        "--block-network for this run."
    )


@contextmanager
def network_blocked() -> Iterator[None]:
    """Refuse every non-loopback connection made through :mod:`socket` inside the block."""
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def connect(sock: socket.socket, address: Any) -> None:
        if not is_local(address):
            _refuse(address)
        return original_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        if not is_local(address):
            _refuse(address)
        return original_connect_ex(sock, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = original_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = original_connect_ex  # type: ignore[method-assign]
