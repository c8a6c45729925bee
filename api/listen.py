"""Listening sockets for ``chatcommerce serve --workers N``: one per server process (``SO_REUSEPORT``).

uvicorn's supervisor binds one socket and hands it to every process. Each process then accepts from
that one queue, and whichever wakes first takes every connection waiting there: a client or reverse
proxy that keeps a few connections alive (WAHA's webhook sender, nginx ``keepalive`` upstreams, a load
generator) ends up on one process while the others idle — two processes answered no faster than one.

Here each process binds its own socket to the same address with ``SO_REUSEPORT`` (Linux 3.9+, the BSDs),
and the kernel spreads new connections over the processes' sockets by a hash of the connection's
addresses (``socket(7)``: "incoming connections and datagrams are distributed to the server sockets
using a hash based on the 4-tuple of the connection"). The supervisor's own socket is bound with the same
option, so the port is held (and a port in use is reported at start) but never listens: it receives no
connections. Where the option does not exist, :func:`serve_processes` falls back to uvicorn's shared
socket.

Limit (kernel behaviour): connections still waiting in the accept queue of a process that dies are
reset; uvicorn's supervisor restarts the process, which binds a new socket.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

REUSE_PORT = getattr(socket, "SO_REUSEPORT", None)
_log = logging.getLogger("uvicorn.error")


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` with ``SO_REUSEADDR`` and ``SO_REUSEPORT`` set, not yet listening.

    ``host`` with a ``:`` is IPv6. Raises ``OSError`` when the port is held by a socket without
    ``SO_REUSEPORT`` (or another user's), and ``RuntimeError`` where the platform has no ``SO_REUSEPORT``."""
    if REUSE_PORT is None:
        raise RuntimeError("SO_REUSEPORT is not available on this platform")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, REUSE_PORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class PerProcessSocket(socket.socket):
    """The supervisor's bound socket; pickled into a server process, it becomes that process's own socket.

    uvicorn passes the supervisor's sockets to each spawned process by pickling them; this class pickles
    as "bind a new ``SO_REUSEPORT`` socket to the same address" instead of as a duplicate of this one."""

    def __reduce__(self) -> tuple[Any, ...]:
        host, port = self.getsockname()[:2]
        return reuseport_socket, (host, port)


def check_port_free(host: str, port: int) -> None:
    """Bind ``(host, port)`` as uvicorn will (``SO_REUSEADDR``, no ``SO_REUSEPORT``) and let it go: raises
    ``OSError`` (``EADDRINUSE``, ``EACCES``, an unknown host) when the server could not listen there. For
    commands that do slow work before serving (migrations, the demo's imports, the lifespan's warm-up),
    so that a port in use is reported first, not after. Port 0 always passes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))


def per_process_socket(host: str, port: int) -> PerProcessSocket:
    """The supervisor's socket for ``(host, port)``: bound with ``SO_REUSEPORT``, never listening.

    Raises ``OSError`` when the port is in use (as uvicorn's own bind does)."""
    sock = reuseport_socket(host, port)
    try:
        # the same file descriptor, as the subclass whose pickling binds anew in each process
        own = PerProcessSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    except BaseException:
        sock.close()
        raise
    own.set_inheritable(True)
    return own


def serve_processes(config: uvicorn.Config) -> None:
    """Run ``config.workers`` server processes under uvicorn's supervisor, each on its own socket.

    ``config.app`` must be an import string (each process builds the app). Blocks until the supervisor
    stops (SIGINT/SIGTERM). Falls back to uvicorn's single shared socket where ``SO_REUSEPORT`` is missing
    or the server listens on a Unix socket or a file descriptor."""
    if REUSE_PORT is None or config.uds or config.fd is not None:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    try:
        sock = per_process_socket(config.host, config.port)
    except OSError as exc:
        raise SystemExit(f"cannot listen on {config.host}:{config.port}: {exc}") from exc
    _log.info("Uvicorn running on http://%s:%d, %d processes with a socket each (SO_REUSEPORT)",
              config.host, config.port, config.workers)
    try:
        Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
