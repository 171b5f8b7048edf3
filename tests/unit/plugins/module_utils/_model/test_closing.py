# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_model/closing.py: when and how a job's targets are closed."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    closing as _closing,
)

Record = dict[str, t.Any]
STARTED: Record = {'name': 'b1', 'state': 'started', 'attached': ['vjxt', 'vjxf'],
                   'created_file': '/srv/b1.qcow2'}


@pytest.mark.parametrize('entry, state', [
    (None, None),
    ({'name': 's1', 'state': 'started', 'attached': []}, None),
    (STARTED, 'open'),
    ({'name': 'c1', 'state': 'started', 'created_file': '/srv/c1.raw'}, 'open'),
    (dict(STARTED, targets='closed'), 'closed'),
    (dict(STARTED, targets='removed'), 'removed'),
    (dict(STARTED, targets='in_use', kept_nodes=['vjxt']), 'in_use'),
    (dict(STARTED, state='dismissed', kept_nodes=[]), 'closed'),
    (dict(STARTED, state='dismissed', kept_nodes=['vjxt']), 'in_use'),
])
def test_target_state(entry: Record | None, state: str | None) -> None:
    assert _closing.target_state(entry) == state


@pytest.mark.parametrize('record, entry, due', [
    ({'outcome': None}, STARTED, False),
    ({'outcome': 'succeeded'}, STARTED, True),
    ({'outcome': 'failed'}, STARTED, True),
    ({'outcome': 'canceled'}, STARTED, True),
    ({'outcome': 'succeeded'}, dict(STARTED, targets='closed'), False),
    ({'outcome': 'succeeded'}, dict(STARTED, state='starting'), False),
    ({'outcome': 'succeeded'}, dict(STARTED, state='dismissed'), False),
    ({'outcome': 'succeeded'}, {'name': 's1', 'state': 'started'}, False),
    ({'outcome': 'succeeded'}, None, False),
])
def test_closing_due(record: Record, entry: Record | None, due: bool) -> None:
    assert _closing.closing_due(record, entry) is due


@pytest.mark.parametrize('record, entry, kept', [
    ({'outcome': 'succeeded', 'error': None}, STARTED, True),
    ({'outcome': 'failed', 'error': 'No space left on device'}, STARTED, False),
    ({'outcome': 'canceled', 'error': 'Operation canceled'}, STARTED, False),
    ({'outcome': 'canceled', 'error': None}, STARTED, False),  # a canceled backup group
    ({'outcome': 'canceled', 'error': None}, dict(STARTED, keep_copy=True), True),
    ({'outcome': 'canceled', 'error': 'Operation canceled'}, dict(STARTED, keep_copy=True), False),
])
def test_finished(record: Record, entry: Record, kept: bool) -> None:
    assert _closing.finished(record, entry) is kept


def test_created_files_once_each_in_order() -> None:
    entry = {'created_file': '/a', 'created_files': ['/b', '/a', None, '/c']}
    assert _closing.created_files(entry) == ['/a', '/b', '/c']
    assert _closing.created_files({}) == []


RUNNING = {'state': 'started', 'created_files': ['/r.qcow2'], 'attached': ['vjxf']}


@pytest.mark.parametrize('entry, files', [
    (RUNNING, ['/r.qcow2']),
    (dict(RUNNING, state='starting'), ['/r.qcow2']),
    (dict(RUNNING, targets='closed'), []),  # flushed and closed: nothing more to write
    (dict(RUNNING, targets='in_use'), []),  # a device's now
    (dict(RUNNING, state='dismissed'), []),
    (dict(RUNNING, pull=True), []),  # fleecing scratch, thrown away at the end
    ({'state': 'started'}, []),
    (None, []),
])
def test_output_files_are_those_of_a_job_writing_them(
        entry: Record | None, files: list[str]) -> None:
    assert _closing.output_files(entry) == files


@pytest.mark.parametrize('kept, discard, state', [
    ([], False, 'closed'), ([], True, 'removed'), (['vjxt'], False, 'in_use'),
    (['vjxt'], True, 'in_use'),
])
def test_closed_state(kept: list[str], discard: bool, state: str) -> None:
    assert _closing.closed_state(kept, discard) == state


STREAM: Record = {'name': 's1', 'type': 'stream', 'live': True, 'outcome': 'succeeded'}


@pytest.mark.parametrize('record, entry, due', [
    (STREAM, {'name': 's1', 'state': 'started'}, True),
    (dict(STREAM, outcome='failed'), {'name': 's1', 'state': 'started'}, True),
    (dict(STREAM, outcome=None), {'name': 's1', 'state': 'started'}, False),  # still running
    (dict(STREAM, live=False), {'name': 's1', 'state': 'started'}, False),  # QEMU has it no more
    (STREAM, {'name': 's1', 'state': 'dismissed'}, False),
    (STREAM, {'name': 's1', 'state': 'starting'}, False),
    (STREAM, None, False),  # not started by the collection: its outcome would be lost
    (dict(STREAM, type='mirror'), {'name': 's1', 'state': 'started'}, False),
    (dict(STREAM, type='backup'), STARTED, False),
])
def test_dismiss_due(record: Record, entry: Record | None, due: bool) -> None:
    assert _closing.dismiss_due(record, entry) is due


RESTORE: Record = dict(STARTED, complete_on_ready=True)


@pytest.mark.parametrize('record, entry, due', [
    ({'raw_status': 'ready', 'live': True}, RESTORE, True),
    ({'raw_status': 'running', 'live': True}, RESTORE, False),
    ({'raw_status': 'standby', 'live': True}, RESTORE, False),  # paused by its user
    ({'raw_status': 'concluded', 'live': True}, RESTORE, False),
    ({'raw_status': None, 'live': False}, RESTORE, False),
    ({'raw_status': 'ready', 'live': True}, dict(RESTORE, cancel_requested=True), False),
    ({'raw_status': 'ready', 'live': True}, STARTED, False),  # a user's mirror: never
    ({'raw_status': 'ready', 'live': True}, None, False),
])
def test_completion_due(record: Record, entry: Record | None, due: bool) -> None:
    assert _closing.completion_due(record, entry) is due
