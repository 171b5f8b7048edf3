# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_model/shapes.py: one factory, one declared shape."""

from __future__ import annotations

import json
import pathlib
import re

import pytest
import yaml
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt import (
    jobs as _libvirt_jobs,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    migration as _migration,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    records as _records,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    shapes as _shapes,
)
from ansible_collections.vmjobs.qemu.plugins.modules import block_job

FIXTURES = pathlib.Path(__file__).parents[3] / 'fixtures'
CORE = _shapes.JobRecord.__required_keys__


def test_the_factory_fills_every_core_key_with_a_quiet_default() -> None:
    record = _shapes.job_record('j1', 'backup')
    assert set(record) == CORE
    assert (record['status'], record['raw_status'], record['outcome'], record['live']) == (
        'absent', None, None, True)
    assert record['progress'] == {'current': None, 'total': None, 'percent': None}


def test_progress_works_out_the_percentage() -> None:
    assert _shapes.progress(1, 4, rate=7) == {'current': 1, 'total': 4, 'percent': 25.0,
                                              'rate': 7}


def test_the_documented_record_is_the_declared_one() -> None:
    documented = yaml.safe_load(block_job.RETURN)['job']['contains']
    assert set(documented) <= _shapes.KEYS
    assert CORE - {'busy', 'io_status'} <= set(documented)


def test_every_producer_builds_the_declared_shape() -> None:
    qmp = _records.record_from_qmp(
        {'id': 'j1', 'type': 'backup', 'status': 'running', 'current-progress': 1,
         'total-progress': 2},
        {'device': 'j1', 'speed': 0, 'auto-finalize': True, 'auto-dismiss': False,
         'busy': True, 'io-status': 'ok'})
    ledger = _records.record_from_ledger({'name': 'j1', 'type': 'backup', 'state': 'dismissed',
                                          'last': {'outcome': 'succeeded'}})
    group = _records.group_record('g', [qmp], {'type': 'backup', 'disks': [{'member': 'j1'}]})
    migrations = json.loads((FIXTURES / 'qemu-7.2-migrate.json').read_text())
    moved = [_migration.record_from_migrate(reply, 'm') for reply in migrations.values()]
    assert any(moved)
    libvirt = _libvirt_jobs.domain_record('d', {'type': 2, 'operation': 5})
    for record in [qmp, ledger, group, libvirt, *[m for m in moved if m is not None]]:
        assert CORE <= set(record) <= _shapes.KEYS, sorted(set(record) - _shapes.KEYS)


def test_a_new_ledger_entry_has_only_declared_keys() -> None:
    entry = _shapes.ledger_entry('b1', 'backup', {'type': 'backup'}, 1.0, attached=[])
    assert entry == {'name': 'b1', 'type': 'backup', 'state': 'starting',
                     'params': {'type': 'backup'}, 'started_at': 1.0, 'attached': []}
    with pytest.raises(KeyError, match='attachd'):
        _shapes.ledger_entry('b1', 'backup', {}, 1.0, attachd=[])


def test_the_documented_ledger_fields_are_the_declared_ones() -> None:
    table = (pathlib.Path(__file__).parents[5] / 'docs' / 'ledger.md').read_text()
    rows = [line.split('|') for line in table.splitlines() if line.startswith('| `')]
    documented: set[str] = set()
    for cells in rows:
        names = re.findall(r'`([a-z_]+)`', cells[1])
        if names and names[0] in _shapes.BACKEND_KEYS:  # a sub-record's fields
            fields = set(re.findall(r'`([a-z_]+)`', cells[2]))
            assert fields <= _shapes.BACKEND_KEYS[names[0]], fields
            documented |= fields
        else:
            documented |= set(names)
    assert len(documented) > 20 and documented - {'created_file'} <= _shapes.ENTRY_KEYS
    assert set().union(*_shapes.BACKEND_KEYS.values()) <= documented, 'every backend field'
