# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_client/starter.py: finding or starting a job through JobClient."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._client import (
    starter as _starter,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import (
    BackendError,
    InvalidArgument,
    JobConflict,
    JobFailed,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model.shapes import (
    ledger_entry,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import nodes as _nodes
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils._client.helpers import (
    DAY,
    Record,
    cleanups,
    ledger_files,
    params,
    start,
    starts,
    tombstone,
)
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils.fake_backend import (
    MINIMAL,
    SCOPE,
    CheckedLedger,
    FakeClock,
    FakeVM,
)


@pytest.mark.parametrize('kind', list(MINIMAL))
def test_start(client: JobClient, vm: FakeVM, ledger: CheckedLedger, kind: str) -> None:
    given = params('j1', kind)
    result = client.start('j1', given)
    assert result.changed is True
    assert result.elapsed is None
    assert (result.record['name'], result.record['type']) == ('j1', kind)
    assert result.record['status'] == 'running'
    assert starts(vm) == ['j1']
    assert vm.status('j1') == 'running'
    entry = ledger.get('j1')
    assert entry is not None
    assert entry['state'] == 'started'
    assert entry['type'] == kind
    assert entry['scope'] == SCOPE
    assert entry['params'] == _starter.identity(given)


@pytest.mark.parametrize('kind, facts', [
    ('mirror', {'attached': list(_nodes.target_node_names('j1')),
                'created_files': ['/srv/vm1/m.qcow2']}),
    ('backup', {'attached': list(_nodes.target_node_names('j1')),
                'created_files': ['/srv/vm1/b.qcow2']}),
    ('create', {'attached': [], 'created_files': ['/srv/vm1/c.qcow2']}),
    ('commit', {'attached': [], 'active': True}),
    ('stream', {'attached': []}),
])
def test_start_notes_what_it_leaves_behind(client: JobClient, ledger: CheckedLedger, kind: str,
                                           facts: Record) -> None:
    start(client, 'j1', kind)
    entry = ledger.get('j1')
    assert entry is not None
    assert {key: entry.get(key) for key in facts} == facts


def test_start_twice_changes_nothing(client: JobClient, vm: FakeVM,
                                     ledger: CheckedLedger) -> None:
    first = start(client, 'b1')
    entry = ledger.get('b1')
    second = start(client, 'b1')
    assert (first.changed, second.changed) == (True, False)
    assert starts(vm) == ['b1']
    assert second.record['name'] == 'b1'
    assert ledger.get('b1') == entry


@pytest.mark.parametrize('tunable', [{'speed': 1048576}, {'reuse_target': True}])
def test_tunables_do_not_make_another_job(client: JobClient, vm: FakeVM,
                                          tunable: Record) -> None:
    start(client, 'b1')
    assert start(client, 'b1', **tunable).changed is False
    assert starts(vm) == ['b1']


def test_same_name_different_type_is_a_conflict(client: JobClient, vm: FakeVM,
                                                ledger: CheckedLedger) -> None:
    start(client, 'j1', 'backup')
    entry = ledger.get('j1')
    with pytest.raises(JobConflict) as err:
        start(client, 'j1', 'mirror')
    message = str(err.value)
    assert message.startswith("job 'j1' already exists as a different job (backup, running")
    assert "type='backup' (requested 'mirror')" in message
    assert "target='/srv/vm1/b.qcow2' (requested '/srv/vm1/m.qcow2')" in message
    assert 'state=absent forget=true' in message
    assert err.value.job == 'j1'
    assert starts(vm) == ['j1']
    assert ledger.get('j1') == entry


@pytest.mark.parametrize('change, shown', [
    ({'device': 'disk1'}, "device='disk0' (requested 'disk1')"),
    ({'sync': 'top'}, "sync=None (requested 'top')"),
    ({'auto_dismiss': True}, 'auto_dismiss=False (requested True)'),
    ({'target': '/srv/vm1/other.qcow2'}, "target='/srv/vm1/b.qcow2'"),
])
def test_same_name_different_parameters_is_a_conflict(client: JobClient, change: Record,
                                                      shown: str) -> None:
    start(client, 'b1')
    with pytest.raises(JobConflict, match='already exists as a different job') as err:
        start(client, 'b1', **change)
    assert shown in str(err.value)


def test_a_job_started_elsewhere_counts_by_type(client: JobClient, vm: FakeVM,
                                                replies: dict[str, t.Any]) -> None:
    vm.load(replies['mirror_running'])
    assert start(client, 'm1', 'mirror').changed is False
    with pytest.raises(JobConflict) as err:
        start(client, 'm1', 'backup')
    assert "(mirror, running 25.0%): type='mirror' (requested 'backup')" in str(err.value)
    assert starts(vm) == []


@pytest.mark.parametrize('outcome, error', [('succeeded', None),
                                            ('failed', 'No space left on device')])
def test_start_after_a_dismissed_tombstone_changes_nothing(
        client: JobClient, vm: FakeVM, ledger: CheckedLedger, outcome: str,
        error: str | None) -> None:
    tombstone(ledger, 'b1', outcome=outcome, error=error)
    result = start(client, 'b1')
    assert result.changed is False
    assert starts(vm) == []
    record = result.record
    assert (record['status'], record['outcome'], record['error']) == ('concluded', outcome, error)
    assert record['dismissed'] is True


def test_start_after_a_tombstone_waits_for_nothing(client: JobClient, vm: FakeVM,
                                                   ledger: CheckedLedger,
                                                   clock: FakeClock) -> None:
    tombstone(ledger, 'b1')
    result = start(client, 'b1', wait='concluded')
    assert (result.changed, result.record['outcome'], result.elapsed) == (
        False, 'succeeded', 0.0)


def test_a_tombstone_with_other_parameters_is_a_conflict(client: JobClient,
                                                         ledger: CheckedLedger) -> None:
    tombstone(ledger, 'b1', 'backup')
    with pytest.raises(JobConflict, match=r'\(backup, concluded \(succeeded\)\)'):
        start(client, 'b1', 'mirror')


def test_forgetting_the_tombstone_releases_the_name(client: JobClient, vm: FakeVM,
                                                    ledger: CheckedLedger) -> None:
    tombstone(ledger, 'b1')
    ledger.delete('b1')
    assert start(client, 'b1').changed is True
    assert starts(vm) == ['b1']


def test_start_prunes_old_tombstones(client: JobClient, ledger: CheckedLedger,
                                     clock: FakeClock) -> None:
    tombstone(ledger, 'old')
    clock.advance(91 * DAY)
    tombstone(ledger, 'young')
    start(client, 'b1')
    assert [e['name'] for e in ledger.all()] == ['b1', 'young']


def test_an_expired_tombstone_releases_its_name(client: JobClient, vm: FakeVM,
                                                ledger: CheckedLedger, clock: FakeClock) -> None:
    tombstone(ledger, 'b1')
    clock.advance(91 * DAY)
    assert start(client, 'b1').changed is True
    assert starts(vm) == ['b1']


def test_check_mode_start_changes_nothing(check_client: JobClient, vm: FakeVM,
                                          ledger: CheckedLedger, clock: FakeClock) -> None:
    result = start(check_client, 'm1', 'mirror', wait='ready')
    assert result.changed is True
    assert (result.record['name'], result.record['type'], result.record['status']) == (
        'm1', 'mirror', 'absent')
    assert starts(vm) == [] and vm.jobs == {}
    assert ledger_files(ledger) == []
    assert clock.slept == []


def test_check_mode_start_of_an_existing_job(client: JobClient, check_client: JobClient,
                                             vm: FakeVM, ledger: CheckedLedger) -> None:
    start(client, 'b1')
    entry = ledger.get('b1')
    assert start(check_client, 'b1', wait='concluded').changed is False
    with pytest.raises(JobConflict):
        start(check_client, 'b1', 'mirror')
    assert starts(vm) == ['b1']
    assert vm.status('b1') == 'running'
    assert ledger.get('b1') == entry


def test_check_mode_start_does_not_prune(check_client: JobClient, ledger: CheckedLedger,
                                         clock: FakeClock) -> None:
    tombstone(ledger, 'old')
    clock.advance(91 * DAY)
    start(check_client, 'b1')
    assert [e['name'] for e in ledger.all()] == ['old']


def crashed_start(ledger: CheckedLedger, name: str = 'm1', kind: str = 'mirror') -> Record:
    """The ledger entry of a start that died before QEMU had the job (or before 'started')."""
    fmt_node, file_node = _nodes.target_node_names(name)
    return ledger.put(ledger_entry(name, kind, _starter.identity(params(name, kind)), 0.0,
                                   attached=[fmt_node, file_node],
                                   created_files=['/srv/vm1/m.qcow2']))


def test_a_crashed_start_is_cleaned_up_and_the_job_started(client: JobClient, vm: FakeVM,
                                                           ledger: CheckedLedger) -> None:
    crashed = crashed_start(ledger)
    result = start(client, 'm1', 'mirror')
    assert result.changed is True
    assert cleanups(vm) == [crashed]
    assert starts(vm) == ['m1']
    entry = ledger.get('m1')
    assert entry is not None and entry['state'] == 'started'
    assert [c[0] for c in vm.calls if c[0] != 'session'] == ['cleanup', 'start']


def test_a_crashed_start_of_another_type_is_no_conflict(client: JobClient, vm: FakeVM,
                                                        ledger: CheckedLedger) -> None:
    crashed_start(ledger, 'j1', 'mirror')
    assert start(client, 'j1', 'backup').changed is True
    assert starts(vm) == ['j1']


def test_check_mode_leaves_a_crashed_start_alone(check_client: JobClient, vm: FakeVM,
                                                 ledger: CheckedLedger) -> None:
    crashed = crashed_start(ledger)
    assert start(check_client, 'm1', 'mirror').changed is True
    assert cleanups(vm) == [] and starts(vm) == []
    assert ledger.get('m1') == crashed


def test_a_start_that_died_after_qemu_took_the_job_is_marked_started(
        client: JobClient, vm: FakeVM, ledger: CheckedLedger) -> None:
    crashed_start(ledger)
    vm.start('m1', params('m1', 'mirror'), lambda **facts: None)
    assert start(client, 'm1', 'mirror').changed is False
    assert cleanups(vm) == []
    entry = ledger.get('m1')
    assert entry is not None and entry['state'] == 'started'


def test_a_refused_start_leaves_nothing_behind(client: JobClient, vm: FakeVM,
                                               ledger: CheckedLedger,
                                               replies: dict[str, t.Any]) -> None:
    desc = replies['errors']['block-stream unknown device']['desc']
    vm.start_error = BackendError('blockdev-mirror', 'GenericError', desc)
    with pytest.raises(BackendError) as err:
        start(client, 'm1', 'mirror')
    assert str(err.value) == ("job 'm1': blockdev-mirror failed: GenericError: Cannot find "
                              "device='nonexist' nor node-name='nonexist'")
    assert (err.value.job, err.value.error_class, err.value.desc) == ('m1', 'GenericError', desc)
    assert isinstance(err.value.__cause__, BackendError)
    [entry] = cleanups(vm)
    assert entry['attached'] == list(_nodes.target_node_names('m1'))
    assert entry['state'] == 'starting'
    assert ledger.get('m1') is None
    assert vm.jobs == {}


def test_an_invalid_argument_from_the_start_is_raised_as_it_is(client: JobClient, vm: FakeVM,
                                                               ledger: CheckedLedger) -> None:
    refused = InvalidArgument("job 'b1': target /srv/vm1/b.qcow2 already exists", 'b1')
    vm.start_error = refused
    with pytest.raises(InvalidArgument) as err:
        start(client, 'b1')
    assert err.value is refused
    assert len(cleanups(vm)) == 1
    assert ledger.get('b1') is None


def test_start_and_wait_for_the_outcome(client: JobClient, ledger: CheckedLedger) -> None:
    result = start(client, 'b1', wait='concluded')
    assert result.changed is True
    assert (result.record['status'], result.record['outcome']) == ('concluded', 'succeeded')
    assert result.elapsed is not None and result.elapsed > 0
    entry = ledger.get('b1')
    assert entry is not None
    assert (entry['last']['status'], entry['last']['outcome']) == ('concluded', 'succeeded')


def test_start_a_mirror_and_wait_until_ready(client: JobClient) -> None:
    result = start(client, 'm1', 'mirror', wait='ready')
    assert (result.record['status'], result.record['ready']) == ('ready', True)


def test_start_again_and_wait(client: JobClient, vm: FakeVM) -> None:
    # Waiting after finding the job must not nest monitor sessions or ledger locks.
    start(client, 'b1')
    result = start(client, 'b1', wait='concluded')
    assert (result.changed, result.record['outcome']) == (True, 'succeeded'), 'closed the target'
    again = start(client, 'b1', wait='concluded')
    assert (again.changed, again.record['target_state']) == (False, 'closed')
    assert starts(vm) == ['b1']


def test_start_and_wait_for_a_job_that_fails_at_once(client: JobClient, vm: FakeVM) -> None:
    vm.fail['b1'] = 'No space left on device'
    with pytest.raises(JobFailed) as err:
        start(client, 'b1', wait='concluded')
    assert str(err.value) == "job 'b1' failed: No space left on device"
    assert err.value.records[0]['outcome'] == 'failed'
    assert err.value.records[0]['target_state'] == 'removed'
    assert err.value.changed is True
