# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for migrations in the job client and driver (_jobs.py, _control.py)."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._args import (
    migration as _migration_args,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.control import (
    JobDriver,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.reads import Result
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import (
    JobConflict,
    JobFailed,
    JobStateError,
    JobTimeout,
    TransportError,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model.shapes import (
    ledger_entry,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._waiter import Waiter
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils.fake_backend import (
    CheckedLedger,
    FakeClock,
)
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils.fake_migration import (
    TOTAL,
    MigratingVM,
    reply,
)

Record = dict[str, t.Any]


@pytest.fixture
def vm(clock: FakeClock) -> MigratingVM:
    return MigratingVM(clock)


@pytest.fixture
def client(vm: MigratingVM, ledger: CheckedLedger, waiter: Waiter, clock: FakeClock) -> JobClient:
    return JobClient(vm, ledger, waiter, now=clock)


def params(name: str = 'mig', **options: t.Any) -> dict[str, t.Any]:
    values = {key: spec.get('default') for key, spec in _migration_args.MIGRATION.items()}
    values.update({'dest_uri': 'tcp:10.0.0.2:4444'}, **options, name=name)
    return _migration_args.migration_params(values)


def migrate(client: JobClient, name: str = 'mig', wait: str = 'none', **options: t.Any) -> Result:
    return client.start(name, params(name, **options), wait, 60.0)


def starts(vm: MigratingVM) -> int:
    return sum(1 for call in vm.calls if call[0] == 'start')


def test_a_migration_is_a_named_job(client: JobClient, vm: MigratingVM,
                                    ledger: CheckedLedger) -> None:
    result = migrate(client)
    assert result.changed
    record = result.record
    assert (record['name'], record['type'], record['status'], record['raw_status']) == (
        'mig', 'migration', 'running', 'setup')
    assert record['dest_uri'] == 'tcp:10.0.0.2:4444' and record['dest_uri'] == 'tcp:10.0.0.2:4444'
    entry = ledger.get('mig')
    assert entry is not None and entry['state'] == 'started' and entry['prior'] is not None
    assert entry['started_at'] == vm.clock()


def test_a_rerun_reports_the_running_migration(client: JobClient, vm: MigratingVM) -> None:
    migrate(client)
    again = migrate(client, bandwidth=1 << 20)
    assert not again.changed and again.record['status'] == 'running'
    assert starts(vm) == 1


def test_the_same_name_for_another_destination_conflicts(client: JobClient) -> None:
    migrate(client)
    with pytest.raises(JobConflict, match=r"dest_uri='tcp:10.0.0.2:4444' \(requested 'tcp:10.0.0.3:1'\)"):
        migrate(client, dest_uri='tcp:10.0.0.3:1')


def test_wait_until_concluded_then_finish_once(client: JobClient, vm: MigratingVM,
                                               ledger: CheckedLedger) -> None:
    result = migrate(client, wait='concluded')
    record = result.record
    assert (record['status'], record['raw_status'], record['outcome']) == (
        'concluded', 'completed', 'succeeded')
    assert record['downtime'] == 40 and record['progress']['percent'] == 100.0
    assert client.acted_on == ['mig'], 'resuming the guest at the destination is a change'
    client.acted_on = []
    client.wait(['mig'], 'concluded', 10)
    assert vm.finished == ['mig'], 'the destination is finished once'
    assert client.acted is False, 'a repeat changes nothing'
    entry = ledger.get('mig')
    assert entry is not None and entry['last']['outcome'] == 'succeeded'
    assert entry['last']['downtime'] == 40


def test_after_the_source_exited_the_ledger_answers(client: JobClient, vm: MigratingVM) -> None:
    migrate(client, wait='concluded')
    vm.gone = True
    again = migrate(client)
    assert not again.changed and again.record['outcome'] == 'succeeded'
    assert again.record['live'] is False and again.record['raw_status'] == 'completed'
    assert client.get('mig')[0]['outcome'] == 'succeeded'
    assert [r['name'] for r in client.list(names=['mig'])] == ['mig']
    assert client.wait(['mig'], 'concluded', 10).record['downtime'] == 40
    with pytest.raises(TransportError, match='no QMP socket'):
        client.list()
    with pytest.raises(JobConflict):
        migrate(client, dest_uri='tcp:10.0.0.3:1')


def test_a_name_the_ledger_lacks_still_needs_the_vm(client: JobClient, vm: MigratingVM) -> None:
    migrate(client, wait='concluded')
    vm.gone = True
    with pytest.raises(TransportError):
        client.get('other')
    with pytest.raises(TransportError):
        migrate(client, name='other')


def test_the_destination_witnesses_an_unseen_outcome(client: JobClient, vm: MigratingVM,
                                                     ledger: CheckedLedger) -> None:
    migrate(client)
    vm.gone = True
    vm.witnessed = {'outcome': 'succeeded', 'error': None, 'running': 'running'}
    record = client.get('mig')[0]
    assert (record['status'], record['outcome'], record['lost']) == (
        'concluded', 'succeeded', False)
    entry = ledger.get('mig')
    assert entry is not None and entry['last']['outcome'] == 'succeeded', 'kept for next time'


def test_without_a_witness_the_migration_is_lost(client: JobClient, vm: MigratingVM) -> None:
    migrate(client)
    with pytest.raises(JobTimeout):
        client.wait(['mig'], 'concluded', 0)  # one look: it is setting up
    vm.gone = True
    record = client.get('mig')[0]
    assert (record['status'], record['lost']) == ('absent', True)
    assert record['progress']['current'] == 0, 'the last progress seen is kept'
    with pytest.raises(JobStateError, match="is absent .* and cannot reach concluded"):
        client.wait(['mig'], 'concluded', 10)


def test_qemus_previous_migration_is_not_ours(client: JobClient, vm: MigratingVM,
                                              ledger: CheckedLedger) -> None:
    vm.migrate = reply('completed', downtime=3)
    ledger.put(ledger_entry('mig', 'migration',
                            {'type': 'migration', 'dest_uri': 'tcp:10.0.0.2:4444'}, vm.clock(),
                            attached=[], prior=['completed', 100, 1, TOTAL]))
    record = client.get('mig')[0]
    assert record['status'] == 'absent', 'QEMU still shows the migration before this one'


def test_a_failed_migration_keeps_qemus_words(client: JobClient, vm: MigratingVM) -> None:
    vm.script = [reply('failed', TOTAL, **{'error-desc': "Failed to connect to '10.0.0.2:4444': "
                                                         'Connection refused'})]
    assert migrate(client).changed
    with pytest.raises(JobFailed) as err:
        client.wait(['mig'], 'concluded', 10)
    assert str(err.value) == ("job 'mig' failed: Failed to connect to '10.0.0.2:4444': "
                              'Connection refused')
    assert err.value.records[0]['raw_status'] == 'failed'


# -- completion policies -------------------------------------------------------------------------

def test_completion_timeout_cancels(client: JobClient, vm: MigratingVM) -> None:
    vm.script = [reply('active', TOTAL // 2)] * 100
    result = migrate(client, wait='concluded', completion_timeout=5.0)
    record = result.record
    assert record['outcome'] == 'canceled' and record['actions_taken'] == ['cancel']
    assert ('migration_verb', 'mig', 'cancel', {}) in vm.calls
    assert result.elapsed is not None and result.elapsed >= 5.0


def test_completion_timeout_pauses_the_guest(client: JobClient, vm: MigratingVM) -> None:
    vm.script = [reply('active', TOTAL // 2)] * 5 + [reply('completed')]
    record = migrate(client, wait='concluded', completion_timeout=1.0,
                     completion_action='pause').record
    assert vm.paused and record['outcome'] == 'succeeded'
    assert record['actions_taken'] == ['pause']
    verbs = [call[2] for call in vm.calls if call[0] == 'migration_verb']
    assert verbs == ['pause'], 'each action is taken once'


def test_a_wait_that_applies_the_policy_reports_a_change(client: JobClient,
                                                         vm: MigratingVM) -> None:
    vm.script = [reply('active', TOTAL // 2)] * 5 + [reply('completed')]
    migrate(client, completion_timeout=1.0, completion_action='pause')
    client.acted_on = []
    vm.clock.advance(2)
    client.wait(['mig'], 'concluded', 30)
    assert client.acted_on == ['mig'], 'pausing the guest is a change the waiting task made'
    client.acted_on = []
    client.wait(['mig'], 'concluded', 30)
    assert client.acted is False


def test_postcopy_after_passes(client: JobClient, vm: MigratingVM) -> None:
    vm.script = [reply('active', TOTAL // 2, passes=1), reply('active', TOTAL // 3, passes=2)] + [
        reply('active', TOTAL // 3, passes=3)] * 50
    record = migrate(client, wait='concluded', postcopy=True, postcopy_after_passes=2).record
    assert record['outcome'] == 'succeeded' and record['postcopy'] is True
    assert record['actions_taken'] == ['postcopy']


def test_policies_need_a_waiting_task(client: JobClient, vm: MigratingVM) -> None:
    vm.script = [reply('active', TOTAL // 2)] * 100
    migrate(client, completion_timeout=1.0)
    vm.clock.advance(10)
    assert client.get('mig')[0]['status'] == 'running'
    assert [r['name'] for r in client.list(types=['migration'])] == ['mig']
    assert not [call for call in vm.calls if call[0] == 'migration_verb'], 'looking does not act'


# -- the job driver ----------------------------------------------------------------------------------

def test_cancel_through_the_driver(client: JobClient, vm: MigratingVM) -> None:
    vm.script = [reply('active', TOTAL // 2)] * 100
    migrate(client)
    driver = JobDriver(client, wait=True, wait_timeout=30)
    result = driver.run('mig', 'canceled')
    assert result.changed and result.record['outcome'] == 'canceled'
    assert result.record['raw_status'] == 'cancelled'
    assert not driver.run('mig', 'canceled').changed


def test_migrations_refuse_block_job_verbs(client: JobClient, vm: MigratingVM) -> None:
    vm.script = [reply('active', TOTAL // 2)] * 100
    migrate(client)
    driver = JobDriver(client, wait=True, wait_timeout=30)
    with pytest.raises(JobStateError, match='verbs allowed now: cancel, set-speed$'):
        driver.run('mig', 'paused')
    with pytest.raises(JobStateError, match='only mirror and active commit jobs can be completed'):
        driver.run('mig', 'completed')


def test_speed_goes_to_max_bandwidth(client: JobClient, vm: MigratingVM) -> None:
    vm.script = [reply('active', TOTAL // 2)] * 100
    migrate(client)
    JobDriver(client).run('mig', speed=1 << 20)
    assert ('migration_verb', 'mig', 'set-speed', {'speed': 1 << 20}) in vm.calls


def test_absent_forgets_a_concluded_migration(client: JobClient, vm: MigratingVM,
                                              ledger: CheckedLedger) -> None:
    migrate(client, wait='concluded')
    driver = JobDriver(client)
    gone = driver.run('mig', 'absent')
    assert gone.changed and gone.record['dismissed']
    assert client.list() == [], 'a dismissed migration is a tombstone'
    assert client.list(include_dismissed=True)[0]['outcome'] == 'succeeded'
    assert not migrate(client).changed, 'the name stays reserved'
    driver.run('mig', 'absent', forget=True)
    assert ledger.get('mig') is None
