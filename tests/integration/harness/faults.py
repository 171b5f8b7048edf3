"""Helpers of the fault-injection suite: killing process groups, fake monitors, checks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .ansible import ansible_env
from .paths import VENV_BIN
from .qmp import QMPConnection


def start_playbook(workdir: Path, playbook: Path, extra_vars: dict[str, Any],
                   tag: str) -> subprocess.Popen[str]:
    """ansible-playbook in its own process group (so that it can be killed whole)."""
    vars_file = workdir / f'vars-{tag}.json'
    vars_file.write_text(json.dumps(extra_vars))
    argv = [str(VENV_BIN / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
            '-e', f'@{vars_file}', str(playbook)]
    return subprocess.Popen(argv, env=ansible_env(workdir), cwd=workdir, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


def kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the process and everything in its process group; reap it.

    Ansible's worker processes call setsid(), so they (and the module they run) are not in
    that group and outlive the controller, as they would after a real crash.
    """
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate(timeout=30)


def created_counts(conn: QMPConnection) -> Counter[str]:
    """How often each job id was created, from the events the observer has read so far."""
    conn.cmd('query-version')  # read what is queued
    return Counter(event['data']['id'] for event in conn.events
                   if event['event'] == 'JOB_STATUS_CHANGE'
                   and event['data']['status'] == 'created')


def connected_clients(socket: Path) -> int:
    """How many connections a listening UNIX socket has accepted and not yet closed.

    Accepted sockets carry the listener's path in ``/proc/net/unix``; state 03 is
    "connected" (the listener itself is 01).
    """
    count = 0
    with open('/proc/net/unix', encoding='utf-8') as table:
        next(table)
        for line in table:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == str(socket) and fields[5] == '03':
                count += 1
    return count


def ledger_records(ledger_dir: Path) -> dict[str, dict[str, Any]]:
    """Every ledger record under ``ledger_dir``, by job name."""
    records = {}
    for path in sorted(ledger_dir.rglob('*.json')):
        record = json.loads(path.read_text())
        records[record['name']] = record
    return records


def ledger_leftovers(ledger_dir: Path) -> list[Path]:
    """Temporary files a writer left behind (a killed write)."""
    return sorted(p for p in ledger_dir.rglob('*.tmp'))


def vj_nodes(conn: QMPConnection) -> list[str]:
    """Block nodes the collection attached (targets), still in QEMU."""
    return sorted(node['node-name'] for node in conn.cmd('query-named-block-nodes', flat=True)
                  if node['node-name'].startswith('vj'))


@contextmanager
def fake_monitor(path: Path, behaviour: str) -> Iterator[Path]:
    """A UNIX socket that is not a QMP monitor.

    ``silent``: accepts and says nothing; ``garbage``: sends a line that is not JSON;
    ``hangup``: accepts and closes at once.
    """
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn = server.accept()[0]
            except OSError:
                return
            if behaviour == 'garbage':
                conn.sendall(b'220 smtp.example ESMTP ready\r\n')
                held.append(conn)
            elif behaviour == 'hangup':
                conn.close()
            else:
                held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        server.close()
        for conn in held:
            conn.close()
        path.unlink(missing_ok=True)


def assert_clean_failure(result: dict[str, Any], *fragments: str) -> None:
    """One line naming what went wrong, no traceback, no module crash."""
    assert result['failed'], result
    msg = result.get('msg', '')
    assert msg and '\n' not in msg.strip(), msg
    for fragment in fragments:
        assert fragment in msg, (fragment, msg)
    assert 'Traceback' not in result.get('raw', '') + msg
    assert 'module_stderr' not in result and 'module_stdout' not in result, result
