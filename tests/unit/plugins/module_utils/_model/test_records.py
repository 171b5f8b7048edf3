# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_model/records.py (pure; QEMU replies from the fixtures)."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    records as _model,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    verdicts as _verdicts,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    vocabulary as _vocabulary,
)
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils.fake_backend import (
    QEMU_STATUSES,
    QEMU_VERB_TABLE,
    qemu_accepts,
)

Record = dict[str, t.Any]


# -- names ----------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', [
    'a', 'Z', 'backup-disk0', 'move.disk0_2026-11-21', 'x' * 128, 'a1', 'A-._',
])
def test_validate_name_accepts_qemu_ids(name: str) -> None:
    assert _vocabulary.validate_name(name) == name


@pytest.mark.parametrize('name', [
    '', '1bad', '-a', '.x', '_x', 'a b', 'a/b', '../x', '/abs', 'x' * 129, 'caf\u00e9', 'a:b',
    'a\x00', 'a\tb', ' a',
])
def test_validate_name_rejects(name: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        _vocabulary.validate_name(name)
    assert repr(name) in str(err.value)
    assert '1-128 characters' in str(err.value)


@pytest.mark.parametrize('name', [None, 7, b'abc', ['a']])
def test_validate_name_rejects_non_strings(name: t.Any) -> None:
    with pytest.raises(InvalidArgument):
        _vocabulary.validate_name(name)


@pytest.mark.parametrize('name', ['a\n', 'backup-disk0\n'])
def test_validate_name_rejects_trailing_newline(name: str) -> None:
    with pytest.raises(InvalidArgument):
        _vocabulary.validate_name(name)


# -- verbs -------------------------------------------------------------------------------------------

def test_statuses_are_qemus_without_undefined_and_null() -> None:
    assert set(_vocabulary.STATUSES) == set(QEMU_STATUSES) - {'undefined', 'null'}
    assert _vocabulary.ACTIVE == set(_vocabulary.STATUSES) - {'concluded'}
    assert set(_vocabulary.VERBS) == set(QEMU_VERB_TABLE)


VERB_CELLS = [(verb, status) for verb in QEMU_VERB_TABLE for status in _vocabulary.STATUSES]


@pytest.mark.parametrize('verb, status', VERB_CELLS)
def test_verb_allowed_matches_qemus_verb_table(verb: str, status: str) -> None:
    assert _vocabulary.verb_allowed(verb, status) is qemu_accepts(verb, status)


def test_complete_is_accepted_in_standby(nodes_replies: dict[str, t.Any]) -> None:
    # Recorded: job-complete on a paused READY mirror (standby) returns {}.
    assert nodes_replies['accepted'] == {'job-complete standby': {}}
    assert _vocabulary.verb_allowed('complete', 'standby')


@pytest.mark.parametrize('key, verb, status', [
    ('job-cancel concluded', 'cancel', 'concluded'),
    ('job-finalize concluded', 'finalize', 'concluded'),
    ('job-pause pending', 'pause', 'pending'),
])
def test_recorded_refusals_are_not_allowed(nodes_replies: dict[str, t.Any], key: str, verb: str,
                                           status: str) -> None:
    error = nodes_replies['errors'][key]
    assert f"in state '{status}' cannot accept command verb '{verb}'" in error['desc']
    assert not _vocabulary.verb_allowed(verb, status)


@pytest.mark.parametrize('status, verbs', [
    ('created', ['cancel', 'pause', 'resume', 'set-speed']),
    ('running', ['cancel', 'pause', 'resume', 'set-speed']),
    ('paused', ['cancel', 'pause', 'resume', 'set-speed']),
    ('ready', ['cancel', 'pause', 'resume', 'set-speed', 'complete']),
    ('standby', ['cancel', 'pause', 'resume', 'set-speed', 'complete']),
    ('waiting', ['cancel']),
    ('pending', ['cancel', 'finalize']),
    ('concluded', ['dismiss']),
    ('absent', []),
])
def test_allowed_verbs_in_table_order(status: str, verbs: list[str]) -> None:
    assert _vocabulary.allowed_verbs(status) == verbs


def test_verb_allowed_unknown_verb_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        _vocabulary.verb_allowed('change', 'running')


# -- progress and outcome ----------------------------------------------------------------------------

@pytest.mark.parametrize('current, total, expected', [
    (16777216, 67108864, 25.0),
    (1, 3, 33.3),
    (2, 3, 66.7),
    (0, 10, 0.0),
    (10, 10, 100.0),
    (11, 10, 100.0),
    (None, 10, None),
    (5, None, None),
    (5, 0, None),
    (0, 0, None),
])
def test_percent(current: int | None, total: int | None, expected: float | None) -> None:
    assert _vocabulary.percent(current, total) == expected


@pytest.mark.parametrize('status, error, cancel_requested, expected', [
    ('running', None, False, None),
    ('ready', None, True, None),
    ('aborting', 'Operation canceled', False, None),
    ('pending', None, False, None),
    ('concluded', None, False, 'succeeded'),
    ('concluded', None, True, 'canceled'),
    ('concluded', 'Operation canceled', False, 'canceled'),
    ('concluded', 'Operation cancelled', False, 'canceled'),
    ('concluded', 'No space left on device', False, 'failed'),
    ('concluded', 'No space left on device', True, 'failed'),
    ('concluded', '', False, 'failed'),
])
def test_outcome(status: str, error: str | None, cancel_requested: bool,
                 expected: str | None) -> None:
    assert _vocabulary.outcome(status, error, cancel_requested) == expected


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

def tombstone(**changes: t.Any) -> Record:
    entry: Record = {
        'name': 'b1', 'type': 'backup', 'state': 'dismissed',
        'params': {'type': 'backup', 'device': 'disk0', 'target': '/srv/b1.qcow2',
                   'auto_finalize': True, 'auto_dismiss': False},
        'last': {'status': 'concluded', 'outcome': 'succeeded', 'error': None,
                 'progress': {'current': 64, 'total': 64, 'percent': 100.0}, 'speed': 0},
    }
    entry.update(changes)
    return entry


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

def live(status: str = 'concluded', outcome: str | None = 'succeeded', kind: str = 'mirror',
         **changes: t.Any) -> Record:
    record = {'name': 'm1', 'type': kind, 'status': status, 'outcome': outcome, 'error': None,
              'dismissed': False, 'live': status != 'absent'}
    record.update(changes)
    return record


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


# -- can_become_ready and wait verdicts -------------------------------------------------------------

@pytest.mark.parametrize('kind, status, entry, expected', [
    ('mirror', 'created', None, True),
    ('mirror', 'running', None, True),
    ('mirror', 'paused', None, True),
    ('mirror', 'ready', None, True),
    ('mirror', 'standby', None, True),
    ('mirror', 'waiting', None, False),
    ('mirror', 'pending', None, False),
    ('mirror', 'aborting', None, False),
    ('mirror', 'concluded', None, False),
    ('mirror', 'absent', None, False),
    ('commit', 'running', None, True),
    ('commit', 'running', {'active': True}, True),
    ('commit', 'running', {'active': False}, False),
    ('commit', 'running', {}, True),
    ('mirror', 'running', {'active': False}, True),
    ('backup', 'running', None, False),
    ('stream', 'running', None, False),
    ('create', 'running', None, False),
])
def test_can_become_ready(kind: str, status: str, entry: Record | None, expected: bool) -> None:
    assert _verdicts.can_become_ready(live(status, None, kind), entry) is expected


WAIT_CASES = [
    # target absent
    ('absent', live('absent', None), None, 'reached'),
    ('absent', live('running', None), None, 'waiting'),
    ('absent', live('concluded'), None, 'waiting'),
    # target concluded
    ('concluded', live('running', None), None, 'waiting'),
    ('concluded', live('aborting', None), None, 'waiting'),
    ('concluded', live('concluded'), None, 'reached'),
    ('concluded', live('concluded', 'failed'), None, 'reached'),
    ('concluded', live('absent', None), None, 'never'),
    ('concluded', live('absent', None, dismissed=True), None, 'reached'),
    # target pending
    ('pending', live('running', None, 'backup'), None, 'waiting'),
    ('pending', live('waiting', None, 'backup'), None, 'waiting'),
    ('pending', live('pending', None, 'backup'), None, 'reached'),
    ('pending', live('concluded', 'succeeded', 'backup'), None, 'reached'),
    ('pending', live('concluded', 'failed', 'backup'), None, 'never'),
    ('pending', live('concluded', 'canceled', 'backup'), None, 'never'),
    ('pending', live('aborting', None, 'backup'), None, 'waiting'),
    ('pending', live('absent', None, 'backup'), None, 'never'),
    # target ready
    ('ready', live('running', None), None, 'waiting'),
    ('ready', live('paused', None), None, 'waiting'),
    ('ready', live('ready', None), None, 'reached'),
    ('ready', live('standby', None), None, 'reached'),
    # A mirror (or active commit) that went past READY on its normal path counts as ready.
    ('ready', live('waiting', None), None, 'reached'),
    ('ready', live('pending', None), None, 'reached'),
    ('ready', live('concluded'), None, 'reached'),
    ('ready', live('concluded', 'failed'), None, 'never'),
    ('ready', live('concluded', 'canceled'), None, 'never'),
    ('ready', live('aborting', None), None, 'waiting'),
    ('ready', live('waiting', None, 'commit'), {'active': False}, 'never'),
    ('ready', live('waiting', None, 'commit'), {'active': True}, 'reached'),
    ('ready', live('running', None, 'backup'), None, 'never'),
    ('ready', live('waiting', None, 'backup'), None, 'never'),
    ('ready', live('concluded', 'succeeded', 'backup'), None, 'never'),
    ('ready', live('running', None, 'commit'), {'active': True}, 'waiting'),
    ('ready', live('running', None, 'commit'), {'active': False}, 'never'),
    ('ready', live('absent', None), None, 'never'),
    # A job paused through the collection, or stopped on an I/O error, stays until resumed.
    ('ready', live('paused', None), {'user_paused': True}, 'never'),
    ('ready', live('paused', None), {'user_paused': False}, 'waiting'),
    ('ready', live('paused', None), None, 'waiting'),
    ('ready', live('standby', None), {'user_paused': True}, 'reached'),
    ('concluded', live('standby', None), {'user_paused': True}, 'never'),
    ('pending', live('paused', None, 'backup'), {'user_paused': True}, 'never'),
    ('concluded', live('paused', None, 'backup', io_status='nospace'), None, 'never'),
    ('concluded', live('paused', None, 'backup', io_status='ok'), None, 'waiting'),
    ('absent', live('paused', None), {'user_paused': True}, 'waiting'),
]


@pytest.mark.parametrize('target, record, entry, expected', WAIT_CASES)
def test_wait_verdict(target: str, record: Record, entry: Record | None, expected: str) -> None:
    assert _verdicts.wait_verdict(record, target, entry) == expected


@pytest.mark.parametrize('kind, target, expected', [
    ('backup', 'ready', 'never'),
    ('mirror', 'ready', 'reached'),
    ('backup', 'pending', 'reached'),
    ('backup', 'concluded', 'reached'),
    ('backup', 'absent', 'reached'),
])
def test_wait_verdict_of_a_tombstone(kind: str, target: str, expected: str) -> None:
    record = _model.record_from_ledger(tombstone(type=kind))
    assert record['status'] == 'concluded'
    assert _verdicts.wait_verdict(record, target) == expected


@pytest.mark.parametrize('target, expected', [
    ('absent', 'reached'), ('concluded', 'reached'), ('pending', 'reached'),
])
def test_wait_verdict_of_a_job_qemu_dismissed_by_itself(target: str, expected: str) -> None:
    # Auto-dismissed, outcome seen: not live, not dismissed by the collection.
    record = _model.record_from_ledger(tombstone(state='started'))
    assert _verdicts.wait_verdict(record, target) == expected


def test_wait_verdict_unknown_target() -> None:
    with pytest.raises(ValueError, match="unknown wait target 'gone'"):
        _verdicts.wait_verdict(live('running', None), 'gone')


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
