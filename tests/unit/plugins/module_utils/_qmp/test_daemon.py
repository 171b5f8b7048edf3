# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_qmp/daemon.py: where a job's own daemon lives."""

from __future__ import annotations

import os

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import daemon as _daemon


def test_paths_depend_on_the_name_only() -> None:
    one = _daemon.daemon_paths('/var/lib/vmjobs', 'restore-1')
    assert one == _daemon.daemon_paths('/var/lib/vmjobs/', 'restore-1')
    assert one.directory.startswith('/var/lib/vmjobs/daemons/')
    assert one.socket == os.path.join(one.directory, 'qmp.sock')
    assert one.pidfile == os.path.join(one.directory, 'qsd.pid')
    assert _daemon.daemon_paths('/var/lib/vmjobs', 'restore-2').directory != one.directory
    long_name = _daemon.daemon_paths('/var/lib/vmjobs', 'r' * 128)
    assert len(long_name.socket) < _daemon.MAX_SOCKET_PATH


def test_no_pidfile_is_no_daemon(tmp_path) -> None:
    assert _daemon.running_pid(str(tmp_path / 'none.pid')) is None
    (tmp_path / 'bad.pid').write_text('not a pid')
    assert _daemon.running_pid(str(tmp_path / 'bad.pid')) is None
    (tmp_path / 'me.pid').write_text(str(os.getpid()))
    assert _daemon.running_pid(str(tmp_path / 'me.pid')) == os.getpid()


def test_a_socket_path_too_long_is_refused_before_anything_runs(tmp_path) -> None:
    paths = _daemon.daemon_paths(str(tmp_path / ('x' * 100)), 'r1')
    ran: list[list[str]] = []

    def run(argv: list[str]) -> tuple[int, str, str]:
        ran.append(argv)
        return 0, '', ''

    with pytest.raises(InvalidArgument, match="job 'r1': the daemon socket .* is longer than 107"):
        _daemon.start_daemon('r1', paths, run)
    assert ran == []


def test_a_daemon_that_fails_to_start_says_why_on_one_line(tmp_path) -> None:
    paths = _daemon.daemon_paths(str(tmp_path), 'r1')

    def run(argv: list[str]) -> tuple[int, str, str]:
        assert argv[:2] == ['qemu-storage-daemon', '--daemonize']
        return 1, '', 'bad\n  thing\n'

    with pytest.raises(InvalidArgument, match="^job 'r1': qemu-storage-daemon failed to start: bad thing$"):
        _daemon.start_daemon('r1', paths, run)
