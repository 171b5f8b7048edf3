# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugins/module_utils/_qmp/monitor.py over real UNIX sockets, against a scripted QMP peer.

What QEMU does only by chance (an event before its greeting, a full queue of waiting
clients) the peer does every time; the tests of the job modules use real QEMU."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import (
    MonitorBusy,
    TransportError,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp.monitor import (
    NEGOTIATION_ATTEMPTS,
    Monitor,
)

GREETING = {'QMP': {'version': {'qemu': {'major': 7, 'minor': 2, 'micro': 0}, 'package': ''},
                    'capabilities': ['oob']}}
EVENT = {'timestamp': {'seconds': 1, 'microseconds': 0}, 'event': 'JOB_STATUS_CHANGE',
         'data': {'status': 'waiting', 'id': 'j1'}}


class ScriptedQmp:
    """A QMP server whose first ``interleave`` sessions get an event before the greeting
    (``early``) or before the ``qmp_capabilities`` reply, as QEMU 7.2 sends them while a
    job changes status."""

    def __init__(self, path: str, interleave: int = 0, early: bool = False, backlog: int = 8,
                 hog: bool = False) -> None:
        self.interleave = interleave
        self.early = early
        self.sessions = 0
        self.opened = threading.Event()
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(backlog)
        # A client that is queued and never speaks fills a queue of one (QEMU's size).
        self.hog = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) if hog else None
        if self.hog:
            self.hog.connect(path)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        if not hog:
            self.opened.set()

    def _serve(self) -> None:
        if not self.opened.wait(30):
            return
        if self.hog:
            try:
                self.server.accept()[0].close()
            except OSError:
                return
        while True:
            try:
                conn = self.server.accept()[0]
            except OSError:
                return
            with conn:
                self.sessions += 1
                interleave = self.sessions <= self.interleave
                try:
                    self._session(conn, interleave and not self.early, interleave and self.early)
                except (BrokenPipeError, ConnectionResetError):
                    continue  # the client gave up on this session (as on an early event)

    @staticmethod
    def _session(conn: socket.socket, interleave: bool, early: bool) -> None:
        def send(message: dict[str, t.Any]) -> None:
            conn.sendall(json.dumps(message).encode() + b'\n')
        if early:
            send(EVENT)
        send(GREETING)
        decoder = json.JSONDecoder()
        buffer = ''
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buffer += chunk.decode()
            while buffer.strip():  # QMP is a stream of JSON values, not of lines
                try:
                    request, end = decoder.raw_decode(buffer.lstrip())
                except ValueError:
                    break
                buffer = buffer.lstrip()[end:]
                reply: dict[str, t.Any] = {'return': {}}
                if 'id' in request:
                    reply['id'] = request['id']
                if request['execute'] == 'qmp_capabilities' and interleave:
                    send(EVENT)
                elif request['execute'] == 'query-jobs':
                    reply['return'] = []
                send(reply)

    def close(self) -> None:
        self.server.close()
        if self.hog:
            self.hog.close()


@pytest.fixture
def sock_path() -> t.Iterator[str]:
    with tempfile.TemporaryDirectory(prefix='vj-') as top:
        yield os.path.join(top, 'qmp.sock')


@pytest.mark.parametrize('early', [False, True], ids=['before-reply', 'before-greeting'])
def test_an_interleaved_event_is_survived(sock_path: str, early: bool) -> None:
    server = ScriptedQmp(sock_path, interleave=2, early=early)
    try:
        with Monitor(sock_path, connect_timeout=5) as monitor:
            assert monitor.execute('query-jobs') == []
        assert server.sessions == 3
    finally:
        server.close()


def test_a_monitor_that_never_negotiates_is_reported(sock_path: str) -> None:
    server = ScriptedQmp(sock_path, interleave=NEGOTIATION_ATTEMPTS)
    try:
        with pytest.raises(TransportError, match='cannot connect to QMP socket'):
            Monitor(sock_path, connect_timeout=5).connect()
        assert server.sessions == NEGOTIATION_ATTEMPTS
    finally:
        server.close()


def test_a_socket_that_is_no_monitor_is_reported_in_one_line(sock_path: str) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(8)
    held: list[socket.socket] = []

    def serve() -> None:
        for _attempt in range(NEGOTIATION_ATTEMPTS):
            conn = server.accept()[0]
            conn.sendall(b'220 smtp.example ESMTP ready\r\n')
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(TransportError) as err:
            Monitor(sock_path, connect_timeout=5).connect()
    finally:
        server.close()
        for conn in held:
            conn.close()
    message = str(err.value)
    assert message.startswith(f'cannot connect to QMP socket {sock_path}: Did not understand')
    assert '\n' not in message and '220 smtp.example' in message


def test_no_socket(sock_path: str) -> None:
    with pytest.raises(TransportError, match='no QMP socket at'):
        Monitor(sock_path).connect()


def test_a_full_queue_of_waiting_clients_is_waited_for(sock_path: str) -> None:
    server = ScriptedQmp(sock_path, backlog=0, hog=True)
    threading.Timer(0.2, server.opened.set).start()
    try:
        with Monitor(sock_path, connect_timeout=5) as monitor:
            assert monitor.execute('query-jobs') == []
    finally:
        server.close()


def test_a_queue_that_stays_full_is_a_busy_monitor(sock_path: str) -> None:
    server = ScriptedQmp(sock_path, backlog=0, hog=True)
    try:
        with pytest.raises(MonitorBusy, match='sent no greeting within 0.3s: another client holds it'):
            Monitor(sock_path, connect_timeout=0.3).connect()
    finally:
        server.opened.set()
        server.close()
