"""A tiny synchronous QMP client for tests (observer monitor, busy monitor).

Plain sockets and JSON lines, with a timeout on every read, so a test can never
hang on a monitor that does not answer.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self


class QMPError(Exception):
    """Protocol trouble: no greeting, unexpected message, timeout."""


class QMPCommandError(QMPError):
    """QEMU answered a command with an error."""

    def __init__(self, command: str, error: dict[str, Any]) -> None:
        self.error_class: str = error.get('class', '')
        self.desc: str = error.get('desc', '')
        super().__init__(f'{command}: {self.error_class}: {self.desc}')


class QMPConnection:
    """One negotiated connection to a QMP monitor. Events are kept in ``events``."""

    def __init__(self, path: str | Path, timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self.greeting: dict[str, Any] | None = None
        self._sock: socket.socket | None = None
        self._buf = b''
        self._next_id = 0

    def connect(self) -> Self:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except OSError:
            sock.close()
            raise
        self._sock = sock
        greeting = self._read(time.monotonic() + self.timeout)
        if 'QMP' not in greeting:
            raise QMPError(f'{self.path}: expected a greeting, got {greeting}')
        self.greeting = greeting
        self.cmd('qmp_capabilities')
        return self

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self._buf = b''

    def __enter__(self) -> Self:
        return self if self._sock is not None else self.connect()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def cmd_raw(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a command; return QEMU's whole response (``return`` or ``error``)."""
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        self._next_id += 1
        msg_id = f'vj-{self._next_id}'
        msg: dict[str, Any] = {'execute': command, 'id': msg_id}
        if arguments:
            msg['arguments'] = arguments
        self._sock.sendall(json.dumps(msg).encode() + b'\n')
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read(deadline)
            if 'event' in reply:
                self.events.append(reply)
            elif reply.get('id') == msg_id:
                return reply
            else:
                raise QMPError(f'{command}: unexpected message {reply}')

    def cmd(self, command: str, args: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Run a command and return its result; arguments as a dict and/or keywords."""
        reply = self.cmd_raw(command, {**(args or {}), **kwargs})
        if 'error' in reply:
            raise QMPCommandError(command, reply['error'])
        return reply['return']

    def wait_event(self, name: str, timeout: float = 10.0, **data: Any) -> dict[str, Any]:
        """Return (and remove) the first event ``name`` whose data contains ``data``."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event['event'] == name and all(event.get('data', {}).get(k) == v for k, v in data.items()):
                    self.events.remove(event)
                    return event
            if self._sock is None:
                self.connect()
            self.events.append(self._read(deadline))

    def _read(self, deadline: float) -> dict[str, Any]:
        assert self._sock is not None
        while b'\n' not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QMPError(f'{self.path}: timed out waiting for QEMU')
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise QMPError(f'{self.path}: connection closed by QEMU')
            self._buf += chunk
        line, self._buf = self._buf.split(b'\n', 1)
        message: dict[str, Any] = json.loads(line)
        return message
