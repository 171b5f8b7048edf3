# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_model/records.py (pure; QEMU replies from the fixtures)."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    records as _model,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    vocabulary as _vocabulary,
)
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils._model.samples import (
    live,
    tombstone,
)

Record = dict[str, t.Any]


# -- records from QEMU's replies -------------------------------------------------------------------

RECORD_KEYS = {'name', 'type', 'status', 'raw_status', 'outcome', 'error', 'progress', 'speed',
               'ready', 'paused', 'auto_finalize', 'auto_dismiss', 'busy', 'io_status', 'dismissed',
               'live'}


def test_record_of_a_running_mirror(replies: dict[str, t.Any]) -> None:
    reply = replies['mirror_running']
    record = _model.record_from_qmp(reply['query-jobs'][0], reply['query-block-jobs'][0])
    assert set(record) == RECORD_KEYS
    assert record == {
        'name': 'm1', 'type': 'mirror', 'status': 'running', 'raw_status': 'running',
        'outcome': None, 'error': None,
        'progress': {'current': 16777216, 'total': 67108864, 'percent': 25.0},
        'speed': 4194304, 'ready': False, 'paused': False, 'auto_finalize': True,
        'auto_dismiss': False, 'busy': False, 'io_status': 'ok', 'dismissed': False,
        'live': True,
    }


@pytest.mark.parametrize('source, key, expected', [
    ('replies', 'mirror_running', {'status': 'running', 'ready': False, 'paused': False,
                                   'outcome': None, 'speed': 4194304}),
    ('replies', 'mirror_ready', {'status': 'ready', 'ready': True, 'paused': False,
                                 'outcome': None, 'speed': 0}),
    # Recorded without its query-block-jobs twin: block job fields are unknown.
    ('replies', 'mirror_standby', {'status': 'standby', 'ready': True, 'paused': True,
                                   'speed': None, 'auto_finalize': None, 'busy': None}),
    ('replies', 'mirror_concluded', {'status': 'concluded', 'outcome': 'succeeded',
                                     'error': None, 'ready': False}),
    ('nodes', 'mirror_standby', {'status': 'standby', 'ready': True, 'paused': True,
                                 'speed': 0, 'auto_finalize': True}),
    ('nodes', 'mirror_canceled_when_ready', {'status': 'concluded', 'outcome': 'canceled',
                                             'error': 'Operation canceled'}),
    ('nodes', 'backup_pending', {'status': 'pending', 'outcome': None, 'auto_finalize': False,
                                 'ready': False}),
    ('nodes', 'backup_concluded', {'status': 'concluded', 'outcome': 'succeeded'}),
    # blockdev-create is not a block job: no query-block-jobs entry at all.
    ('nodes', 'create_concluded', {'type': 'create', 'status': 'concluded',
                                   'outcome': 'succeeded', 'speed': None, 'auto_finalize': None,
                                   'auto_dismiss': None, 'io_status': None,
                                   'progress': {'current': 1, 'total': 1, 'percent': 100.0}}),
])
def test_records_from_recorded_replies(replies: dict[str, t.Any],
                                       nodes_replies: dict[str, t.Any], source: str, key: str,
                                       expected: Record) -> None:
    reply = (replies if source == 'replies' else nodes_replies['jobs'])[key]
    [record] = _model.records_from_qmp(reply['query-jobs'], reply['query-block-jobs'])
    assert set(record) == RECORD_KEYS
    assert {k: record[k] for k in expected} == expected
    assert record['raw_status'] == record['status']
    assert record['dismissed'] is False
    assert record['live'] is True


def test_records_of_a_canceled_and_a_failed_backup(replies: dict[str, t.Any]) -> None:
    reply = replies['backup_canceled_and_failed']
    records = _model.records_from_qmp(reply['query-jobs'], reply['query-block-jobs'])
    assert [(r['name'], r['outcome'], r['error']) for r in records] == [
        ('slow1', 'canceled', 'Operation canceled'),
        ('full1', 'failed', 'No space left on device'),
    ]
    assert [r['speed'] for r in records] == [1048576, 0]
    assert records[1]['progress']['percent'] == 54.7


def test_records_from_qmp_joins_by_id_not_by_position(replies: dict[str, t.Any]) -> None:
    reply = replies['backup_canceled_and_failed']
    records = _model.records_from_qmp(reply['query-jobs'], reply['query-block-jobs'][::-1])
    assert [r['speed'] for r in records] == [1048576, 0]


def test_records_from_empty_replies() -> None:
    assert _model.records_from_qmp([], []) == []


# -- records from the ledger -------------------------------------------------------------------------


def test_record_of_a_tombstone_has_the_remembered_outcome() -> None:
    record = _model.record_from_ledger(tombstone())
    assert set(record) == RECORD_KEYS | {'lost'}
    assert record['status'] == record['raw_status'] == 'concluded'
    assert record['outcome'] == 'succeeded'
    assert record['dismissed'] is True
    assert record['lost'] is False
    assert record['live'] is False
    assert record['progress'] == {'current': 64, 'total': 64, 'percent': 100.0}
    assert (record['auto_finalize'], record['auto_dismiss']) == (True, False)
    assert (record['ready'], record['paused'], record['busy']) == (False, False, False)


def test_record_of_a_failed_tombstone_keeps_qemus_error() -> None:
    last = {'status': 'concluded', 'outcome': 'failed', 'error': 'No space left on device'}
    record = _model.record_from_ledger(tombstone(last=last))
    assert (record['outcome'], record['error']) == ('failed', 'No space left on device')
    assert record['progress'] == {'current': None, 'total': None, 'percent': None}


def test_record_of_a_vanished_job_is_lost() -> None:
    record = _model.record_from_ledger(tombstone(state='started', last={'status': 'running'}))
    assert record['status'] == _vocabulary.ABSENT
    assert record['raw_status'] is None
    assert record['outcome'] is None
    assert record['dismissed'] is False
    assert record['lost'] is True


def test_record_of_a_vanished_job_whose_outcome_was_seen() -> None:
    # An auto-dismissed job: QEMU forgot it, the ledger saw it conclude.
    record = _model.record_from_ledger(tombstone(state='started'))
    assert (record['status'], record['outcome']) == ('concluded', 'succeeded')
    assert record['dismissed'] is False
    assert record['lost'] is False


def test_record_of_a_dismissed_job_without_outcome() -> None:
    record = _model.record_from_ledger(tombstone(last=None))
    assert record['status'] == _vocabulary.ABSENT
    assert record['dismissed'] is True
    assert record['lost'] is False


def test_record_from_minimal_entry() -> None:
    record = _model.record_from_ledger({'name': 'x', 'type': None})
    assert record['status'] == _vocabulary.ABSENT
    assert record['auto_finalize'] is None
    assert record['lost'] is True


def test_record_from_ledger_does_not_change_the_entry() -> None:
    entry = tombstone()
    before = repr(entry)
    _model.record_from_ledger(entry)
    assert repr(entry) == before


# -- detail from the ledger ----------------------------------------------------------------------------


def test_attach_detail_adds_the_jobs_parameters() -> None:
    entry = {'params': {'type': 'commit', 'device': 'disk0', 'base': 'base', 'top': None,
                        'speed': 5, 'target': None}}
    record = _model.attach_detail(live(kind='commit'), entry)
    assert record['device'] == 'disk0'
    assert record['base'] == 'base'
    assert 'top' not in record and 'target' not in record and 'speed' not in record


@pytest.mark.parametrize('entry', [None, {}, {'params': None}])
def test_attach_detail_without_parameters(entry: Record | None) -> None:
    assert _model.attach_detail(live(), entry) == live()


@pytest.mark.parametrize('outcome, cancel_requested, expected', [
    ('succeeded', True, 'canceled'),
    ('succeeded', False, 'succeeded'),
    ('failed', True, 'failed'),
    ('canceled', True, 'canceled'),
    (None, True, None),
])
def test_attach_detail_cancel_requested(outcome: str | None, cancel_requested: bool,
                                        expected: str | None) -> None:
    record = _model.attach_detail(live(outcome=outcome), {'cancel_requested': cancel_requested})
    assert record['outcome'] == expected


@pytest.mark.parametrize('status, paused, shown', [
    ('ready', False, 'running'),
    ('standby', True, 'paused'),
    ('running', False, 'running'),
    ('concluded', False, 'concluded'),
])
def test_attach_detail_a_restore_is_never_shown_ready(status: str, paused: bool,
                                                      shown: str) -> None:
    entry = {'params': {'type': 'restore'}, 'complete_on_ready': True}
    record = _model.attach_detail(live(status=status, outcome=None, raw_status=status,
                                       paused=paused, ready=status in ('ready', 'standby')),
                                  entry)
    assert (record['type'], record['status'], record['raw_status']) == ('restore', shown, status)
    assert record['ready'] is False or status not in ('ready', 'standby')


def test_attach_detail_keeps_ready_for_a_mirror_of_the_user() -> None:
    record = _model.attach_detail(live(status='ready', outcome=None, paused=False, ready=True),
                                  {'params': {'type': 'mirror'}})
    assert (record['status'], record['ready']) == ('ready', True)


# -- events a wait cares about ------------------------------------------------------------------

@pytest.mark.parametrize('event, watched, migration, expected', [
    ({'event': 'JOB_STATUS_CHANGE', 'data': {'id': 'b1', 'status': 'concluded'}}, {'b1'}, False,
     True),
    ({'event': 'JOB_STATUS_CHANGE', 'data': {'id': 'b2', 'status': 'concluded'}}, {'b1'}, False,
     False),
    ({'event': 'BLOCK_JOB_COMPLETED', 'data': {'device': 'g1.disk0'}}, {'g1', 'g1.disk0'}, False,
     True),
    ({'event': 'BLOCK_JOB_READY', 'data': {'device': 'm2'}}, {'m1'}, False, False),
    ({'event': 'MIGRATION', 'data': {'status': 'completed'}}, {'mig'}, True, True),
    ({'event': 'MIGRATION', 'data': {'status': 'completed'}}, {'b1'}, False, False),
    ({'event': 'RESUME', 'data': {}}, {'b1'}, False, False),
    ({'event': 'LIBVIRT_JOB_COMPLETED', 'data': {}}, {'b1'}, False, True),
    ({'event': 'SHUTDOWN', 'data': {}}, {'b1'}, False, False),
])
def test_concerns(event: Record, watched: set[str], migration: bool, expected: bool) -> None:
    assert _model.concerns(event, watched, migration) is expected
