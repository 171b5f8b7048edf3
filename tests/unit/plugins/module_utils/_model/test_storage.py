# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_model/storage.py: a migration that copies its disks."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    migration as _migration,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    records as _records,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    storage as _storage,
)

Record = dict[str, t.Any]

SOURCE = {'vda': 'vda-fmt', 'vdb': 'vdb-fmt'}
DEST = {'vda': 'dst-a', 'vdb': 'dst-b'}


def mirror(name: str, status: str, current: int, total: int, error: str | None = None) -> Record:
    """A member's record as QEMU's query-jobs gives it."""
    return _records.record_from_qmp({'id': name, 'type': 'mirror', 'status': status,
                                     'current-progress': current, 'total-progress': total,
                                     **({'error': error} if error else {})}, None)


def entry(**extra: t.Any) -> Record:
    disks = _storage.disk_plan('m', ['vda', 'vdb'], SOURCE, DEST)
    return {'name': 'm', 'type': 'migration', 'state': 'started', 'disks': disks,
            'members': [d['member'] for d in disks], **extra}


def test_the_plan_keeps_the_order_and_names_each_step() -> None:
    plan = _storage.disk_plan('m', ['vdb', 'vda'], SOURCE, DEST)
    assert [(d['device'], d['node'], d['dest_node'], d['member'], d['export']) for d in plan] == [
        ('vdb', 'vdb-fmt', 'dst-b', 'm.vdb', 'vdb'), ('vda', 'vda-fmt', 'dst-a', 'm.vda', 'vda')]
    nodes = [d['nbd_node'] for d in plan]
    assert len(set(nodes)) == 2 and all(len(n) <= 31 for n in nodes)
    assert _storage.nbd_node('m', 'vda') == plan[1]['nbd_node'], 'the same name each time'


@pytest.mark.parametrize(('devices', 'source', 'dest', 'words'), [
    ([], SOURCE, DEST, 'no writable disk'),
    (['vdc'], SOURCE, DEST, "the source VM has no disk 'vdc' (disks: vda, vdb)"),
    (['vdb'], SOURCE, {'vda': 'dst-a'}, "the destination QEMU has no disk 'vdb' to copy"),
])
def test_the_plan_refuses_a_disk_one_side_lacks(devices: list[str], source: dict[str, str],
                                                dest: dict[str, str], words: str) -> None:
    with pytest.raises(LookupError, match=words.replace('(', r'\(').replace(')', r'\)')):
        _storage.disk_plan('m', devices, source, dest)


def test_progress_is_every_disk_together() -> None:
    disks = [{'progress': {'current': 10, 'total': 40}}, {'progress': {'current': 30, 'total': 60}}]
    assert _storage.aggregate(disks) == {'current': 40, 'total': 100, 'percent': 40.0}
    assert _storage.aggregate([])['percent'] is None


def test_while_the_disks_are_copied_the_record_is_theirs() -> None:
    live = [mirror('m.vda', 'ready', 64, 64), mirror('m.vdb', 'running', 16, 64)]
    record = _storage.storage_record('m', None, live, entry())
    assert (record['status'], record['raw_status'], record['outcome']) == ('running', 'setup', None)
    assert record['phase'] == 'storage' and record['storage'] == 'copy'
    assert record['progress'] == {'current': 80, 'total': 128, 'percent': 62.5}
    assert [(d['device'], d['name'], d['status'], d['ready']) for d in record['disks']] == [
        ('vda', 'm.vda', 'ready', True), ('vdb', 'm.vdb', 'running', False)]
    assert not _storage.all_ready(record['disks'])
    assert _migration.due_action(record, {}, [], 1.0) is None


def test_once_every_disk_is_in_sync_the_migration_proper_starts() -> None:
    live = [mirror('m.vda', 'ready', 64, 64), mirror('m.vdb', 'ready', 64, 64)]
    record = _storage.storage_record('m', None, live, entry())
    assert _migration.due_action(record, {}, [], 1.0) == _migration.MIGRATE


@pytest.mark.parametrize(('action', 'due'), [('cancel', 'cancel'), ('postcopy', None),
                                             ('pause', None)])
def test_only_the_cancel_policy_acts_while_the_disks_are_copied(action: str,
                                                                due: str | None) -> None:
    live = [mirror('m.vda', 'running', 1, 64), mirror('m.vdb', 'running', 1, 64)]
    record = _storage.storage_record('m', None, live, entry())
    params = {'completion_timeout': 5, 'completion_action': action}
    assert _migration.due_action(record, params, [], 6.0) == due
    assert _migration.due_action(record, params, [action], 6.0) is None


def test_a_disk_that_fails_fails_the_migration_with_its_error() -> None:
    live = [mirror('m.vda', 'concluded', 1, 64, error='Input/output error'),
            mirror('m.vdb', 'running', 1, 64)]
    record = _storage.storage_record('m', None, live, entry())
    assert (record['status'], record['raw_status'], record['outcome']) == (
        'concluded', 'failed', 'failed')
    assert record['error'] == 'disk vda: Input/output error'


def test_a_cancel_while_the_disks_are_copied_is_canceled() -> None:
    live = [mirror('m.vda', 'concluded', 1, 64, error='Operation canceled'),
            mirror('m.vdb', 'concluded', 1, 64, error='Operation canceled')]
    record = _storage.storage_record('m', None, live, entry())
    assert (record['status'], record['outcome'], record['error']) == ('concluded', 'canceled', None)


def test_during_the_migration_proper_the_record_is_qemus_with_the_disks(
        migrate_replies: Record) -> None:
    base = _migration.record_from_migrate(migrate_replies['active'], 'm')
    assert base is not None
    live = [mirror('m.vda', 'ready', 64, 64), mirror('m.vdb', 'ready', 32, 32)]
    record = _storage.storage_record('m', base, live, entry())
    assert record['phase'] == 'migration' and record['progress'] == base['progress']
    assert record['disks_progress'] == {'current': 96, 'total': 96, 'percent': 100.0}
    assert _migration.due_action(record, {}, [], 1.0) is None


def test_a_disk_failing_during_the_migration_proper_cancels_it_and_fails_it(
        migrate_replies: Record) -> None:
    live = [mirror('m.vda', 'concluded', 1, 64, error='Connection reset'),
            mirror('m.vdb', 'ready', 32, 32)]
    running = _migration.record_from_migrate(migrate_replies['active'], 'm')
    assert running is not None
    record = _storage.storage_record('m', running, live, entry())
    assert record['outcome'] is None and _migration.due_action(record, {}, [], 1.0) == 'cancel'
    assert _migration.due_action(record, {}, ['cancel'], 1.0) is None
    canceled = _migration.record_from_migrate(migrate_replies['cancelled'], 'm')
    assert canceled is not None
    ended = _storage.storage_record('m', canceled, live, entry())
    assert (ended['outcome'], ended['error']) == ('failed', 'disk vda: Connection reset')


def test_members_gone_after_the_end_keep_their_last_progress(migrate_replies: Record) -> None:
    done = _migration.record_from_migrate(migrate_replies['completed'], 'm')
    assert done is not None
    last = {'disks': [{'device': 'vda', 'progress': {'current': 64, 'total': 64, 'percent': 100.0}}]}
    record = _storage.storage_record('m', done, [], entry(last=last))
    assert [(d['device'], d['status'], d['outcome']) for d in record['disks']] == [
        ('vda', 'concluded', 'succeeded'), ('vdb', 'concluded', 'succeeded')]
    assert record['disks'][0]['progress']['percent'] == 100.0
    assert record['outcome'] == 'succeeded'
