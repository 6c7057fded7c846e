"""pytest plugin: tests never reach the network.

Loaded for every run through ``addopts = "-p tests.no_network"`` in pyproject.toml. While pytest runs, outgoing
connections and name look-ups are refused before anything leaves the process, unless the peer is this machine:
loopback addresses (127.0.0.0/8, ::1), the unspecified ones (0.0.0.0, ::, which a server bound to "" reports as its
address), the name ``localhost``, and Unix sockets stay allowed, so that data tests can serve archives from a local
HTTP server.

A refused attempt raises :class:`NetworkBlockedError`. It is a ``RuntimeError`` on purpose, so that code catching
``OSError`` (as offline fall-backs do) does not take it for an ordinary connection failure; and a test that swallows
it anyway still fails, because every refused attempt is recorded and checked after the test body.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest

__all__ = ["NetworkBlockedError", "is_local_host", "take_blocked"]


class NetworkBlockedError(RuntimeError):
    """A test tried to reach a host that is not this machine."""


_ORIGINAL = {
    "connect": socket.socket.connect,
    "connect_ex": socket.socket.connect_ex,
    "sendto": socket.socket.sendto,
    "create_connection": socket.create_connection,
    "getaddrinfo": socket.getaddrinfo,
    "gethostbyname": socket.gethostbyname,
    "gethostbyname_ex": socket.gethostbyname_ex,
}
_OWN_METHODS = {name for name in ("connect", "connect_ex", "sendto") if name in vars(socket.socket)}
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
_blocked: list[str] = []
_depth = 0  # nested pytest sessions in one process (pytester) share one patch


def is_local_host(host: object) -> bool:
    """True for loopback and unspecified literals, ``localhost`` names, and ``None``/"" (this machine)."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip("[]").split("%", 1)[0].rstrip(".").lower()  # [::1], fe80::1%eth0, "localhost."
    if name == "" or name in _LOCAL_NAMES or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False  # any other name would need a DNS look-up
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return ip.is_loopback or ip.is_unspecified  # connecting to 0.0.0.0 / :: reaches this machine


def _refuse(what: str, target: object) -> NetworkBlockedError:
    message = (
        f"network access blocked in tests: {what} to {target!r}. Tests must not reach the network; "
        "serve data from 127.0.0.1 (loopback is allowed) or use the synthetic fixtures."
    )
    _blocked.append(message)
    return NetworkBlockedError(message)


def _check_address(sock: socket.socket, address: object, what: str) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # AF_UNIX, netlink, ...: never leave the machine
    host = address[0] if isinstance(address, tuple) and address else address
    if not is_local_host(host):
        raise _refuse(what, address)


def _connect(self, address):
    _check_address(self, address, "socket.connect")
    return _ORIGINAL["connect"](self, address)


def _connect_ex(self, address):
    _check_address(self, address, "socket.connect_ex")
    return _ORIGINAL["connect_ex"](self, address)


def _sendto(self, data, *args):
    if args:  # sendto(data, address) or sendto(data, flags, address)
        _check_address(self, args[-1], "socket.sendto")
    return _ORIGINAL["sendto"](self, data, *args)


def _create_connection(address, *args, **kwargs):
    if not is_local_host(address[0]):
        raise _refuse("socket.create_connection", address)
    return _ORIGINAL["create_connection"](address, *args, **kwargs)


def _getaddrinfo(host, *args, **kwargs):
    if not is_local_host(host):
        raise _refuse("socket.getaddrinfo", host)
    return _ORIGINAL["getaddrinfo"](host, *args, **kwargs)


def _gethostbyname(host):
    if not is_local_host(host):
        raise _refuse("socket.gethostbyname", host)
    return _ORIGINAL["gethostbyname"](host)


def _gethostbyname_ex(host):
    if not is_local_host(host):
        raise _refuse("socket.gethostbyname_ex", host)
    return _ORIGINAL["gethostbyname_ex"](host)


_PATCHED_METHODS = {"connect": _connect, "connect_ex": _connect_ex, "sendto": _sendto}
_PATCHED_FUNCTIONS = {
    "create_connection": _create_connection,
    "getaddrinfo": _getaddrinfo,
    "gethostbyname": _gethostbyname,
    "gethostbyname_ex": _gethostbyname_ex,
}


def install() -> None:
    """Patch the socket module (idempotent: nested calls count)."""
    global _depth
    _depth += 1
    if _depth == 1:
        for name, fn in _PATCHED_METHODS.items():
            setattr(socket.socket, name, fn)
        for name, fn in _PATCHED_FUNCTIONS.items():
            setattr(socket, name, fn)


def uninstall() -> None:
    """Undo :func:`install` once the outermost caller is done."""
    global _depth
    if _depth == 0:
        return
    _depth -= 1
    if _depth == 0:
        for name in _PATCHED_METHODS:
            if name in _OWN_METHODS:
                setattr(socket.socket, name, _ORIGINAL[name])
            else:  # inherited from _socket.socket: drop the override
                delattr(socket.socket, name)
        for name in _PATCHED_FUNCTIONS:
            setattr(socket, name, _ORIGINAL[name])


def is_installed() -> bool:
    return socket.socket.connect is _connect and socket.getaddrinfo is _getaddrinfo


def take_blocked() -> list[str]:
    """Return and forget the attempts refused so far (a test that expects a refusal calls this)."""
    taken = list(_blocked)
    _blocked.clear()
    return taken


def pytest_configure(config: pytest.Config) -> None:
    install()


def pytest_unconfigure(config: pytest.Config) -> None:
    uninstall()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    _blocked.clear()
    try:
        result = yield  # a test that raised fails on its own
    finally:
        swallowed = take_blocked()
    if swallowed:
        raise NetworkBlockedError(
            f"{item.nodeid} swallowed {len(swallowed)} blocked network attempt(s); first: {swallowed[0]}"
        )
    return result
