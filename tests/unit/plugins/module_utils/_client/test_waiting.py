# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_client/waiting.py: waits through JobClient."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._client import (
    observer as _observer,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.control import (
    JobDriver,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import (
    InvalidArgument,
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
from ansible_collections.vmjobs.qemu.plugins.module_utils._model.shapes import (
    ledger_entry,
)
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils._client.helpers import (
    Record,
    params,
    start,
    tombstone,
)
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils.fake_backend import (
    SCOPE,
    CheckedLedger,
    FakeClock,
    FakeSession,
    FakeVM,
)


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
    ledger.put(ledger_entry('lost1', 'stream', {}, 0.0, state='started'))
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
    ledger.put(ledger_entry('b1', 'backup', {}, 0.0, state='started', last={'status': 'running'}))
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
    entry = ledger.put(ledger_entry('b1', 'backup', {}, 0.0, state='started'))
    client.observer.note_event(event, ['b1'])
    assert ledger.get('b1') == entry


def test_note_event_keeps_a_known_outcome(client: JobClient, ledger: CheckedLedger) -> None:
    entry = ledger.put(ledger_entry('b1', 'backup', {}, 0.0, state='started',
                                    last={'outcome': 'failed'}))
    client.observer.note_event({'event': 'BLOCK_JOB_CANCELLED', 'data': {'device': 'b1'}}, ['b1'])
    assert ledger.get('b1') == entry


def test_note_event_without_an_entry(client: JobClient, ledger: CheckedLedger) -> None:
    client.observer.note_event({'event': 'BLOCK_JOB_COMPLETED', 'data': {'device': 'b1'}}, ['b1'])
    assert ledger.all() == []


def test_recorded_events_are_understood(client: JobClient, ledger: CheckedLedger,
                                        nodes_replies: dict[str, t.Any]) -> None:
    for name in ('m1', 'b1'):
        ledger.put(ledger_entry(name, 'x', {}, 0.0, state='started'))
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
