# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_model/migration.py (query-migrate replies of QEMU 7.2)."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    migration as _migration,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    vocabulary as _vocabulary,
)

Record = dict[str, t.Any]


@pytest.mark.parametrize('reply', ['none', 'incoming'])
def test_no_outgoing_migration_no_record(reply: str, migrate_replies: Record) -> None:
    assert _migration.record_from_migrate(migrate_replies[reply], 'm') is None


@pytest.mark.parametrize(('reply', 'status', 'outcome'), [
    ('active', 'running', None),
    ('postcopy-active', 'running', None),
    ('cancelled', 'concluded', 'canceled'),
    ('completed', 'concluded', 'succeeded'),
    ('failed', 'concluded', 'failed'),
])
def test_statuses_map_onto_job_statuses(reply: str, status: str, outcome: str | None, migrate_replies: Record) -> None:
    record = _migration.record_from_migrate(migrate_replies[reply], 'm')
    assert record is not None
    assert (record['status'], record['raw_status'], record['outcome']) == (status, reply, outcome)
    assert record['type'] == 'migration' and record['live'] is True


def test_every_migration_status_maps_to_a_job_status() -> None:
    assert set(_migration.STATUS_MAP.values()) <= set(_vocabulary.STATUSES)
    assert {raw for raw, s in _migration.STATUS_MAP.items() if s == 'concluded'} == set(
        _migration.OUTCOMES)


def test_active_progress_is_ram_copied_of_total(migrate_replies: Record) -> None:
    record = _migration.record_from_migrate(migrate_replies['active'], 'm')
    assert record is not None
    ram = migrate_replies['active']['ram']
    progress = record['progress']
    assert progress['total'] == ram['total']
    assert progress['current'] == ram['total'] - ram['remaining']
    assert progress['remaining'] == ram['remaining']
    assert progress['rate'] == int(ram['mbps'] * 1_000_000 / 8)
    assert 0 < progress['percent'] < 100
    assert record['expected_downtime'] == migrate_replies['active']['expected-downtime']
    assert record['passes'] == ram['dirty-sync-count']
    assert record['dirty_page_rate'] == ram['dirty-pages-rate']
    assert record['postcopy'] is False
    assert record['downtime'] is None


def test_completed_has_downtime_and_full_progress(migrate_replies: Record) -> None:
    record = _migration.record_from_migrate(migrate_replies['completed'], 'm')
    assert record is not None
    assert record['downtime'] == migrate_replies['completed']['downtime']
    assert record['progress']['percent'] == 100.0
    assert record['postcopy'] is True, 'this recording switched to post-copy'
    assert record['error'] is None


def test_failed_keeps_qemus_words(migrate_replies: Record) -> None:
    record = _migration.record_from_migrate(migrate_replies['failed'], 'm')
    assert record is not None
    assert record['error'] == "Failed to connect to '127.0.0.1:9': Connection refused"


def test_unknown_future_status_counts_as_running() -> None:
    record = _migration.record_from_migrate({'status': 'some-new-phase'}, 'm')
    assert record is not None and record['status'] == 'running'
    assert record['progress'] == {'current': None, 'total': None, 'percent': None,
                                  'rate': None, 'remaining': None}


# -- completion policies -----------------------------------------------------------------------

def active(passes: int = 1, raw: str = 'active') -> Record:
    return {'raw_status': raw, 'passes': passes}


@pytest.mark.parametrize(('params', 'applied', 'elapsed', 'record', 'action'), [
    ({}, [], 1e6, active(), None),
    ({'completion_timeout': 5.0, 'completion_action': 'cancel'}, [], 4.9, active(), None),
    ({'completion_timeout': 5.0, 'completion_action': 'cancel'}, [], 5.0, active(), 'cancel'),
    ({'completion_timeout': 5.0, 'completion_action': 'pause'}, [], 9.0, active(), 'pause'),
    ({'completion_timeout': 5.0, 'completion_action': 'pause'}, ['pause'], 9.0, active(), None),
    ({'completion_timeout': 5.0}, [], 9.0, active(), 'cancel'),
    ({'postcopy_after_passes': 3}, [], 0.0, active(passes=2), None),
    ({'postcopy_after_passes': 3}, [], 0.0, active(passes=3), 'postcopy'),
    ({'postcopy_after_passes': 3}, ['postcopy'], 0.0, active(passes=9), None),
    ({'completion_timeout': 1.0, 'completion_action': 'postcopy'}, [], 2.0,
     active(raw='postcopy-active'), None),
    ({'completion_timeout': 1.0}, [], 2.0, active(raw='completed'), None),
    ({'completion_timeout': 1.0}, [], 2.0, active(raw='cancelling'), None),
    ({'completion_timeout': 1.0}, [], 2.0, active(raw='setup'), 'cancel'),
    ({'completion_timeout': 1.0, 'completion_action': 'pause'}, [], 2.0, active(raw='setup'),
     None),
    ({'completion_timeout': 1.0, 'completion_action': 'postcopy'}, [], 2.0, active(raw='setup'),
     None),
    ({'postcopy_after_passes': 0}, [], 0.0, active(passes=0, raw='setup'), None),
])
def test_due_action(params: Record, applied: list[str], elapsed: float, record: Record,
                    action: str | None) -> None:
    assert _migration.due_action(record, params, applied, elapsed) == action


# -- which ledger entry owns QEMU's migration ---------------------------------------------------

def entry(name: str, started_at: float, state: str = 'started', kind: str = 'migration') -> Record:
    return {'name': name, 'type': kind, 'started_at': started_at, 'state': state}


def test_the_newest_migration_owns_query_migrate() -> None:
    entries = [entry('old', 1.0), entry('new', 2.0), entry('b', 3.0, kind='backup')]
    assert _migration.owner(entries) == 'new'


def test_a_dismissed_newest_migration_owns_nothing() -> None:
    assert _migration.owner([entry('old', 1.0), entry('new', 2.0, 'dismissed')]) is None


def test_no_migration_no_owner() -> None:
    assert _migration.owner([entry('b', 3.0, kind='backup')]) is None
    assert _migration.owner([]) is None
