# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_client/reads.py (and the pure helpers): the read model through JobClient."""

from __future__ import annotations

import os
import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._client import (
    observer as _observer,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client import reads as _reads
from ansible_collections.vmjobs.qemu.plugins.module_utils._client import (
    starter as _starter,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.reads import Result
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import (
    InvalidArgument,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    records as _model,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model.shapes import (
    ledger_entry,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._waiter import Waiter
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils._client.helpers import (
    Record,
    start,
    tombstone,
)
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils.fake_backend import (
    CheckedLedger,
    FakeVM,
)


def test_identity_leaves_out_tunables_and_unset_options() -> None:
    assert _starter.identity({'type': 'backup', 'device': 'disk0', 'speed': 5,
                              'reuse_target': True, 'base': None, 'auto_dismiss': False}) == {
        'type': 'backup', 'device': 'disk0', 'auto_dismiss': False}


@pytest.mark.parametrize('old, new, expected', [
    ({'type': 'backup'}, {'type': 'backup'}, []),
    ({'type': 'backup'}, {'type': 'mirror'}, ["type='backup' (requested 'mirror')"]),
    ({'a': 1, 'b': 2}, {'b': 3, 'c': 4},
     ['a=1 (requested None)', 'b=2 (requested 3)', 'c=None (requested 4)']),
])
def test_differences(old: Record, new: Record, expected: list[str]) -> None:
    assert _starter.differences(old, new) == expected


def test_absent_record() -> None:
    record = _reads.absent_record('x')
    assert (record['name'], record['type'], record['status']) == ('x', None, 'absent')
    assert (record['outcome'], record['dismissed'], record['lost']) == (None, False, False)


def test_compact() -> None:
    record = {'name': 'b1', 'status': 'running', 'outcome': None, 'error': None,
              'progress': {'percent': 1.0}, 'speed': 5, 'busy': True}
    assert _observer.compact(record) == {'status': 'running', 'outcome': None, 'error': None,
                                         'progress': {'percent': 1.0}, 'speed': 5}


@pytest.mark.parametrize('record, text', [
    ({'status': 'running', 'progress': {'percent': 42.0}}, 'running 42.0%'),
    ({'status': 'running', 'progress': {'percent': None}}, 'running'),
    ({'status': 'created', 'progress': None}, 'created'),
    ({'status': 'concluded', 'outcome': 'succeeded', 'error': None,
      'progress': {'percent': 100.0}}, 'concluded (succeeded)'),
    ({'status': 'concluded', 'outcome': 'failed', 'error': 'No space left on device'},
     'concluded (failed: No space left on device)'),
    ({'status': 'absent'}, 'absent'),
])
def test_describe(record: Record, text: str) -> None:
    assert _reads.describe(record) == text


def test_result_record_is_the_first() -> None:
    assert Result(True, [{'name': 'a'}, {'name': 'b'}]).record == {'name': 'a'}


# -- reading -------------------------------------------------------------------------------------------

def test_constructor_does_no_io(vm: FakeVM, ledger: CheckedLedger) -> None:
    client = JobClient(vm, ledger)
    assert isinstance(client.waiter, Waiter)
    assert client.check_mode is False
    assert vm.calls == []
    assert not os.path.exists(ledger.root)


def test_get_an_unknown_job(client: JobClient, vm: FakeVM) -> None:
    record, entry = client.get('nope')
    assert entry is None
    assert record == _reads.absent_record('nope')


@pytest.mark.parametrize('name', ['../x', 'a/b', '.x', ''])
def test_get_checks_the_name_first(client: JobClient, vm: FakeVM, name: str) -> None:
    with pytest.raises(InvalidArgument):
        client.get(name)
    assert vm.calls == []


def test_get_a_job_started_elsewhere(client: JobClient, vm: FakeVM,
                                     replies: dict[str, t.Any]) -> None:
    vm.load(replies['mirror_running'])
    record, entry = client.get('m1')
    assert entry is None
    reply = replies['mirror_running']
    assert record == _model.record_from_qmp(reply['query-jobs'][0], reply['query-block-jobs'][0])


def test_get_a_job_started_here_has_its_parameters(client: JobClient) -> None:
    start(client, 'm1', 'mirror')
    record, entry = client.get('m1')
    assert entry is not None and entry['state'] == 'started'
    assert (record['device'], record['target']) == ('disk0', '/srv/vm1/m.qcow2')


def test_list(client: JobClient, vm: FakeVM, ledger: CheckedLedger,
              replies: dict[str, t.Any]) -> None:
    vm.load(replies['backup_canceled_and_failed'])
    start(client, 'm1', 'mirror')
    tombstone(ledger, 'a-old')
    ledger.put(ledger_entry('lost1', 'stream', {}, 0.0, state='started'))

    def listed(**filters: t.Any) -> list[str]:
        return [r['name'] for r in client.list(**filters)]

    assert listed() == ['full1', 'lost1', 'm1', 'slow1']
    assert listed(include_dismissed=True) == ['a-old', 'full1', 'lost1', 'm1', 'slow1']
    assert listed(names=['m1', 'slow1', 'nope']) == ['m1', 'slow1']
    assert listed(types=['backup']) == ['full1', 'slow1']
    assert listed(statuses=['concluded']) == ['full1', 'slow1']
    assert listed(statuses=['absent']) == ['lost1']
    assert listed(types=['backup'], statuses=['running']) == []
    assert listed(names=['a-old']) == []
    assert listed(names=['a-old'], include_dismissed=True) == ['a-old']


def test_a_job_that_vanished_is_lost(client: JobClient, ledger: CheckedLedger) -> None:
    ledger.put(ledger_entry('lost1', 'stream', {'type': 'stream'}, 0.0, state='started',
                            last={'status': 'running'}))
    record, entry = client.get('lost1')
    assert entry is not None
    assert (record['status'], record['lost'], record['dismissed']) == ('absent', True, False)
