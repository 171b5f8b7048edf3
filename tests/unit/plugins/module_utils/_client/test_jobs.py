# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_client/jobs.py: the idempotency contract over a fake VM."""

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
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.control import (
    JobDriver,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.reads import Result
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import (
    BackendError,
    InvalidArgument,
    JobConflict,
    JobFailed,
    JobNotFound,
    JobStateError,
    JobTimeout,
    MonitorBusy,
    TransportError,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    records as _model,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import nodes as _nodes
from ansible_collections.vmjobs.qemu.plugins.module_utils._waiter import Waiter
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils.fake_backend import (
    MINIMAL,
    SCOPE,
    CheckedLedger,
    FakeClock,
    FakeSession,
    FakeVM,
    block_job_params,
)

Record = dict[str, t.Any]
DAY = 86400.0


def params(name: str = 'b1', kind: str = 'backup', **options: t.Any) -> dict[str, t.Any]:
    """What the block_job module passes to ``JobClient.start``."""
    return block_job_params(name, kind, **dict(MINIMAL[kind], **options))


def start(client: JobClient, name: str = 'b1', kind: str = 'backup', wait: str | None = None,
          **options: t.Any) -> Result:
    return client.start(name, params(name, kind, **options), wait, 60.0)


def starts(vm: FakeVM) -> list[str]:
    return [call[1] for call in vm.calls if call[0] == 'start']


def cleanups(vm: FakeVM) -> list[Record]:
    return [call[1] for call in vm.calls if call[0] == 'cleanup']


def ledger_files(ledger: CheckedLedger) -> list[str]:
    if not os.path.isdir(ledger.directory):
        return []
    return sorted(f for f in os.listdir(ledger.directory) if f != '.lock')


def tombstone(ledger: CheckedLedger, name: str, kind: str = 'backup', outcome: str = 'succeeded',
              error: str | None = None, **options: t.Any) -> Record:
    """The ledger record ``job state=absent`` leaves behind."""
    return ledger.put({
        'name': name, 'type': kind, 'params': _starter.identity(params(name, kind, **options)),
        'state': 'dismissed', 'attached': [], 'kept_nodes': [],
        'last': {'status': 'concluded', 'outcome': outcome, 'error': error,
                 'progress': {'current': 64, 'total': 64, 'percent': 100.0}, 'speed': 0},
    })


# -- pure helpers ------------------------------------------------------------------------------------

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
    ledger.put({'name': 'lost1', 'type': 'stream', 'state': 'started', 'params': {}})

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
    ledger.put({'name': 'lost1', 'type': 'stream', 'state': 'started',
                'params': {'type': 'stream'}, 'last': {'status': 'running'}})
    record, entry = client.get('lost1')
    assert entry is not None
    assert (record['status'], record['lost'], record['dismissed']) == ('absent', True, False)


# -- starting ------------------------------------------------------------------------------------------

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
    return ledger.put({'name': name, 'type': kind,
                       'params': _starter.identity(params(name, kind)), 'state': 'starting',
                       'attached': [fmt_node, file_node], 'created_files': ['/srv/vm1/m.qcow2']})


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


# -- waiting -------------------------------------------------------------------------------------------

def test_wait_for_several_jobs(client: JobClient, vm: FakeVM, replies: dict[str, t.Any]) -> None:
    vm.load(replies['mirror_concluded'])
    start(client, 'b1')
    start(client, 'c1', 'create')
    result = client.wait(['b1', 'm1', 'c1'], 'concluded', 60)
    assert [r['name'] for r in result.records] == ['b1', 'm1', 'c1']
    assert all(r['outcome'] == 'succeeded' for r in result.records)
    assert result.changed is False


def test_wait_for_ready_of_a_backup_fails_at_once(client: JobClient, clock: FakeClock) -> None:
    start(client, 'b1')
    before = clock()
    with pytest.raises(JobStateError) as err:
        client.wait(['b1'], 'ready', 60)
    assert str(err.value) == ("job 'b1' (backup) is running 0.0% and cannot reach ready; "
                              "verbs allowed now: cancel, pause, resume, set-speed")
    assert err.value.record is not None and err.value.record['name'] == 'b1'
    assert clock() == before


def test_wait_for_pending_after_the_job_failed(client: JobClient, vm: FakeVM,
                                               replies: dict[str, t.Any]) -> None:
    vm.load(replies['backup_canceled_and_failed'])
    with pytest.raises(JobFailed, match="^job 'full1' failed: No space left on device$"):
        client.wait(['full1'], 'pending', 60)
    with pytest.raises(JobStateError, match=r"slow1' \(backup\) is concluded \(canceled: "
                                            r"Operation canceled\) and cannot reach pending; "
                                            r"verbs allowed now: dismiss"):
        client.wait(['slow1'], 'pending', 60, fail_on_error=False)


def test_job_failed_carries_qemus_error_text(client: JobClient, vm: FakeVM,
                                             replies: dict[str, t.Any]) -> None:
    vm.load(replies['backup_canceled_and_failed'])
    with pytest.raises(JobFailed) as err:
        client.wait(['slow1', 'full1'], 'concluded', 60)
    assert str(err.value) == "job 'full1' failed: No space left on device"
    assert err.value.job == 'full1'
    assert [(r['name'], r['outcome']) for r in err.value.records] == [('slow1', 'canceled'),
                                                                      ('full1', 'failed')]


def test_wait_without_fail_on_error_reports_the_failure(client: JobClient, vm: FakeVM,
                                                        replies: dict[str, t.Any]) -> None:
    vm.load(replies['backup_canceled_and_failed'])
    result = client.wait(['full1'], 'concluded', 60, fail_on_error=False)
    assert (result.record['outcome'], result.record['error']) == ('failed',
                                                                  'No space left on device')


def test_wait_for_an_unknown_job(client: JobClient) -> None:
    with pytest.raises(JobNotFound) as err:
        client.wait(['nope'], 'concluded', 60)
    assert str(err.value) == f"job 'nope' not found on {SCOPE}"
    assert err.value.job == 'nope'


def test_wait_for_an_unknown_job_to_be_absent(client: JobClient) -> None:
    result = client.wait(['nope'], 'absent', 60)
    assert result.record['status'] == 'absent'
    assert result.elapsed == 0.0


@pytest.mark.parametrize('name', ['../x', 'a/b'])
def test_wait_checks_names(client: JobClient, vm: FakeVM, name: str) -> None:
    with pytest.raises(InvalidArgument):
        client.wait(['b1', name], 'concluded', 60)
    assert vm.calls == []


def test_wait_for_a_lost_job(client: JobClient, ledger: CheckedLedger) -> None:
    ledger.put({'name': 'lost1', 'type': 'stream', 'state': 'started', 'params': {}})
    with pytest.raises(JobStateError, match="'lost1' \\(stream\\) is absent and cannot reach "
                                            "concluded; verbs allowed now: none"):
        client.wait(['lost1'], 'concluded', 60)


def test_a_timeout_carries_the_last_records(client: JobClient, vm: FakeVM,
                                            clock: FakeClock) -> None:
    start(client, 'b1')
    start(client, 'm1', 'mirror')
    vm.frozen.add('b1')
    with pytest.raises(JobTimeout) as err:
        client.wait(['m1', 'b1'], 'concluded', 5.0)
    error = err.value
    assert str(error).startswith("timed out after 5.0s waiting for job 'm1', job 'b1' to reach "
                                 "concluded; last seen: m1 ready 100.0%; b1 running 0.0%")
    assert error.job == 'm1'
    assert [(r['name'], r['status']) for r in error.records] == [('m1', 'ready'),
                                                                 ('b1', 'running')]
    assert 5.0 <= error.elapsed < 6.0
    assert error.result() == {'elapsed': round(error.elapsed, 3), 'timed_out': True}


def test_timeout_zero_queries_once(client: JobClient, vm: FakeVM) -> None:
    start(client, 'b1')
    sessions = vm.calls.count(('session',))
    with pytest.raises(JobTimeout):
        client.wait(['b1'], 'concluded', 0)
    assert vm.calls.count(('session',)) == sessions + 1


def test_a_busy_monitor_is_waited_for(client: JobClient, vm: FakeVM, clock: FakeClock) -> None:
    start(client, 'b1')
    vm.busy = 2
    result = client.wait(['b1'], 'concluded', 60)
    assert result.record['outcome'] == 'succeeded'
    assert clock.slept[:2] == [0.02, 0.02]


def test_a_monitor_busy_until_the_deadline(client: JobClient, vm: FakeVM) -> None:
    start(client, 'b1')
    vm.busy = 100
    with pytest.raises(MonitorBusy, match='sent no greeting'):
        client.wait(['b1'], 'concluded', 12)


def test_waiting_remembers_the_status(client: JobClient, ledger: CheckedLedger) -> None:
    start(client, 'm1', 'mirror')
    client.wait(['m1'], 'ready', 60)
    entry = ledger.get('m1')
    assert entry is not None
    assert entry['last'] == {'status': 'ready', 'raw_status': 'ready', 'outcome': None,
                             'error': None,
                             'progress': {'current': 67108864, 'total': 67108864,
                                          'percent': 100.0},
                             'speed': 0}


def test_check_mode_waiting_writes_nothing(client: JobClient, check_client: JobClient,
                                           ledger: CheckedLedger) -> None:
    start(client, 'b1')
    entry = ledger.get('b1')
    check_client.wait(['b1'], 'concluded', 60)
    assert ledger.get('b1') == entry


@pytest.mark.parametrize('fail, outcome, error', [
    # QEMU emits JOB_STATUS_CHANGE(waiting), (pending), BLOCK_JOB_COMPLETED, (concluded),
    # (null) at once: the job is gone by the query the first event triggers.
    (None, 'succeeded', None),
    ('No space left on device', 'failed', 'No space left on device'),
])
def test_the_outcome_of_an_auto_dismissed_job_is_remembered(
        client: JobClient, vm: FakeVM, ledger: CheckedLedger, fail: str | None, outcome: str,
        error: str | None) -> None:
    if fail:
        vm.fail['b1'] = fail
    start(client, 'b1', auto_dismiss=True)
    result = client.wait(['b1'], 'concluded', 60, fail_on_error=False)
    assert vm.status('b1') == 'absent'
    for record in (result.record, client.get('b1')[0]):
        assert (record['status'], record['outcome'], record['error']) == (
            'concluded', outcome, error)
        assert (record['lost'], record['dismissed']) == (False, False)


def test_an_auto_dismissed_job_that_vanished_unwatched_is_lost(
        client: JobClient, vm: FakeVM, ledger: CheckedLedger) -> None:
    # The job concluded and vanished while no client was connected: QEMU's events are gone,
    # nothing knows the outcome. (Questionable: the message says it "cannot reach
    # concluded" although it did conclude.)
    start(client, 'b1', auto_dismiss=True)
    for _step in range(4):
        vm.step()
    assert vm.status('b1') == 'absent'
    with pytest.raises(JobStateError, match="'b1' \\(backup\\) is absent and cannot reach "
                                            "concluded"):
        client.wait(['b1'], 'concluded', 60)
    record = client.get('b1')[0]
    assert (record['status'], record['lost']) == ('absent', True)


@pytest.mark.parametrize('event, data, outcome', [
    ('BLOCK_JOB_COMPLETED', {'device': 'b1', 'len': 10, 'offset': 10}, 'succeeded'),
    ('BLOCK_JOB_COMPLETED', {'device': 'b1', 'error': 'Input/output error'}, 'failed'),
    ('BLOCK_JOB_CANCELLED', {'device': 'b1', 'len': 10, 'offset': 3}, 'canceled'),
])
def test_note_event(client: JobClient, ledger: CheckedLedger, event: str, data: Record,
                    outcome: str) -> None:
    ledger.put({'name': 'b1', 'type': 'backup', 'state': 'started', 'last': {'status': 'running'}})
    client.observer.note_event({'event': event, 'data': data}, ['b1'])
    entry = ledger.get('b1')
    assert entry is not None
    assert entry['last']['outcome'] == outcome
    assert entry['last']['error'] == data.get('error')
    assert entry['last']['status'] == 'concluded'


@pytest.mark.parametrize('event', [
    {'event': 'JOB_STATUS_CHANGE', 'data': {'id': 'b1', 'status': 'concluded'}},
    {'event': 'BLOCK_JOB_COMPLETED', 'data': {'device': 'other'}},
    {'event': 'BLOCK_JOB_READY', 'data': {'device': 'b1'}},
    {'event': 'BLOCK_JOB_COMPLETED'},
])
def test_note_event_ignores_other_events(client: JobClient, ledger: CheckedLedger,
                                         event: Record) -> None:
    entry = ledger.put({'name': 'b1', 'type': 'backup', 'state': 'started'})
    client.observer.note_event(event, ['b1'])
    assert ledger.get('b1') == entry


def test_note_event_keeps_a_known_outcome(client: JobClient, ledger: CheckedLedger) -> None:
    entry = ledger.put({'name': 'b1', 'type': 'backup', 'last': {'outcome': 'failed'}})
    client.observer.note_event({'event': 'BLOCK_JOB_CANCELLED', 'data': {'device': 'b1'}}, ['b1'])
    assert ledger.get('b1') == entry


def test_note_event_without_an_entry(client: JobClient, ledger: CheckedLedger) -> None:
    client.observer.note_event({'event': 'BLOCK_JOB_COMPLETED', 'data': {'device': 'b1'}}, ['b1'])
    assert ledger.all() == []


def test_recorded_events_are_understood(client: JobClient, ledger: CheckedLedger,
                                        nodes_replies: dict[str, t.Any]) -> None:
    for name in ('m1', 'b1'):
        ledger.put({'name': name, 'type': 'x', 'state': 'started'})
    for event in nodes_replies['events']:
        client.observer.note_event(event, ['m1', 'b1'])
    # The first m1 completed, the second was canceled: the first outcome seen stays.
    assert [ledger.get(n)['last']['outcome'] for n in ('m1', 'b1')] == ['succeeded', 'succeeded']


def test_wait_for_a_dismissed_job_to_be_absent(client: JobClient, ledger: CheckedLedger) -> None:
    tombstone(ledger, 'b1')
    assert client.wait(['b1'], 'absent', 5.0).record['dismissed'] is True


def test_a_start_whose_wait_times_out_still_changed(client: JobClient, vm: FakeVM) -> None:
    vm.frozen.add('b1')
    with pytest.raises(JobTimeout) as err:
        start(client, 'b1', wait='concluded')
    assert err.value.changed is True, 'the job was started: the failed task reports changed'
    vm.frozen.clear()
    with pytest.raises(JobTimeout) as again:
        client.start('b1', params('b1'), 'concluded', 0.0)
    assert again.value.changed is False


def test_a_vm_lost_mid_wait_keeps_the_last_progress(client: JobClient, vm: FakeVM,
                                                    ledger: CheckedLedger,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    start(client, 'b1')
    vm.frozen.add('b1')
    seen = client.get('b1')[0]

    def killed(self: FakeSession, timeout: float) -> None:
        raise TransportError('QMP connection to /run/vm1/qmp.sock lost while waiting: '
                             'QEMU closed the connection')

    monkeypatch.setattr(FakeSession, 'wait_event', killed)
    with pytest.raises(TransportError) as err:
        client.wait(['b1'], 'concluded', 60)
    assert str(err.value) == (
        "job 'b1': lost the VM while waiting for concluded (last seen: b1 running 0.0%): QMP "
        "connection to /run/vm1/qmp.sock lost while waiting: QEMU closed the connection")
    assert err.value.job == 'b1'
    entry = ledger.get('b1')
    assert entry is not None
    assert entry['last'] == _observer.compact(seen)
    assert _model.record_from_ledger(entry)['lost'] is True


def test_check_mode_keeps_nothing_when_the_vm_is_lost(client: JobClient, check_client: JobClient,
                                                      vm: FakeVM, ledger: CheckedLedger,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    start(client, 'b1')
    vm.frozen.add('b1')
    before = ledger.get('b1')

    def killed(self: FakeSession, timeout: float) -> None:
        raise TransportError('lost')

    monkeypatch.setattr(FakeSession, 'wait_event', killed)
    with pytest.raises(TransportError):
        check_client.wait(['b1'], 'concluded', 60)
    assert ledger.get('b1') == before


def test_the_monitor_is_never_awaited_under_the_ledger_lock(client: JobClient, vm: FakeVM,
                                                            ledger: CheckedLedger,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """A wait writes the ledger while it holds the monitor; a task that held the ledger's
    lock while it waited for the monitor would wait for it until connect_timeout."""
    opened = vm.session
    seen = []

    def session() -> t.ContextManager[FakeSession]:
        seen.append(ledger.held)
        return opened()

    monkeypatch.setattr(vm, 'session', session)
    start(client, 'b1', wait='concluded')
    start(client, 'b1', wait='concluded')
    start(client, 'b2')
    driver = JobDriver(client)
    driver.run('b1', 'absent')
    driver.run('b1', 'absent', forget=True)
    ledger.put(dict(ledger.get('b2') or {}, state='started'))
    vm.jobs.pop('b2', None)
    driver.run('b2', 'absent', forget=True)
    assert seen and not any(seen), seen


def test_another_jobs_events_do_not_wake_a_wait(client: JobClient, vm: FakeVM,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    start(client, 'b1')
    vm.frozen.add('b1')
    start(client, 'b2')
    queries = []
    snapshot = client.reads.snapshot

    def counted(session: t.Any) -> t.Any:
        queries.append(1)
        return snapshot(session)

    monkeypatch.setattr(client.reads, 'snapshot', counted)
    with pytest.raises(JobTimeout):
        client.wait(['b1'], 'concluded', 0.4)
    assert vm.status('b2') == 'concluded', 'b2 went through its statuses meanwhile'
    assert len(queries) == 2, 'one query at the start, one when the time was up'
