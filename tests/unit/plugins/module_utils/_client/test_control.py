# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_client/control.py: driving jobs over a fake VM."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._client import (
    control as _control,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client import reads as _reads
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.control import (
    JobDriver,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.reads import Result
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import (
    BackendError,
    JobFailed,
    JobNotFound,
    JobStateError,
    JobTimeout,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model.shapes import (
    ledger_entry,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import nodes as _nodes
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils.fake_backend import (
    MINIMAL,
    SCOPE,
    CheckedLedger,
    FakeClock,
    FakeVM,
    block_job_params,
)

Record = dict[str, t.Any]


def start(client: JobClient, name: str, kind: str = 'backup', **options: t.Any) -> Record:
    """Start a job as block_job would; it is running when this returns."""
    params = block_job_params(name, kind, **dict(MINIMAL[kind], **options))
    return client.start(name, params).record


def advance(vm: FakeVM, name: str, status: str) -> None:
    """Let the VM run until job ``name`` is in ``status`` (as time passes without a client)."""
    for _attempt in range(10):
        if vm.status(name) == status:
            return
        vm.step()
    raise AssertionError(f'{name} never became {status}; it is {vm.status(name)}')


def verbs(vm: FakeVM) -> list[tuple[str, str]]:
    return vm.verbs()


def no_wait(driver: JobDriver) -> JobDriver:
    return JobDriver(driver.client, wait=False, wait_timeout=driver.wait_timeout)


def test_states_are_the_modules_choices() -> None:
    for state in _control.STATES:
        assert callable(getattr(JobDriver, '_to_' + state))


# -- unknown jobs and speed ------------------------------------------------------------------------

def test_an_unknown_job_is_already_absent(driver: JobDriver, vm: FakeVM) -> None:
    result = driver.run('nope', 'absent', cancel=True, forget=True)
    assert result.changed is False
    assert result.record['status'] == 'absent'
    assert verbs(vm) == []


@pytest.mark.parametrize('state', ['completed', 'finalized', 'paused', 'running', 'canceled',
                                   None])
def test_an_unknown_job_is_not_found(driver: JobDriver, state: str | None) -> None:
    with pytest.raises(JobNotFound) as err:
        driver.run('nope', state, speed=None if state else 5)
    assert str(err.value) == f"job 'nope' not found on {SCOPE}"


def test_speed(driver: JobDriver, vm: FakeVM, client: JobClient) -> None:
    start(client, 'b1')
    result = driver.run('b1', speed=1048576)
    assert result.changed is True
    assert verbs(vm) == [('b1', 'set-speed')]
    assert vm.calls[-2] == ('verb', 'b1', 'set-speed', {'speed': 1048576})
    assert result.record['speed'] == 1048576
    assert driver.run('b1', speed=1048576).changed is False
    assert verbs(vm) == [('b1', 'set-speed')]


def test_speed_in_check_mode(check_driver: JobDriver, client: JobClient, vm: FakeVM) -> None:
    start(client, 'b1')
    assert check_driver.run('b1', speed=5).changed is True
    assert verbs(vm) == []
    assert vm.block_jobs['b1']['speed'] == 0


def test_copy_mode_of_a_running_mirror(driver: JobDriver, vm: FakeVM, client: JobClient) -> None:
    start(client, 'm1', 'mirror')
    result = driver.run('m1', copy_mode='write-blocking')
    assert result.changed is True and result.record['copy_mode'] == 'write-blocking'
    assert ('verb', 'm1', 'change', {'copy_mode': 'write-blocking'}) in vm.calls
    assert vm.block_jobs['m1']['copy-mode'] == 'write-blocking'
    again = driver.run('m1', copy_mode='write-blocking')
    assert again.changed is False
    assert [c for c in vm.calls if c[:3] == ('verb', 'm1', 'change')] == [
        ('verb', 'm1', 'change', {'copy_mode': 'write-blocking'})]
    with pytest.raises(JobStateError, match='from background to write-blocking only'):
        driver.run('m1', copy_mode='background')


def test_copy_mode_in_check_mode(check_driver: JobDriver, client: JobClient, vm: FakeVM) -> None:
    start(client, 'm1', 'mirror')
    assert check_driver.run('m1', copy_mode='write-blocking').changed is True
    assert 'copy-mode' not in vm.block_jobs['m1']


@pytest.mark.parametrize('kind, message', [('backup', 'only a mirror has a copy mode')])
def test_copy_mode_is_a_mirrors(driver: JobDriver, client: JobClient, kind: str,
                                message: str) -> None:
    start(client, 'j1', kind)
    with pytest.raises(JobStateError, match=message):
        driver.run('j1', copy_mode='write-blocking')


def test_speed_of_a_concluded_job(driver: JobDriver, client: JobClient, vm: FakeVM) -> None:
    start(client, 'b1')
    advance(vm, 'b1', 'concluded')
    with pytest.raises(JobStateError) as err:
        driver.run('b1', speed=5)
    assert str(err.value) == ("cannot change the speed of job 'b1' (backup): it is concluded "
                              "(succeeded); verbs allowed now: dismiss")
    assert err.value.records == [err.value.record]
    assert verbs(vm) == []


def test_speed_of_a_job_that_is_no_block_job(driver: JobDriver, client: JobClient, vm: FakeVM,
                                             nodes_replies: dict[str, t.Any]) -> None:
    start(client, 'c1', 'create')
    with pytest.raises(BackendError) as err:
        driver.run('c1', speed=1)
    assert err.value.desc == nodes_replies['errors']['block-job-set-speed create']['desc']
    assert err.value.error_class == 'DeviceNotActive'


def test_speed_and_state(driver: JobDriver, client: JobClient, vm: FakeVM) -> None:
    start(client, 'b1')
    result = driver.run('b1', 'paused', speed=7)
    assert result.changed is True
    assert verbs(vm) == [('b1', 'set-speed'), ('b1', 'pause')]
    assert result.record['status'] == 'paused'


# -- completed ----------------------------------------------------------------------------------------

@pytest.mark.parametrize('kind, options', [
    ('backup', {}), ('stream', {}), ('create', {}), ('commit', {'top': 'mid'}),
])
def test_complete_a_job_that_never_becomes_ready_fails_at_once(
        driver: JobDriver, client: JobClient, vm: FakeVM, clock: FakeClock, kind: str,
        options: Record) -> None:
    start(client, 'j1', kind, **options)
    before = clock()
    with pytest.raises(JobStateError) as err:
        driver.run('j1', 'completed')
    assert str(err.value).startswith(f"job 'j1' ({kind}) is running 0.0%: only mirror and "
                                     "active commit jobs can be completed; verbs allowed now: ")
    assert str(err.value).endswith('cancel, pause, resume, set-speed')
    assert verbs(vm) == []
    assert clock() == before


def test_complete_a_concluded_backup_names_its_verbs(driver: JobDriver, client: JobClient,
                                                     vm: FakeVM) -> None:
    start(client, 'b1')
    advance(vm, 'b1', 'concluded')
    with pytest.raises(JobStateError, match='verbs allowed now: dismiss$'):
        driver.run('b1', 'completed')


@pytest.mark.parametrize('kind, options', [('mirror', {}), ('commit', {})])
def test_complete_waits_for_ready_then_completes(driver: JobDriver, client: JobClient,
                                                 vm: FakeVM, kind: str, options: Record) -> None:
    start(client, 'j1', kind, **options)
    result = driver.run('j1', 'completed')
    assert result.changed is True
    assert verbs(vm) == [('j1', 'complete')]
    assert result.record['status'] in ('waiting', 'pending', 'concluded')
    advance(vm, 'j1', 'concluded')
    vm.kept = list(_nodes.target_node_names('j1')) if kind == 'mirror' else []  # pivoted to it
    again = driver.run('j1', 'completed')
    assert again.changed is False
    assert again.record['outcome'] == 'succeeded'
    assert again.record.get('target_state') == ('in_use' if kind == 'mirror' else None)
    assert verbs(vm) == [('j1', 'complete')]


def test_complete_a_ready_mirror(driver: JobDriver, client: JobClient, vm: FakeVM,
                                 clock: FakeClock) -> None:
    start(client, 'm1', 'mirror')
    advance(vm, 'm1', 'ready')
    result = no_wait(driver).run('m1', 'completed')
    assert result.changed is True
    assert verbs(vm) == [('m1', 'complete')]
    assert clock.slept == []


def test_complete_a_recorded_ready_mirror(driver: JobDriver, vm: FakeVM,
                                          replies: dict[str, t.Any]) -> None:
    vm.load(replies['mirror_ready'])
    result = driver.run('m1', 'completed')
    assert result.changed is True
    assert verbs(vm) == [('m1', 'complete')]
    assert result.record['status'] == 'waiting'


@pytest.mark.parametrize('status', ['waiting', 'pending'])
def test_complete_a_mirror_already_completing(driver: JobDriver, client: JobClient, vm: FakeVM,
                                              status: str) -> None:
    start(client, 'm1', 'mirror', auto_finalize=False)
    advance(vm, 'm1', 'ready')
    vm.apply('m1', 'complete', {})
    advance(vm, 'm1', status)
    assert driver.run('m1', 'completed').changed is False
    assert verbs(vm) == []


def test_complete_a_canceled_mirror_fails(driver: JobDriver, client: JobClient, vm: FakeVM,
                                          nodes_replies: dict[str, t.Any]) -> None:
    vm.load(nodes_replies['jobs']['mirror_canceled_when_ready'])
    with pytest.raises(JobStateError) as err:
        driver.run('m1', 'completed')
    assert str(err.value) == ("job 'm1' (mirror) is concluded (canceled: Operation canceled): "
                              "it cannot be completed; verbs allowed now: dismiss")


def test_complete_a_mirror_that_fails_before_ready(driver: JobDriver, client: JobClient,
                                                   vm: FakeVM) -> None:
    vm.fail['m1'] = 'Input/output error'
    start(client, 'm1', 'mirror')
    with pytest.raises(JobFailed, match="^job 'm1' failed: Input/output error$"):
        driver.run('m1', 'completed')
    assert verbs(vm) == []


def test_complete_a_stuck_mirror_times_out(driver: JobDriver, client: JobClient,
                                           vm: FakeVM) -> None:
    start(client, 'm1', 'mirror')
    vm.frozen.add('m1')
    with pytest.raises(JobTimeout, match="waiting for job 'm1' to reach ready; last seen: m1 "
                                         'running 0.0%') as err:
        driver.run('m1', 'completed')
    assert err.value.records[0]['status'] == 'running'
    assert 60.0 <= err.value.elapsed < 61.0


@pytest.mark.parametrize('status', ['running', 'ready'])
def test_complete_in_check_mode(check_driver: JobDriver, client: JobClient, vm: FakeVM,
                                clock: FakeClock, status: str) -> None:
    start(client, 'm1', 'mirror')
    advance(vm, 'm1', status)
    before = clock()
    assert check_driver.run('m1', 'completed').changed is True
    assert verbs(vm) == []
    assert vm.status('m1') == status
    assert clock() == before


def test_complete_an_inactive_commit_in_check_mode(check_driver: JobDriver, client: JobClient,
                                                   vm: FakeVM) -> None:
    start(client, 'c1', 'commit', top='mid')
    with pytest.raises(JobStateError, match='only mirror and active commit'):
        check_driver.run('c1', 'completed')


# -- finalized ----------------------------------------------------------------------------------------

def test_finalize_waits_for_pending_then_finalizes(driver: JobDriver, client: JobClient,
                                                   vm: FakeVM) -> None:
    start(client, 'b1', auto_finalize=False)
    result = driver.run('b1', 'finalized')
    assert result.changed is True
    assert verbs(vm) == [('b1', 'finalize')]
    assert (result.record['status'], result.record['outcome']) == ('concluded', 'succeeded')
    again = driver.run('b1', 'finalized')
    assert again.changed is False
    assert verbs(vm) == [('b1', 'finalize')]


def test_finalize_a_recorded_pending_backup(driver: JobDriver, vm: FakeVM,
                                            nodes_replies: dict[str, t.Any]) -> None:
    vm.load(nodes_replies['jobs']['backup_pending'])
    result = no_wait(driver).run('b1', 'finalized')
    assert result.changed is True
    assert verbs(vm) == [('b1', 'finalize')]
    assert vm.status('b1') == 'concluded'


def test_finalize_an_auto_finalized_job_just_waits(driver: JobDriver, client: JobClient,
                                                   vm: FakeVM) -> None:
    start(client, 'b1')
    result = driver.run('b1', 'finalized')
    assert result.changed is True, 'it closed the target of the backup'
    assert result.record['status'] == 'concluded'
    assert result.record['target_state'] == 'closed'
    assert verbs(vm) == []
    assert driver.run('b1', 'finalized').changed is False


def test_finalize_a_ready_mirror_refuses(driver: JobDriver, client: JobClient,
                                         vm: FakeVM) -> None:
    start(client, 'm1', 'mirror', auto_finalize=False)
    advance(vm, 'm1', 'ready')
    with pytest.raises(JobStateError) as err:
        driver.run('m1', 'finalized')
    assert str(err.value) == ("job 'm1' (mirror) is ready 100.0%: complete it first (state: "
                              "completed); verbs allowed now: cancel, pause, resume, set-speed, "
                              "complete")


def test_finalize_a_job_that_fails_first(driver: JobDriver, client: JobClient,
                                         vm: FakeVM) -> None:
    vm.fail['b1'] = 'No space left on device'
    start(client, 'b1', auto_finalize=False)
    with pytest.raises(JobFailed, match="^job 'b1' failed: No space left on device$"):
        driver.run('b1', 'finalized')


@pytest.mark.parametrize('status', ['running', 'pending'])
def test_finalize_in_check_mode(check_driver: JobDriver, client: JobClient, vm: FakeVM,
                                status: str) -> None:
    start(client, 'b1', auto_finalize=False)
    advance(vm, 'b1', status)
    assert check_driver.run('b1', 'finalized').changed is True
    assert verbs(vm) == []
    assert vm.status('b1') == status


def test_finalize_an_auto_finalized_job_in_check_mode(check_driver: JobDriver,
                                                      client: JobClient, vm: FakeVM,
                                                      clock: FakeClock) -> None:
    start(client, 'b1')
    before = clock()
    assert check_driver.run('b1', 'finalized').changed is False
    assert clock() == before


def test_finalize_a_running_create_job(driver: JobDriver, client: JobClient, vm: FakeVM) -> None:
    start(client, 'c1', 'create')
    result = driver.run('c1', 'finalized')
    assert result.changed is False, 'the fake create attaches nothing: nothing to close'
    assert result.record['status'] == 'concluded'
    assert result.record['target_state'] == 'closed'


# -- paused and running --------------------------------------------------------------------------------

@pytest.mark.parametrize('kind, status, paused', [
    ('backup', 'running', 'paused'),
    ('mirror', 'ready', 'standby'),
])
def test_pause_and_resume(driver: JobDriver, client: JobClient, vm: FakeVM, kind: str,
                          status: str, paused: str) -> None:
    start(client, 'j1', kind)
    advance(vm, 'j1', status)
    result = driver.run('j1', 'paused')
    assert (result.changed, result.record['status'], result.record['paused']) == (
        True, paused, True)
    assert driver.run('j1', 'paused').changed is False
    result = driver.run('j1', 'running')
    assert (result.changed, result.record['status'], result.record['paused']) == (
        True, status, False)
    assert driver.run('j1', 'running').changed is False
    assert verbs(vm) == [('j1', 'pause'), ('j1', 'resume')]


@pytest.mark.parametrize('status, allowed', [
    ('pending', 'cancel, finalize'),
    ('concluded', 'dismiss'),
])
def test_pause_a_job_past_pausing(driver: JobDriver, client: JobClient, vm: FakeVM, status: str,
                                  allowed: str) -> None:
    start(client, 'b1', auto_finalize=status == 'concluded')
    advance(vm, 'b1', status)
    with pytest.raises(JobStateError) as err:
        driver.run('b1', 'paused')
    assert str(err.value).startswith("cannot pause job 'b1' (backup): it is ")
    assert str(err.value).endswith(f'verbs allowed now: {allowed}')
    assert verbs(vm) == []


@pytest.mark.parametrize('status', ['running', 'ready', 'waiting', 'pending'])
def test_running_jobs_are_running(driver: JobDriver, client: JobClient, vm: FakeVM,
                                  status: str) -> None:
    start(client, 'm1', 'mirror', auto_finalize=False)
    if status != 'running':
        advance(vm, 'm1', 'ready')
    if status in ('waiting', 'pending'):
        vm.apply('m1', 'complete', {})
    advance(vm, 'm1', status)
    assert driver.run('m1', 'running').changed is False
    assert verbs(vm) == []


def test_resume_a_concluded_job_fails(driver: JobDriver, client: JobClient, vm: FakeVM) -> None:
    start(client, 'b1')
    advance(vm, 'b1', 'concluded')
    with pytest.raises(JobStateError, match="^cannot resume job 'b1' \\(backup\\): it is "
                                            "concluded \\(succeeded\\); verbs allowed now: "
                                            "dismiss$"):
        driver.run('b1', 'running')


def test_resume_an_aborting_job_fails(driver: JobDriver, client: JobClient, vm: FakeVM) -> None:
    start(client, 'b1')
    vm.apply('b1', 'cancel', {})
    with pytest.raises(JobStateError, match='cannot resume'):
        driver.run('b1', 'running')


@pytest.mark.parametrize('state, status', [('paused', 'running'), ('running', 'paused')])
def test_pause_and_resume_in_check_mode(check_driver: JobDriver, client: JobClient, vm: FakeVM,
                                        state: str, status: str) -> None:
    start(client, 'b1')
    if status == 'paused':
        vm.apply('b1', 'pause', {})
    assert check_driver.run('b1', state).changed is True
    assert verbs(vm) == []
    assert vm.status('b1') == status


def test_pause_without_waiting(driver: JobDriver, client: JobClient, vm: FakeVM,
                               clock: FakeClock) -> None:
    start(client, 'b1')
    assert no_wait(driver).run('b1', 'paused').changed is True
    assert vm.status('b1') == 'paused'
    assert clock.slept == []


# -- canceled ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('kind, status', [
    ('backup', 'running'), ('mirror', 'ready'), ('mirror', 'paused'), ('stream', 'running'),
])
def test_cancel(driver: JobDriver, client: JobClient, vm: FakeVM, ledger: CheckedLedger,
                kind: str, status: str) -> None:
    start(client, 'j1', kind)
    if status == 'paused':
        vm.apply('j1', 'pause', {})
    advance(vm, 'j1', status)
    result = driver.run('j1', 'canceled')
    assert result.changed is True
    # a concluded stream leaves the VM at once, its outcome kept by the ledger
    called = [('j1', 'cancel')] + ([('j1', 'dismiss')] if kind == 'stream' else [])
    assert verbs(vm) == called
    record = result.record
    keep_copy = status == 'ready'  # ends as block-job-cancel does: no error, the copy kept
    assert (record['status'], record['outcome'], record['error']) == (
        'concluded', 'canceled', None if keep_copy else 'Operation canceled')
    assert record.get('target_state') == (None if kind == 'stream' else
                                          'closed' if keep_copy else 'removed')
    [(_verb, _name, _cancel, arguments)] = [c for c in vm.calls
                                            if c[0] == 'verb' and c[2] == 'cancel']
    assert arguments == ({'keep_copy': True} if keep_copy else {})
    entry = ledger.get('j1')
    assert entry is not None and entry['cancel_requested'] is True
    assert entry['keep_copy'] is keep_copy
    again = driver.run('j1', 'canceled')
    assert again.changed is False
    assert verbs(vm) == called
    assert again.record['outcome'] == 'canceled' and not again.record['dismissed']


def test_cancel_a_job_started_elsewhere(driver: JobDriver, vm: FakeVM, ledger: CheckedLedger,
                                        replies: dict[str, t.Any]) -> None:
    vm.load(replies['mirror_running'])
    result = driver.run('m1', 'canceled')
    assert (result.changed, result.record['outcome']) == (True, 'canceled')
    assert ledger.all() == []


def test_cancel_an_aborting_job_waits_for_it(driver: JobDriver, client: JobClient,
                                             vm: FakeVM) -> None:
    start(client, 'b1')
    vm.apply('b1', 'cancel', {})
    result = driver.run('b1', 'canceled')
    assert result.changed is True, 'it removed the unfinished target'
    assert result.record['status'] == 'concluded'
    assert result.record['target_state'] == 'removed'
    assert verbs(vm) == []
    assert driver.run('b1', 'canceled').changed is False


@pytest.mark.parametrize('setup', ['concluded', 'failed', 'tombstone', 'lost'])
def test_cancel_what_is_over_changes_nothing(driver: JobDriver, client: JobClient, vm: FakeVM,
                                             ledger: CheckedLedger, setup: str) -> None:
    if setup in ('concluded', 'failed'):
        if setup == 'failed':
            vm.fail['b1'] = 'No space left on device'
        start(client, 'b1')
        advance(vm, 'b1', 'concluded')
        client.get('b1', settle=True)  # as the wait that saw it conclude did
    elif setup == 'tombstone':
        start(client, 'b1')
        advance(vm, 'b1', 'concluded')
        driver.run('b1', 'absent')
        vm.calls.clear()
    else:
        ledger.put(ledger_entry('b1', 'backup', {}, 0.0, state='started'))
    assert driver.run('b1', 'canceled').changed is False
    assert verbs(vm) == []


def test_cancel_without_waiting(driver: JobDriver, client: JobClient, vm: FakeVM) -> None:
    start(client, 'b1')
    result = no_wait(driver).run('b1', 'canceled')
    assert result.changed is True
    assert vm.status('b1') == 'aborting'


def test_cancel_in_check_mode(check_driver: JobDriver, client: JobClient, vm: FakeVM,
                              ledger: CheckedLedger) -> None:
    start(client, 'b1')
    entry = ledger.get('b1')
    assert check_driver.run('b1', 'canceled').changed is True
    assert verbs(vm) == []
    assert ledger.get('b1') == entry


def test_a_canceled_job_that_concluded_without_error_is_canceled(
        driver: JobDriver, client: JobClient, vm: FakeVM, ledger: CheckedLedger) -> None:
    # block-job-cancel on a READY mirror completes it without error (no pivot): only the
    # ledger's cancel_requested tells that it was canceled.
    start(client, 'm1', 'mirror')
    advance(vm, 'm1', 'ready')
    ledger.update('m1', cancel_requested=True)
    vm.apply('m1', 'complete', {})
    advance(vm, 'm1', 'concluded')
    record = client.get('m1')[0]
    assert (record['outcome'], record['error']) == ('canceled', None)


# -- absent ---------------------------------------------------------------------------------------------

def test_dismiss_a_concluded_job(driver: JobDriver, client: JobClient, vm: FakeVM,
                                 ledger: CheckedLedger, clock: FakeClock) -> None:
    start(client, 'b1')
    advance(vm, 'b1', 'concluded')
    started = ledger.get('b1')
    assert started is not None
    result = driver.run('b1', 'absent')
    assert result.changed is True
    assert result.record['dismissed'] is True
    assert result.record['outcome'] == 'succeeded'
    assert verbs(vm) == [('b1', 'dismiss')]
    assert vm.status('b1') == 'absent'
    closed, cleaned = [c[1:] for c in vm.calls if c[0] == 'cleanup']
    assert closed[0]['attached'] == list(_nodes.target_node_names('b1'))
    assert closed[1] is False, 'a backup that succeeded keeps its target file'
    assert cleaned[0]['state'] == 'started' and cleaned[0]['targets'] == 'closed'
    tomb = ledger.get('b1')
    assert tomb is not None
    assert tomb['state'] == 'dismissed'
    assert tomb['params'] == started['params']
    assert tomb['kept_nodes'] == []
    assert (tomb['last']['status'], tomb['last']['outcome']) == ('concluded', 'succeeded')
    again = driver.run('b1', 'absent')
    assert again.changed is False
    assert again.record['dismissed'] is True
    assert verbs(vm) == [('b1', 'dismiss')]


def test_a_concluded_stream_leaves_the_vm_and_keeps_its_outcome(
        driver: JobDriver, client: JobClient, vm: FakeVM, ledger: CheckedLedger) -> None:
    start(client, 's1', 'stream')
    advance(vm, 's1', 'concluded')
    [seen] = client.list(['s1'])  # the first read dismisses it from the VM
    assert verbs(vm) == [('s1', 'dismiss')] and vm.status('s1') == 'absent'
    assert (seen['status'], seen['outcome'], seen['dismissed'], seen['lost']) == (
        'concluded', 'succeeded', False, False)
    entry = ledger.get('s1')
    assert entry is not None and entry['state'] == 'started'
    result = driver.run('s1', 'absent')  # the user's dismiss turns it into a tombstone
    assert result.changed is True and result.record['dismissed'] is True
    assert result.record['outcome'] == 'succeeded'
    assert verbs(vm) == [('s1', 'dismiss')]
    assert driver.run('s1', 'absent').changed is False


def test_dismiss_keeps_the_nodes_a_device_uses(driver: JobDriver, client: JobClient, vm: FakeVM,
                                               ledger: CheckedLedger) -> None:
    start(client, 'm1', 'mirror')
    advance(vm, 'm1', 'ready')
    vm.apply('m1', 'complete', {})
    advance(vm, 'm1', 'concluded')
    vm.kept = [_nodes.target_node_names('m1')[0]]
    driver.run('m1', 'absent')
    tomb = ledger.get('m1')
    assert tomb is not None and tomb['kept_nodes'] == vm.kept


def test_dismiss_a_failed_job_remembers_qemus_error(driver: JobDriver, client: JobClient,
                                                    vm: FakeVM) -> None:
    vm.fail['b1'] = 'No space left on device'
    start(client, 'b1')
    advance(vm, 'b1', 'concluded')
    driver.run('b1', 'absent')
    vm.calls.clear()
    result = start(client, 'b1')
    assert (result['status'], result['outcome'], result['error']) == (
        'concluded', 'failed', 'No space left on device')
    assert vm.calls == [('session',)]


def test_dismiss_a_job_started_elsewhere(driver: JobDriver, vm: FakeVM, ledger: CheckedLedger,
                                         replies: dict[str, t.Any]) -> None:
    vm.load(replies['mirror_concluded'])
    assert driver.run('m1', 'absent').changed is True
    tomb = ledger.get('m1')
    assert tomb is not None
    assert (tomb['type'], tomb['params'], tomb['state']) == (
        'mirror', {'type': 'mirror'}, 'dismissed')
    assert tomb['last']['outcome'] == 'succeeded'


def test_dismiss_a_running_job_needs_cancel(driver: JobDriver, client: JobClient, vm: FakeVM,
                                            ledger: CheckedLedger) -> None:
    start(client, 'b1')
    entry = ledger.get('b1')
    with pytest.raises(JobStateError) as err:
        driver.run('b1', 'absent')
    assert str(err.value) == ("job 'b1' (backup) is running 0.0%: set cancel: true to cancel it "
                              "before dismissing, or wait for it to conclude; verbs allowed now: "
                              "cancel, pause, resume, set-speed")
    assert err.value.record is not None and err.value.record['status'] == 'running'
    assert verbs(vm) == []
    assert ledger.get('b1') == entry


def test_dismiss_with_cancel(driver: JobDriver, client: JobClient, vm: FakeVM,
                             ledger: CheckedLedger) -> None:
    start(client, 'b1')
    result = driver.run('b1', 'absent', cancel=True)
    assert result.changed is True
    assert verbs(vm) == [('b1', 'cancel'), ('b1', 'dismiss')]
    tomb = ledger.get('b1')
    assert tomb is not None
    assert (tomb['state'], tomb['last']['outcome'], tomb['cancel_requested']) == (
        'dismissed', 'canceled', True)
    assert driver.run('b1', 'absent', cancel=True).changed is False


def test_dismiss_an_aborting_job_with_cancel(driver: JobDriver, client: JobClient,
                                             vm: FakeVM) -> None:
    start(client, 'b1')
    vm.apply('b1', 'cancel', {})
    assert driver.run('b1', 'absent', cancel=True).changed is True
    assert verbs(vm) == [('b1', 'dismiss')]


def test_forget_releases_the_name(driver: JobDriver, client: JobClient, vm: FakeVM,
                                  ledger: CheckedLedger) -> None:
    start(client, 'b1')
    advance(vm, 'b1', 'concluded')
    assert driver.run('b1', 'absent', forget=True).changed is True
    assert ledger.get('b1') is None
    assert driver.run('b1', 'absent', forget=True).changed is False
    vm.calls.clear()
    again = client.start('b1', block_job_params('b1', 'backup', **MINIMAL['backup']))
    assert again.changed is True
    assert [c[1] for c in vm.calls if c[0] == 'start'] == ['b1']


def test_forget_a_tombstone(driver: JobDriver, client: JobClient, vm: FakeVM,
                            ledger: CheckedLedger) -> None:
    start(client, 'b1')
    advance(vm, 'b1', 'concluded')
    driver.run('b1', 'absent')
    assert driver.run('b1', 'absent').changed is False
    result = driver.run('b1', 'absent', forget=True)
    assert result.changed is True
    assert ledger.get('b1') is None
    assert driver.run('b1', 'absent', forget=True).changed is False
    assert verbs(vm) == [('b1', 'dismiss')]


def test_absent_and_forget_a_lost_job(driver: JobDriver, vm: FakeVM,
                                      ledger: CheckedLedger) -> None:
    # QEMU no longer has it and nobody saw its outcome: absent makes the entry a tombstone.
    ledger.put(ledger_entry('lost1', 'stream', {}, 0.0, state='started'))
    result = driver.run('lost1', 'absent')
    assert (result.changed, result.record['dismissed']) == (True, True)
    entry = ledger.get('lost1')
    assert entry is not None and entry['state'] == 'dismissed'
    assert driver.run('lost1', 'absent').changed is False
    assert driver.run('lost1', 'absent', forget=True).changed is True
    assert ledger.get('lost1') is None
    assert verbs(vm) == []


@pytest.mark.parametrize('setup, options', [
    ('concluded', {}),
    ('concluded', {'forget': True}),
    ('running', {'cancel': True}),
    ('tombstone', {'forget': True}),
])
def test_dismiss_in_check_mode(check_driver: JobDriver, driver: JobDriver, client: JobClient,
                               vm: FakeVM, ledger: CheckedLedger, clock: FakeClock, setup: str,
                               options: dict[str, bool]) -> None:
    start(client, 'b1')
    if setup != 'running':
        advance(vm, 'b1', 'concluded')
    if setup == 'tombstone':
        driver.run('b1', 'absent')
        vm.calls.clear()
    entry = ledger.get('b1')
    status = vm.status('b1')
    before = clock()
    assert check_driver.run('b1', 'absent', **options).changed is True
    assert verbs(vm) == []
    assert [c for c in vm.calls if c[0] == 'cleanup'] == []
    assert vm.status('b1') == status
    assert ledger.get('b1') == entry
    assert clock() == before


def test_dismiss_a_running_job_in_check_mode_still_needs_cancel(check_driver: JobDriver,
                                                                client: JobClient) -> None:
    start(client, 'b1')
    with pytest.raises(JobStateError, match='set cancel: true'):
        check_driver.run('b1', 'absent')


def test_dismiss_fails_with_qemus_error(driver: JobDriver, client: JobClient, vm: FakeVM,
                                        replies: dict[str, t.Any]) -> None:
    start(client, 'b1')
    advance(vm, 'b1', 'concluded')
    desc = replies['errors']['job-dismiss unknown']['desc']

    def refuse(name: str, verb: str, arguments: Record) -> None:
        raise BackendError('job-dismiss', 'GenericError', desc, name)

    vm.apply = refuse  # type: ignore[method-assign]
    with pytest.raises(BackendError, match="^job 'b1': job-dismiss failed: GenericError: Job "
                                           "not found$"):
        driver.run('b1', 'absent')


def test_dismiss_an_auto_dismissed_job(driver: JobDriver, client: JobClient, vm: FakeVM,
                                       ledger: CheckedLedger) -> None:
    start(client, 'b1', auto_dismiss=True)
    client.wait(['b1'], 'concluded', 60)
    advance(vm, 'b1', 'absent')
    assert client.get('b1')[0]['status'] == 'concluded'
    result = driver.run('b1', 'absent')
    assert result.changed is True
    tomb = ledger.get('b1')
    assert tomb is not None and tomb['state'] == 'dismissed'


def test_cancel_and_dismiss_an_auto_dismissed_job(driver: JobDriver, client: JobClient,
                                                  vm: FakeVM, ledger: CheckedLedger) -> None:
    start(client, 'b1', auto_dismiss=True)
    result = driver.run('b1', 'absent', cancel=True)
    assert result.changed is True
    assert vm.status('b1') == 'absent'


# -- the whole idempotency contract, as a playbook would run it -----------------------------------

def test_a_mirror_from_start_to_tombstone(driver: JobDriver, client: JobClient, vm: FakeVM,
                                          ledger: CheckedLedger) -> None:
    params = block_job_params('move', 'mirror', **MINIMAL['mirror'])
    assert client.start('move', params, 'ready', 60).changed is True
    assert client.start('move', params, 'ready', 60).changed is False
    assert driver.run('move', 'completed').changed is True
    assert driver.run('move', 'completed').changed is False
    done = client.wait(['move'], 'concluded', 60)
    assert done.record['outcome'] == 'succeeded'
    assert driver.run('move', 'absent').changed is True
    assert driver.run('move', 'absent').changed is False
    again = client.start('move', params, 'concluded', 60)
    assert (again.changed, again.record['outcome'], again.record['dismissed']) == (
        False, 'succeeded', True)
    assert client.wait(['move'], 'concluded', 0).record['dismissed'] is True
    assert [c[1] for c in vm.calls if c[0] == 'start'] == ['move']
    assert verbs(vm) == [('move', 'complete'), ('move', 'dismiss')]
    assert [r['name'] for r in client.list()] == []
    assert [r['name'] for r in client.list(include_dismissed=True)] == ['move']


def test_results_have_the_records_of_the_run(driver: JobDriver, client: JobClient) -> None:
    start(client, 'b1')
    result = driver.run('b1', 'paused')
    assert isinstance(result, Result)
    assert [r['name'] for r in result.records] == ['b1']
    assert _reads.describe(result.record) == 'paused 0.0%'


# -- paused jobs are reported, not waited for ---------------------------------------------------------

def test_complete_a_paused_ready_mirror_refuses_at_once(driver: JobDriver, client: JobClient,
                                                        vm: FakeVM, clock: FakeClock) -> None:
    start(client, 'm1', 'mirror')
    advance(vm, 'm1', 'ready')
    driver.run('m1', 'paused')
    with pytest.raises(JobStateError) as err:
        driver.run('m1', 'completed')
    assert str(err.value).startswith("job 'm1' (mirror) is standby 100.0%: it is paused, and "
                                     'QEMU completes a paused job only once it runs again; '
                                     'resume it first (state: running)')
    assert verbs(vm) == [('m1', 'pause')] and clock.slept == []


def test_complete_a_mirror_paused_before_ready_refuses_at_once(driver: JobDriver,
                                                               client: JobClient, vm: FakeVM,
                                                               clock: FakeClock) -> None:
    start(client, 'm1', 'mirror')
    driver.run('m1', 'paused')
    with pytest.raises(JobStateError) as err:
        driver.run('m1', 'completed')
    assert "cannot reach ready: it is paused; resume it first (job state: running)" in str(
        err.value)
    assert clock.slept == []
    driver.run('m1', 'running')
    assert driver.run('m1', 'completed').changed is True, 'once resumed it completes'


def test_pause_and_resume_are_remembered(driver: JobDriver, client: JobClient,
                                         ledger: CheckedLedger) -> None:
    start(client, 'b1')
    driver.run('b1', 'paused')
    assert (ledger.get('b1') or {})['user_paused'] is True
    driver.run('b1', 'running')
    assert (ledger.get('b1') or {})['user_paused'] is False
