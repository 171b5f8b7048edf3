# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small synchronous facade over qemu.qmp; the only importer of that package.

This is a private module: its API may change between any two releases.

A QMP socket serves one client at a time, so a :class:`Monitor` is meant to be
opened for one operation and closed right after (use it as a context manager).
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
import typing as t

from .._errors import BackendError, MonitorBusy, TransportError

try:
    from qemu.qmp import ConnectError, ExecuteError, QMPClient, QMPError, StateError
    from qemu.qmp.qmp_client import GreetingError, NegotiationError
    HAS_QMP = True
    QMP_IMPORT_ERROR: ImportError | None = None
except ImportError as err:  # pragma: no cover - reported by the modules
    HAS_QMP = False
    QMP_IMPORT_ERROR = err

#: Connections tried when QEMU interleaves an event with the greeting (see connect).
NEGOTIATION_ATTEMPTS = 5


def _timeval(seconds: float) -> bytes:
    return struct.pack('ll', int(seconds), int((seconds % 1) * 1_000_000))


def dial(path: str, timeout: float) -> socket.socket:
    """Connect a UNIX stream socket, waiting up to ``timeout`` seconds for a free slot.

    QEMU keeps a queue of one waiting client per monitor. A non-blocking connect
    (asyncio's) fails at once when that queue is full; a blocking one sleeps until
    QEMU accepts a client, for at most its send timeout.

    :raise BlockingIOError: the queue stayed full for ``timeout`` seconds.
    :raise OSError: anything else (refused, permission, not a socket).
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(max(timeout, 0.001)))
        sock.connect(path)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(0))
    except BaseException:
        sock.close()
        raise
    return sock


def _lost(err: BaseException) -> str:
    """Why a connection broke, in words (qemu.qmp's StateError speaks of its own states)."""
    if isinstance(err, (StateError, EOFError)):
        return 'QEMU closed the connection'
    return str(err) or type(err).__name__


class Monitor:
    """One QMP connection: connect, execute commands, wait for events, close.

    The constructor does no I/O.

    :param path: path of the QMP UNIX socket.
    :param connect_timeout: seconds allowed for connecting and for the greeting.
    """

    def __init__(self, path: str, connect_timeout: float = 5.0) -> None:
        self.path = path
        self.connect_timeout = float(connect_timeout)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: t.Any = None
        self._sock: socket.socket | None = None

    def __enter__(self) -> Monitor:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, coro: t.Awaitable[t.Any], timeout: float | None = None) -> t.Any:
        if self._loop is None:
            raise TransportError(f'QMP socket {self.path} is not connected')
        if timeout is not None:
            coro = asyncio.wait_for(coro, timeout)
        return self._loop.run_until_complete(coro)

    def connect(self) -> None:
        """Connect and negotiate capabilities.

        :raise TransportError: no socket, refused, or not a QMP monitor.
        :raise MonitorBusy: connected but no greeting within ``connect_timeout``.
        """
        if not os.path.exists(self.path):
            raise TransportError(f'no QMP socket at {self.path}: is the VM running?')
        deadline = time.monotonic() + self.connect_timeout
        for attempt in range(NEGOTIATION_ATTEMPTS):
            self._loop = asyncio.new_event_loop()
            self._client = QMPClient('vmjobs')
            try:
                self._sock = dial(self.path, deadline - time.monotonic())
                self._run(self._client.connect(self._sock), max(deadline - time.monotonic(), 0.001))
                return
            except (asyncio.TimeoutError, BlockingIOError):
                self.close()
                raise self._busy() from None
            except ConnectError as err:
                self.close()
                # QEMU may send an event (e.g. JOB_STATUS_CHANGE) before its greeting or
                # before its reply to qmp_capabilities, which qemu.qmp takes for a failed
                # session: a new connection is a new negotiation.
                if isinstance(err.exc, (GreetingError, NegotiationError)) and \
                        attempt + 1 < NEGOTIATION_ATTEMPTS:
                    continue
                detail = ' '.join(str(err.exc if err.exc else err).split())  # one line
                raise TransportError(f'cannot connect to QMP socket {self.path}: {detail}') from err
            except (QMPError, OSError) as err:
                self.close()
                raise TransportError(f'cannot connect to QMP socket {self.path}: {err}') from err

    def _busy(self) -> MonitorBusy:
        return MonitorBusy(
            f'QMP monitor {self.path} sent no greeting within {self.connect_timeout:.1f}s: another client holds it '
            '(QMP serves one client at a time)')

    def execute(self, command: str, arguments: dict[str, t.Any] | None = None) -> t.Any:
        """Run one QMP command and return its ``return`` value.

        :raise BackendError: QEMU answered with an error (class and text kept).
        :raise TransportError: the connection broke.
        """
        if self._client is None:
            raise TransportError(f'QMP socket {self.path} is not connected')
        try:
            return self._run(self._client.execute(command, arguments or {}))
        except ExecuteError as err:
            raise BackendError(command, err.error_class, str(err)) from err
        except (QMPError, OSError, EOFError) as err:
            raise TransportError(f'QMP connection to {self.path} lost during {command}: {_lost(err)}') from err

    def wait_event(self, timeout: float) -> dict[str, t.Any] | None:
        """Return the next event, or None after ``timeout`` seconds without one."""
        if self._client is None or timeout <= 0:
            return None
        try:
            event = self._run(self._client.events.get(), float(timeout))
        except asyncio.TimeoutError:
            return None
        except (QMPError, OSError, EOFError) as err:
            raise TransportError(f'QMP connection to {self.path} lost while waiting: {_lost(err)}') from err
        return dict(event)

    def drain_events(self) -> list[dict[str, t.Any]]:
        """Return the events received so far without waiting."""
        events: list[dict[str, t.Any]] = []
        while self._client is not None and not self._client.events.empty():
            events.append(dict(self._run(self._client.events.get())))
        return events

    def peer(self) -> tuple[int, int] | None:
        """The user and group ids of the process at the other end (QEMU), or None."""
        if self._sock is None:
            return None
        size = struct.calcsize('3i')
        try:
            _pid, uid, gid = struct.unpack('3i', self._sock.getsockopt(
                socket.SOL_SOCKET, socket.SO_PEERCRED, size))
        except OSError:
            return None
        return uid, gid

    def close(self) -> None:
        """Disconnect; an EOF after ``quit`` or a dead peer is not an error here."""
        if self._client is not None and self._loop is not None:
            try:
                self._run(self._client.disconnect(), self.connect_timeout)
            except (QMPError, OSError, EOFError, asyncio.TimeoutError):
                pass
        self._client = None
        if self._loop is not None:
            self._loop.close()
            self._loop = None
        if self._sock is not None:
            self._sock.close()  # the transport closed it already, unless connecting failed
            self._sock = None


def commands(monitor: Monitor) -> frozenset[str]:
    """The QMP commands this QEMU has (``query-qmp-schema``): what a feature probe asks."""
    schema = monitor.execute('query-qmp-schema')
    return frozenset(e['name'] for e in schema if e['meta-type'] == 'command')
