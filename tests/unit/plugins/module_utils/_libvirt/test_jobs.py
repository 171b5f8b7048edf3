# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_libvirt/jobs.py, on replies recorded from libvirt 9.0."""

from __future__ import annotations

import json
import pathlib
import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt import (
    domxml as _libvirt_xml,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt import (
    jobs as _libvirt_jobs,
)

FIXTURES = pathlib.Path(__file__).parents[4] / 'unit' / 'fixtures' / 'libvirt'
DIR = '/tmp/vjrec'
TOP, MID, BASE = (f'{DIR}/{n}.qcow2' for n in ('top', 'mid', 'base'))
Record = dict[str, t.Any]


def reply(name: str) -> Record:
    return t.cast(Record, json.loads((FIXTURES / name).read_text()))


def disk(name: str, target: str = 'vda') -> Record:
    found = _libvirt_xml.disks((FIXTURES / name).read_text())
    return next(d for d in found if d['target'] == target)


@pytest.mark.parametrize('name', ['vda', 'sdb', 'a-b'])
@pytest.mark.parametrize('kind', ['copy', 'pull', 'commit', 'active-commit'])
def test_generated_names_round_trip(name: str, kind: str) -> None:
    generated = _libvirt_jobs.generated_name(name, kind)
    assert generated == f'libvirt-{name}-{kind}'
    assert _libvirt_jobs.parse_generated(generated) == (name, kind)


def test_generated_names_of_the_domain_job() -> None:
    assert _libvirt_jobs.generated_name(None, 'backup') == 'libvirt-domain-backup'
    assert _libvirt_jobs.parse_generated('libvirt-domain-backup') == (None, 'backup')
    assert _libvirt_jobs.parse_generated('copy1') is None
    assert _libvirt_jobs.parse_generated('libvirt-vda-dance') is None


def test_running_copy_record() -> None:
    record = _libvirt_jobs.block_record('copy1', disk('domain-copy-running.xml'),
                                        reply('blockjobinfo-copy-running.json'))
    info = reply('blockjobinfo-copy-running.json')
    assert record['name'] == 'copy1' and record['type'] == 'mirror'
    assert record['status'] == record['raw_status'] == 'running' and not record['ready']
    assert record['progress']['current'] == info['cur'] and record['progress']['total'] == info['end']
    assert record['speed'] == 1 << 20 and record['live'] and record['outcome'] is None
    assert record['device'] == 'vda' and record['target'] == f'{DIR}/copy.qcow2'


def test_ready_copy_record() -> None:
    record = _libvirt_jobs.block_record('copy1', disk('domain-copy-ready.xml'),
                                        reply('blockjobinfo-copy-ready.json'))
    assert (record['status'], record['raw_status'], record['ready']) == ('ready', 'ready', True)
    assert record['progress']['percent'] == 100.0 and record['speed'] == 0


def test_a_pull_is_never_ready() -> None:
    record = _libvirt_jobs.block_record('p', disk('domain-chain.xml'),
                                        {'type': 1, 'cur': 5, 'end': 10, 'bandwidth': 0})
    assert record['type'] == 'stream' and record['status'] == 'running'
    assert record['progress']['percent'] == 50.0


def test_finished_backup_stats() -> None:
    stats = reply('jobstats-backup-completed.json')
    assert _libvirt_jobs.finished_stats(stats, 'backup') == ('succeeded', None)
    assert _libvirt_jobs.finished_stats(stats, 'migration') is None
    assert _libvirt_jobs.finished_stats(reply('jobstats-none.json'), 'backup') is None
    failed = dict(stats, type=4, success=False, errmsg='No space left on device')
    assert _libvirt_jobs.finished_stats(failed, 'backup') == ('failed', 'No space left on device')
    assert _libvirt_jobs.finished_stats(dict(stats, type=5), 'backup') == ('canceled', None)


def test_running_backup_record() -> None:
    stats = dict(reply('jobstats-backup-completed.json'), type=1, disk_processed=4194304)
    record = _libvirt_jobs.domain_record('bk', stats)
    assert record['type'] == 'backup' and record['status'] == 'running'
    assert record['progress']['percent'] == 50.0 and record['progress']['remaining'] == 0


def test_a_migration_that_copies_the_disks_reports_their_progress() -> None:
    stats = {'type': 2, 'operation': 5, 'data_total': 300, 'data_processed': 30,
             'disk_total': 200, 'disk_processed': 50}
    record = _libvirt_jobs.domain_record('m', stats)
    assert record['storage'] == 'copy'
    assert record['disks_progress'] == {'current': 50, 'total': 200, 'percent': 25.0}
    shared = _libvirt_jobs.domain_record('m', dict(stats, disk_total=0, disk_processed=0))
    assert 'storage' not in shared and 'disks_progress' not in shared


@pytest.mark.parametrize('kind, top, base, expected', [
    ('pull', None, None, [TOP]),
    ('pull', None, BASE, [TOP, BASE]),
    ('pull', None, MID, [TOP, MID, BASE]),
    ('commit', MID, None, [TOP, BASE]),
    ('commit', MID, BASE, [TOP, BASE]),
    ('commit', TOP, BASE, [BASE]),
])
def test_expected_chains(kind: str, top: str | None, base: str | None,
                         expected: list[str]) -> None:
    assert _libvirt_jobs.expected_chain([TOP, MID, BASE], kind, top, base) == expected


def entry(**values: t.Any) -> Record:
    return dict({'name': 'j', 'type': 'mirror', 'state': 'started', 'disk': 'vda',
                 'libvirt_type': 'copy', 'expect_source': f'{DIR}/copy.qcow2',
                 'started_at': 1.0}, **values)


def test_outcome_of_a_copy_from_the_disk() -> None:
    assert _libvirt_jobs.block_outcome(entry(), disk('domain-after-pivot.xml'), None) == (
        'succeeded', None)
    result, error = _libvirt_jobs.block_outcome(entry(), disk('domain-chain.xml'), None)
    assert result == 'failed' and 'ended without pivoting to expected' in error
    assert _libvirt_jobs.block_outcome(entry(cancel_requested=True), disk('domain-chain.xml'),
                                       None) == ('canceled', None)


@pytest.mark.parametrize('event, cancel, expected', [
    ('completed', False, 'succeeded'), ('canceled', False, 'canceled'),
    ('failed', False, 'failed'), ('completed', True, 'canceled'), ('failed', True, 'failed'),
])
def test_outcome_from_an_event(event: str, cancel: bool, expected: str) -> None:
    result, error = _libvirt_jobs.block_outcome(entry(cancel_requested=cancel),
                                                disk('domain-chain.xml'), event)
    assert result == expected
    assert (error is not None) == (expected == 'failed')


def test_outcome_of_a_pull_from_the_chain() -> None:
    pull = entry(type='stream', libvirt_type='pull', expect_source=None,
                 expect_chain=[TOP, MID, BASE])
    assert _libvirt_jobs.block_outcome(pull, disk('domain-chain.xml'), None)[0] == 'succeeded'
    pull['expect_chain'] = [TOP]
    assert _libvirt_jobs.block_outcome(pull, disk('domain-chain.xml'), None)[0] == 'failed'
    assert _libvirt_jobs.block_outcome(pull, None, None)[0] == 'failed'


def test_owner_is_the_newest_open_entry_of_the_disk() -> None:
    entries = [entry(name='old', started_at=1.0), entry(name='new', started_at=2.0),
               entry(name='done', started_at=3.0, last={'outcome': 'succeeded'}),
               entry(name='gone', started_at=4.0, state='dismissed'),
               entry(name='other', started_at=5.0, disk='vdb'),
               entry(name='bk', type='backup', libvirt_type='backup', disk=None,
                     backup_disks=['vda', 'vdb'], started_at=0.5)]
    assert _libvirt_jobs.owner(entries, 'vda', 'mirror')['name'] == 'new'
    assert _libvirt_jobs.owner(entries, 'vda', 'stream') is None
    assert _libvirt_jobs.owner(entries, 'vdb', 'mirror')['name'] == 'other'
    assert _libvirt_jobs.owner(entries, None, 'backup')['name'] == 'bk'
    assert _libvirt_jobs.owner(entries, None, 'migration') is None


def test_concluded_record_keeps_the_last_progress() -> None:
    record = _libvirt_jobs.concluded(
        entry(last={'progress': {'current': 3, 'total': 10, 'percent': 30.0}, 'speed': 7}),
        'succeeded', None)
    assert record['status'] == 'concluded' and record['outcome'] == 'succeeded'
    assert record['progress'] == {'current': 10, 'total': 10, 'percent': 100.0}
    assert record['speed'] == 7 and record['live'] and not record['busy']
    failed = _libvirt_jobs.concluded(entry(), 'failed', 'boom')
    assert failed['error'] == 'boom' and failed['progress']['current'] is None


@pytest.mark.parametrize('status, expected', [
    ('completed', {'event': 'BLOCK_JOB_COMPLETED', 'data': {'device': 'j'}}),
    ('canceled', {'event': 'BLOCK_JOB_CANCELLED', 'data': {'device': 'j'}}),
    ('ready', {'event': 'BLOCK_JOB_READY', 'data': {'device': 'j'}}),
])
def test_client_events(status: str, expected: Record) -> None:
    event = {'event': 'block-job', 'disk': 'vda', 'type': 'copy', 'status': status}
    assert _libvirt_jobs.client_event(event, 'j') == expected


def test_client_event_of_a_failure_carries_an_error() -> None:
    event = {'event': 'block-job', 'disk': 'vda', 'type': 'pull', 'status': 'failed'}
    translated = _libvirt_jobs.client_event(event, 'j')
    assert translated['event'] == 'BLOCK_JOB_COMPLETED'
    assert 'the pull job on disk vda failed' in translated['data']['error']
    assert _libvirt_jobs.client_event(event, None)['event'] == 'LIBVIRT_BLOCK_JOB'
