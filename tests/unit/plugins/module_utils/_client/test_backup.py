# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_client/backup.py: chains over the real job client and a fake VM.

The fake VM (``fake_backend.FakeVM``) runs the members of a group as block jobs; its
block graph is the VM recorded in ``qemu-7.2-backup.json``.  Targets are touched in
``tmp_path`` so that the module's checks for existing and missing images see them.
"""

from __future__ import annotations

import copy
import json
import os
import pathlib
import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._args import (
    backup as _backup_args,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client import (
    backup as _backup,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.forget import (
    forget_chain,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import (
    BackendError,
    InvalidArgument,
    JobFailed,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    chains as _chains,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import nodes as _nodes
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import (
    sources as _qmp_sources,
)
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils.fake_backend import (
    CANCELED,
    FakeClock,
    FakeVM,
)

Record = dict[str, t.Any]
FIXTURE = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'fixtures', 'qemu-7.2-backup.json')
ENOSPC = 'No space left on device'


class Graph:
    """Answers ``query-block`` and ``query-named-block-nodes`` from the recorded VM."""

    def __init__(self) -> None:
        with open(FIXTURE, encoding='utf-8') as handle:
            self.vm = json.load(handle)['vm']

    def execute(self, command: str, arguments: Record | None = None) -> t.Any:
        return copy.deepcopy({'query-block': self.vm['query-block'],
                              'query-named-block-nodes': self.vm['query-named-block-nodes flat']
                              }[command])

    def ensure_bitmaps(self, node: str, names: list[str]) -> None:
        bitmaps = _nodes.node(self.vm['query-named-block-nodes flat'], node)['dirty-bitmaps']
        for name in names:
            if name not in [b['name'] for b in bitmaps]:
                bitmaps.append({'name': name, 'recording': True, 'persistent': True,
                                'busy': False, 'granularity': 65536, 'count': 0})


class GroupVM(FakeVM):
    """A fake VM whose sessions speak QMP for queries and start groups of backup jobs."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.graph = Graph()
        self.plans: list[list[Record]] = []
        #: 'before' or 'after': the next start is refused before or after the bitmaps change.
        self.refuse_start: str | None = None

    def backup_sources(self, name: str, devices: t.Sequence[str] | None) -> list[Record]:
        return _qmp_sources.backup_sources(t.cast(t.Any, self.graph), name, devices)

    def start_backup(self, name: str, params: dict[str, t.Any], plan: list[Record],
                     note: t.Callable[..., None], before_reset: t.Callable[[], None]) -> None:
        self.plans.append(plan)
        if self.refuse_start == 'before':
            raise BackendError('blockdev-create', 'GenericError', "Could not create '/b': "
                               'Permission denied')
        if any(step['reset'] for step in plan):
            before_reset()
        if self.refuse_start == 'after':
            raise BackendError('transaction', 'GenericError', 'Device has no medium')
        note(members=[step['member'] for step in plan],
             disks=[{key: step[key] for key in ('member', *_chains.DISK_KEYS)} for step in plan])
        for step in plan:
            pathlib.Path(step['target']).touch()
            node = _nodes.resolve_device(step['device'], self.graph.vm['query-block'],
                                         self.graph.vm['query-named-block-nodes flat'], name)
            self.graph.ensure_bitmaps(node, step['reset'])
            super().start(step['member'], {'type': 'backup', 'target': step['target'],
                                           'auto_finalize': True, 'auto_dismiss': False,
                                           'speed': params.get('speed')}, lambda **facts: None)

    def remove_marks(self, marks: dict[str, list[str]]) -> None:
        for node, names in marks.items():
            found = _nodes.node(self.graph.vm['query-named-block-nodes flat'], node)
            found['dirty-bitmaps'] = [b for b in found['dirty-bitmaps'] if b['name'] not in names]

    def fail_group(self, name: str, failing: str = 'disk1') -> None:
        """Make the next group ``name`` fail on ``failing``; QEMU cancels the other members."""
        for device in ('disk0', 'disk1'):
            self.fail[f'{name}.{device}'] = ENOSPC if device == failing else CANCELED

    def forget(self, name: str, client: JobClient) -> None:
        """What ``job state=absent forget=true`` leaves: no members, no ledger entry."""
        entry = client.ledger.get(name) or {}
        for member in entry.get('members') or []:
            if member in self.jobs:
                self.remove(member)
        client.ledger.delete(name)


@pytest.fixture
def vm(clock: FakeClock) -> GroupVM:
    return GroupVM(clock)


@pytest.fixture
def dirs(tmp_path: pathlib.Path) -> t.Callable[[str], str]:
    def make(name: str) -> str:
        path = tmp_path / name
        path.mkdir(exist_ok=True)
        return str(path)
    return make


def run(client: JobClient, name: str, mode: str, target_dir: str, wait: str = 'concluded',
        **given: t.Any) -> Record:
    options = {key: spec.get('default') for key, spec in _backup_args.BACKUP.items()}
    options.update(name=name, mode=mode, bitmap='nightly', target_dir=target_dir)
    options.update(given)
    return _backup.Backup(client).run(options, wait, 60.0)


def chain(client: JobClient) -> list[Record]:
    record = _backup.chain_ledger(client.ledger).get('nightly') or {'attempts': []}
    return t.cast('list[Record]', record['attempts'])


def backings(result: Record) -> dict[str, str | None]:
    return {disk['device']: disk['backing'] for disk in result['backup']['disks']}


def test_full_then_incremental_then_differential(client: JobClient, vm: GroupVM,
                                                 dirs: t.Callable[[str], str]) -> None:
    full = run(client, 'f1', 'full', dirs('f1'))
    assert full['changed'] and full['job']['outcome'] == 'succeeded'
    assert [m['name'] for m in full['job']['members']] == ['f1.disk0', 'f1.disk1']
    assert backings(full) == {'disk0': None, 'disk1': None}
    assert [(a['job'], a['state'], a['outcome']) for a in chain(client)] == [
        ('f1', 'started', 'succeeded')]
    inc = run(client, 'i1', 'incremental', dirs('i1'))
    assert backings(inc) == {'disk0': dirs('f1') + '/disk0.qcow2',
                             'disk1': dirs('f1') + '/disk1.qcow2'}
    assert [(s['bitmap'], s['bitmap_mode'], s['sync']) for s in vm.plans[-1]] == [
        ('nightly', 'on-success', 'bitmap')] * 2
    inc2 = run(client, 'i2', 'incremental', dirs('i2'))
    assert backings(inc2)['disk0'] == dirs('i1') + '/disk0.qcow2'
    diff = run(client, 'd1', 'differential', dirs('d1'))
    assert backings(diff)['disk1'] == dirs('f1') + '/disk1.qcow2'
    assert [(s['bitmap'], s['bitmap_mode']) for s in vm.plans[-1]] == [
        ('nightly.full', 'never')] * 2
    assert [(a['job'], a['outcome']) for a in chain(client)] == [
        ('f1', 'succeeded'), ('i1', 'succeeded'), ('i2', 'succeeded'), ('d1', 'succeeded')]


def test_a_full_backup_resets_both_bitmaps(client: JobClient, vm: GroupVM,
                                           dirs: t.Callable[[str], str]) -> None:
    run(client, 'f1', 'full', dirs('f1'), disks=[{'device': 'disk0', 'target': None,
                                                  'format': 'qcow2'}])
    assert vm.plans[-1][0]['reset'] == ['nightly', 'nightly.full']
    assert vm.plans[-1][0]['member'] == 'f1.disk0' and len(vm.plans[-1]) == 1


def test_rerun_is_unchanged_and_reports_the_same_disks(client: JobClient, vm: GroupVM,
                                                       dirs: t.Callable[[str], str]) -> None:
    first = run(client, 'f1', 'full', dirs('f1'))
    again = run(client, 'f1', 'full', dirs('f1'))
    assert not again['changed'] and again['backup'] == first['backup']
    assert len(vm.plans) == 1


def test_check_mode_plans_without_starting_or_recording(check_client: JobClient, vm: GroupVM,
                                                        dirs: t.Callable[[str], str]) -> None:
    result = run(check_client, 'f1', 'full', dirs('f1'))
    assert result['changed'] and result['job']['status'] == 'absent'
    assert [d['target'] for d in result['backup']['disks']] == [
        dirs('f1') + '/disk0.qcow2', dirs('f1') + '/disk1.qcow2']
    assert vm.plans == [] and chain(check_client) == []


def test_check_mode_refuses_what_a_real_run_would(check_client: JobClient,
                                                  dirs: t.Callable[[str], str]) -> None:
    with pytest.raises(InvalidArgument, match="there is no full backup of disk 'disk0'"):
        run(check_client, 'i1', 'incremental', dirs('i1'))


def test_a_failed_incremental_is_passed_over(client: JobClient, vm: GroupVM,
                                             dirs: t.Callable[[str], str]) -> None:
    run(client, 'f1', 'full', dirs('f1'))
    vm.fail_group('i1')
    with pytest.raises(JobFailed, match=f"^job 'i1' failed: disk1: {ENOSPC}$"):
        run(client, 'i1', 'incremental', dirs('i1'))
    assert [(a['job'], a['outcome']) for a in chain(client)] == [
        ('f1', 'succeeded'), ('i1', 'failed')]
    retry = run(client, 'i1-retry', 'incremental', dirs('i1-retry'))
    assert backings(retry)['disk0'] == dirs('f1') + '/disk0.qcow2'


def test_a_forgotten_failed_incremental_can_run_again_under_its_name(
        client: JobClient, vm: GroupVM, dirs: t.Callable[[str], str]) -> None:
    run(client, 'f1', 'full', dirs('f1'))
    vm.fail_group('i1')
    with pytest.raises(JobFailed):
        run(client, 'i1', 'incremental', dirs('i1'))
    vm.forget('i1', client)
    vm.fail.clear()
    retry = run(client, 'i1', 'incremental', dirs('i1-again'))
    assert retry['changed'] and retry['job']['outcome'] == 'succeeded'
    assert backings(retry)['disk1'] == dirs('f1') + '/disk1.qcow2'
    assert [(a['job'], a['outcome']) for a in chain(client)] == [
        ('f1', 'succeeded'), ('i1', 'failed'), ('i1', 'succeeded')]


def test_a_forgotten_incremental_whose_outcome_was_never_seen_refuses(
        client: JobClient, vm: GroupVM, dirs: t.Callable[[str], str]) -> None:
    run(client, 'f1', 'full', dirs('f1'))
    run(client, 'i1', 'incremental', dirs('i1'), wait='none')
    vm.forget('i1', client)
    with pytest.raises(InvalidArgument, match="incremental backup 'i1' of disk 'disk0' has an "
                                              'outcome that was never seen'):
        run(client, 'i2', 'incremental', dirs('i2'))
    assert run(client, 'd1', 'differential', dirs('d1'))['job']['outcome'] == 'succeeded'


def test_a_backup_still_running_refuses_the_next(client: JobClient, vm: GroupVM,
                                                 dirs: t.Callable[[str], str]) -> None:
    run(client, 'f1', 'full', dirs('f1'))
    vm.frozen.update({'i1.disk0', 'i1.disk1'})
    run(client, 'i1', 'incremental', dirs('i1'), wait='none')
    with pytest.raises(InvalidArgument, match="incremental backup 'i1' of disk 'disk0' with "
                                              "bitmap 'nightly' is still running"):
        run(client, 'i2', 'incremental', dirs('i2'))


def test_a_failed_full_breaks_the_chain(client: JobClient, vm: GroupVM,
                                        dirs: t.Callable[[str], str]) -> None:
    run(client, 'f1', 'full', dirs('f1'))
    vm.fail_group('f2', failing='disk0')
    with pytest.raises(JobFailed, match=f"disk0: {ENOSPC}"):
        run(client, 'f2', 'full', dirs('f2'))
    for mode in ('incremental', 'differential'):
        with pytest.raises(InvalidArgument, match="the last full backup of disk 'disk0' with "
                                                  "bitmap 'nightly', 'f2', failed; run a full "
                                                  'backup$'):
            run(client, 'x1', mode, dirs('x1'))


def test_a_full_refused_before_its_bitmaps_changed_leaves_the_chain_alone(
        client: JobClient, vm: GroupVM, dirs: t.Callable[[str], str]) -> None:
    run(client, 'f1', 'full', dirs('f1'))
    vm.refuse_start = 'before'
    with pytest.raises(BackendError, match="^job 'f2': blockdev-create failed"):
        run(client, 'f2', 'full', dirs('f2'))
    assert [(a['job'], a['state'], a.get('reset')) for a in chain(client)] == [
        ('f1', 'started', True), ('f2', 'not-started', None)]
    vm.refuse_start = None
    assert backings(run(client, 'i1', 'incremental', dirs('i1')))['disk0'] == \
        dirs('f1') + '/disk0.qcow2'


def test_a_full_refused_after_its_bitmaps_changed_breaks_the_chain(
        client: JobClient, vm: GroupVM, dirs: t.Callable[[str], str]) -> None:
    run(client, 'f1', 'full', dirs('f1'))
    vm.refuse_start = 'after'
    with pytest.raises(BackendError, match="^job 'f2': transaction failed"):
        run(client, 'f2', 'full', dirs('f2'))
    assert chain(client)[-1]['reset'] is True
    vm.refuse_start = None
    with pytest.raises(InvalidArgument, match="'f2', did not start cleanly"):
        run(client, 'i1', 'incremental', dirs('i1'))


def test_an_image_of_the_chain_that_is_gone_refuses(client: JobClient,
                                                    dirs: t.Callable[[str], str]) -> None:
    run(client, 'f1', 'full', dirs('f1'))
    os.unlink(dirs('f1') + '/disk1.qcow2')
    with pytest.raises(InvalidArgument, match=f"image {dirs('f1')}/disk1.qcow2 of full backup "
                                              "'f1' \\(disk 'disk1'\\)"):
        run(client, 'i1', 'incremental', dirs('i1'))


def test_a_missing_bitmap_refuses(client: JobClient, dirs: t.Callable[[str], str]) -> None:
    run(client, 'f1', 'full', dirs('f1'), disks=[{'device': 'disk1', 'target': None,
                                                  'format': 'qcow2'}])
    run(client, 'd1', 'differential', dirs('d1'), disks=[{'device': 'disk1', 'target': None,
                                                          'format': 'qcow2'}])
    vm = t.cast(GroupVM, client.backend)  # the companion bitmap vanishes (say, by hand):
    node = _nodes.node(vm.graph.vm['query-named-block-nodes flat'], 'disk1-fmt')
    node['dirty-bitmaps'] = [b for b in node['dirty-bitmaps'] if b['name'] != 'nightly.full']
    with pytest.raises(InvalidArgument, match="^job 'd2': dirty bitmap 'nightly.full' of disk "
                                              r"'disk1' \(node disk1-fmt\) is missing; run a full "
                                              'backup$'):
        run(client, 'd2', 'differential', dirs('d2'), disks=[{'device': 'disk1', 'target': None,
                                                              'format': 'qcow2'}])


def test_targets_must_be_new_and_their_directory_must_exist(client: JobClient, vm: GroupVM,
                                                            dirs: t.Callable[[str], str]) -> None:
    pathlib.Path(dirs('f1'), 'disk0.qcow2').write_text('mine')
    with pytest.raises(InvalidArgument, match="target .*/f1/disk0.qcow2 of disk 'disk0' already "
                                              'exists; choose another path$'):
        run(client, 'f1', 'full', dirs('f1'))
    with pytest.raises(InvalidArgument, match='the directory .*/nowhere of target .*/nowhere/'
                                              'disk0.qcow2 does not exist$'):
        run(client, 'f2', 'full', dirs('f2') + '/nowhere')
    assert vm.plans == [] and chain(client) == []


def test_two_names_of_one_disk_refuse(client: JobClient, dirs: t.Callable[[str], str]) -> None:
    with pytest.raises(InvalidArgument, match="^job 'f1': disks 'disk0' and 'disk0-fmt' are the "
                                              'same node disk0-fmt$'):
        run(client, 'f1', 'full', dirs('f1'), disks=[
            {'device': 'disk0', 'target': None, 'format': 'qcow2'},
            {'device': 'disk0-fmt', 'target': None, 'format': 'raw'}])


def test_a_full_without_bitmap_starts_no_chain(client: JobClient, vm: GroupVM,
                                               dirs: t.Callable[[str], str]) -> None:
    result = run(client, 'f1', 'full', dirs('f1'), bitmap=None)
    assert result['job']['outcome'] == 'succeeded' and result['backup']['bitmap'] is None
    assert vm.plans[-1][0]['reset'] == [] and chain(client) == []


# -- mode: auto ----------------------------------------------------------------------------------

def modes(result: Record) -> dict[str, tuple[str, str | None]]:
    return {disk['device']: (disk['mode'], disk['reason']) for disk in result['backup']['disks']}


def test_auto_starts_a_chain_with_a_full_of_every_disk(client: JobClient, vm: GroupVM,
                                                       dirs: t.Callable[[str], str]) -> None:
    first = run(client, 'a1', 'auto', dirs('a1'))
    assert first['backup']['mode'] == 'auto'
    why = "there is no full backup of disk '{}' with bitmap 'nightly' to build an incremental " \
          'backup on'
    assert modes(first) == {device: ('full', why.format(device)) for device in ('disk0', 'disk1')}
    assert [step['reset'] for step in vm.plans[-1]] == [['nightly', 'nightly.full']] * 2
    second = run(client, 'a2', 'auto', dirs('a2'))
    assert modes(second) == {'disk0': ('incremental', None), 'disk1': ('incremental', None)}
    assert backings(second)['disk1'] == dirs('a1') + '/disk1.qcow2'
    assert run(client, 'a2', 'auto', dirs('a2'))['backup'] == second['backup'], 'a re-run'


def test_auto_heals_the_disk_that_cannot_go_on_and_continues_the_other(
        client: JobClient, vm: GroupVM, dirs: t.Callable[[str], str]) -> None:
    run(client, 'f1', 'full', dirs('f1'))
    os.unlink(dirs('f1') + '/disk1.qcow2')
    healed = run(client, 'a1', 'auto', dirs('a1'))
    gone = (f"image {dirs('f1')}/disk1.qcow2 of full backup 'f1' (disk 'disk1'), which this "
            'backup would build on, is gone')
    assert modes(healed) == {'disk0': ('incremental', None), 'disk1': ('full', gone)}
    assert [(s['device'], s['sync'], s['reset']) for s in vm.plans[-1]] == [
        ('disk0', 'bitmap', []), ('disk1', 'full', ['nightly', 'nightly.full'])]
    after = run(client, 'a2', 'auto', dirs('a2'))
    assert modes(after) == {'disk0': ('incremental', None), 'disk1': ('incremental', None)}
    assert backings(after) == {'disk0': dirs('a1') + '/disk0.qcow2',
                               'disk1': dirs('a1') + '/disk1.qcow2'}
    diff = run(client, 'd1', 'differential', dirs('d1'))
    assert backings(diff) == {'disk0': dirs('f1') + '/disk0.qcow2',
                              'disk1': dirs('a1') + '/disk1.qcow2'}, \
        'the full copy of disk1 within an auto backup is its chain\'s new full'


def test_auto_copies_whole_a_disk_whose_bitmap_is_unusable(
        client: JobClient, vm: GroupVM, dirs: t.Callable[[str], str]) -> None:
    run(client, 'f1', 'full', dirs('f1'))
    node = _nodes.node(vm.graph.vm['query-named-block-nodes flat'], 'disk0-fmt')
    next(b for b in node['dirty-bitmaps'] if b['name'] == 'nightly')['inconsistent'] = True
    healed = run(client, 'a1', 'auto', dirs('a1'))
    why = ("dirty bitmap 'nightly' of disk 'disk0' (node disk0-fmt) is inconsistent (QEMU "
           'stopped without saving it)')
    assert modes(healed)['disk0'] == ('full', why)
    assert modes(healed)['disk1'] == ('incremental', None)


def test_auto_waits_for_a_backup_of_the_chain_that_still_runs(
        client: JobClient, vm: GroupVM, dirs: t.Callable[[str], str]) -> None:
    run(client, 'f1', 'full', dirs('f1'))
    vm.frozen.update({'i1.disk0', 'i1.disk1'})
    run(client, 'i1', 'incremental', dirs('i1'), wait='none')
    with pytest.raises(InvalidArgument, match="^job 'a1': incremental backup 'i1' of disk "
                                              "'disk0' with bitmap 'nightly' is still running"):
        run(client, 'a1', 'auto', dirs('a1'))


def test_auto_needs_a_bitmap_and_qcow2_targets(client: JobClient,
                                               dirs: t.Callable[[str], str]) -> None:
    with pytest.raises(InvalidArgument, match="^job 'a1': an auto backup needs a bitmap$"):
        run(client, 'a1', 'auto', dirs('a1'), bitmap=None)
    with pytest.raises(InvalidArgument, match="^job 'a1': disk 'disk0': an auto backup needs a "
                                              'qcow2 target'):
        run(client, 'a1', 'auto', dirs('a1'), disks=[{'device': 'disk0', 'target': None,
                                                      'format': 'raw'}])


# -- forgetting a chain --------------------------------------------------------------------------

def bitmaps(vm: GroupVM, node: str) -> list[str]:
    found = _nodes.node(vm.graph.vm['query-named-block-nodes flat'], node)['dirty-bitmaps']
    return sorted(b['name'] for b in found)


def test_a_backup_lists_the_bitmaps_of_its_chain(client: JobClient,
                                                 dirs: t.Callable[[str], str]) -> None:
    full = run(client, 'f1', 'full', dirs('f1'))
    assert full['backup']['marks'] == [
        {'device': device, 'names': ['nightly', 'nightly.full']} for device in ('disk0', 'disk1')]
    assert run(client, 'f2', 'full', dirs('f2'), bitmap=None)['backup']['marks'] == []


def test_forgetting_a_chain_removes_its_bitmaps_and_history(client: JobClient, vm: GroupVM,
                                                            dirs: t.Callable[[str], str]) -> None:
    run(client, 'f1', 'full', dirs('f1'))
    run(client, 'i1', 'incremental', dirs('i1'))
    forgot = forget_chain(client, 'nightly')
    assert forgot == {'changed': True, 'chain': {
        'bitmap': 'nightly', 'backups': ['f1', 'i1'],
        'removed': [{'device': 'disk0', 'names': ['nightly', 'nightly.full']},
                    {'device': 'disk1', 'names': ['nightly', 'nightly.full']}]}}
    assert bitmaps(vm, 'disk0-fmt') == [] and bitmaps(vm, 'disk1-fmt') == ['old'], \
        'only the chain\'s bitmaps'
    assert chain(client) == [] and os.path.exists(dirs('i1') + '/disk0.qcow2'), 'images stay'
    again = forget_chain(client, 'nightly')
    assert again['changed'] is False and again['chain']['removed'] == []
    with pytest.raises(InvalidArgument, match="there is no full backup of disk 'disk0'"):
        run(client, 'i2', 'incremental', dirs('i2'))


def test_a_chain_is_not_forgotten_while_a_backup_of_it_runs(
        client: JobClient, vm: GroupVM, dirs: t.Callable[[str], str]) -> None:
    run(client, 'f1', 'full', dirs('f1'))
    vm.frozen.update({'i1.disk0', 'i1.disk1'})
    run(client, 'i1', 'incremental', dirs('i1'), wait='none')
    with pytest.raises(InvalidArgument, match="^chain 'nightly': backup 'i1' is still running; "
                                              'wait for it to conclude before forgetting'):
        forget_chain(client, 'nightly')
    assert bitmaps(vm, 'disk0-fmt') == ['nightly', 'nightly.full']


def test_check_mode_says_what_forgetting_would_remove(client: JobClient, check_client: JobClient,
                                                      vm: GroupVM,
                                                      dirs: t.Callable[[str], str]) -> None:
    run(client, 'f1', 'full', dirs('f1'))
    planned = forget_chain(check_client, 'nightly')
    assert planned['changed'] and len(planned['chain']['removed']) == 2
    assert bitmaps(vm, 'disk0-fmt') == ['nightly', 'nightly.full'] and chain(client) != []
