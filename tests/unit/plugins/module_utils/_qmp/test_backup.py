# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_qmp/backup.py, on replies recorded from QEMU 7.2.

``qemu-7.2-backup.json`` holds a VM with two virtio disks (disk0 with bitmaps
``nightly`` and ``nightly.full``; disk1 with ``nightly`` and a disabled, transient
``old``), a CD-ROM with a medium and an empty one, a qemu-storage-daemon, the part
of ``query-qmp-schema`` that describes ``blockdev-backup``, and QEMU's error texts.
"""

from __future__ import annotations

import copy
import json
import os
import pathlib
import re
import stat
import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils import _targets
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import (
    BackendError,
    InvalidArgument,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    planning as _planning,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import (
    backend as _qmp_backend,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import (
    backup as _qmp_backup,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import (
    images as _qmp_images,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import nodes as _nodes
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import (
    sources as _qmp_sources,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._waiter import Waiter
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils.fake_backend import (
    FakeClock,
)

Record = dict[str, t.Any]
FIXTURE = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'fixtures',
                       'qemu-7.2-backup.json')
FLAT = 'query-named-block-nodes flat'

#: Image creation in these tests concludes at its first look: no time passes.
WAITER = Waiter(clock=FakeClock())


@pytest.fixture(scope='module')
def recorded() -> Record:
    with open(FIXTURE, encoding='utf-8') as handle:
        return t.cast(Record, json.load(handle))


@pytest.fixture
def rec(recorded: Record) -> Record:
    return copy.deepcopy(recorded)


class FakeMonitor:
    """Answers queries from the recording, accepts every other command, fails on request."""

    def __init__(self, rec: Record, fail: dict[str, str] | None = None) -> None:
        self.rec = rec
        self.fail = fail or {}
        self.calls: list[tuple[str, Record]] = []

    def execute(self, command: str, arguments: Record | None = None) -> t.Any:
        self.calls.append((command, copy.deepcopy(arguments or {})))
        if command in self.fail:
            raise BackendError(command, 'GenericError', self.fail[command])
        return {'query-block': self.rec['vm']['query-block'],
                'query-named-block-nodes': self.rec['vm'][FLAT],
                'query-qmp-schema': self.rec['schema blockdev-backup'],
                'query-jobs': []}.get(command, {})

    def commands(self) -> list[str]:
        return [call[0] for call in self.calls]

    def wait_event(self, timeout: float) -> None:
        return None


class Notes:
    def __init__(self) -> None:
        self.facts: list[Record] = []

    def __call__(self, **facts: t.Any) -> None:
        self.facts.append(facts)

    def merged(self) -> Record:
        merged: Record = {}
        for facts in self.facts:
            merged.update(facts)
        return merged


# -- the block graph -----------------------------------------------------------------------------

def test_vm_disks_are_the_writable_fixed_disks(rec: Record) -> None:
    assert _qmp_sources.vm_disks(rec['vm']['query-block']) == ['disk0', 'disk1']


def test_a_storage_daemon_has_no_vm_disks(rec: Record) -> None:
    assert _qmp_sources.vm_disks(rec['qsd']['query-block']) == []


def test_vm_disks_name_drives_and_anonymous_devices(rec: Record) -> None:
    blocks = rec['vm']['query-block'][:2]
    blocks[0]['device'] = 'drive0'
    blocks[0]['qdev'] = '/machine/peripheral-anon/device[0]/virtio-backend'
    blocks[1]['qdev'] = '/machine/peripheral-anon/device[1]/virtio-backend'
    blocks[1]['inserted']['ro'] = False
    assert _qmp_sources.vm_disks(blocks) == ['drive0', 'disk1-fmt']
    blocks[1]['inserted']['ro'] = True
    assert _qmp_sources.vm_disks(blocks) == ['drive0']


def test_bitmaps_of_a_node(rec: Record) -> None:
    nodes = rec['vm'][FLAT]
    assert sorted(_qmp_sources.bitmaps(nodes, 'disk0-fmt')) == ['nightly', 'nightly.full']
    assert _qmp_sources.bitmaps(nodes, 'disk0-file') == {}


# -- bitmaps -------------------------------------------------------------------------------------

def source(rec: Record, device: str) -> Record:
    node = f'{device}-fmt'
    return {'device': device, 'node': node,
            'marks': _qmp_sources.marks(_qmp_sources.bitmaps(rec['vm'][FLAT], node))}


def test_a_recording_bitmap_is_a_usable_mark(rec: Record) -> None:
    _planning.check_mark('i1', source(rec, 'disk0'), 'nightly.full', 'bitmap')


@pytest.mark.parametrize('bitmap, problem', [
    ('nightly.full', 'is missing'),
    ('old', 'is disabled (it does not record writes)'),
])
def test_a_missing_or_disabled_bitmap_is_refused(rec: Record, bitmap: str, problem: str) -> None:
    with pytest.raises(InvalidArgument, match='^' + re.escape(
            f"job 'i1': dirty bitmap '{bitmap}' of disk 'disk1' (node disk1-fmt) {problem}; "
            'run a full backup') + '$'):
        _planning.check_mark('i1', source(rec, 'disk1'), bitmap, 'bitmap')


def test_an_inconsistent_bitmap_is_refused(rec: Record) -> None:
    found = _qmp_sources.bitmaps(rec['vm'][FLAT], 'disk0-fmt')
    found['nightly']['inconsistent'] = True
    marked = {'device': 'disk0', 'node': 'disk0-fmt', 'marks': _qmp_sources.marks(found)}
    with pytest.raises(InvalidArgument, match='is inconsistent'):
        _planning.check_mark('i1', marked, 'nightly', 'bitmap')


def test_reset_clears_usable_bitmaps_and_replaces_others(rec: Record) -> None:
    nodes = rec['vm'][FLAT]
    names = ['nightly', 'nightly.full', 'old']
    disk0 = _qmp_sources.reset_actions('disk0-fmt', names[:2],
                                       _qmp_sources.bitmaps(nodes, 'disk0-fmt'))
    assert disk0 == ([], [
        {'type': 'block-dirty-bitmap-clear', 'data': {'node': 'disk0-fmt', 'name': 'nightly'}},
        {'type': 'block-dirty-bitmap-clear',
         'data': {'node': 'disk0-fmt', 'name': 'nightly.full'}}])
    disk1 = _qmp_sources.reset_actions('disk1-fmt', names, _qmp_sources.bitmaps(nodes, 'disk1-fmt'))
    assert disk1 == (['old'], [
        {'type': 'block-dirty-bitmap-clear', 'data': {'node': 'disk1-fmt', 'name': 'nightly'}},
        {'type': 'block-dirty-bitmap-add',
         'data': {'node': 'disk1-fmt', 'name': 'nightly.full', 'persistent': True}},
        {'type': 'block-dirty-bitmap-add',
         'data': {'node': 'disk1-fmt', 'name': 'old', 'persistent': True}}])


# -- performance options -------------------------------------------------------------------------

def test_perf_option_of_qemu_7_2(rec: Record) -> None:
    assert _qmp_backup.perf_option(rec['schema blockdev-backup']) == (
        'x-perf', {'use-copy-range', 'max-workers', 'max-chunk'})


def test_perf_option_absent() -> None:
    schema = [{'name': 'blockdev-backup', 'meta-type': 'command', 'arg-type': '1'},
              {'name': '1', 'meta-type': 'object', 'members': [{'name': 'device', 'type': 'str'}]}]
    assert _qmp_backup.perf_option(schema) == (None, set())
    assert _qmp_backup.perf_option([]) == (None, set())
    with pytest.raises(InvalidArgument, match="^job 'b1': this QEMU's blockdev-backup has no "
                                              r'performance options \(x-perf\); remove perf$'):
        _qmp_backup.perf_arguments('b1', {'max_workers': 4}, schema)


def test_perf_arguments(rec: Record) -> None:
    schema = rec['schema blockdev-backup']
    assert _qmp_backup.perf_arguments('b1', {'max_workers': 8, 'max_chunk': None,
                                             'use_copy_range': False}, schema) == {
        'x-perf': {'max-workers': 8, 'use-copy-range': False}}
    assert _qmp_backup.perf_arguments('b1', {'max_workers': None}, schema) == {}


def test_perf_arguments_refuse_what_this_qemu_lacks(rec: Record) -> None:
    schema = rec['schema blockdev-backup']
    schema[-1]['members'] = [m for m in schema[-1]['members'] if m['name'] != 'max-chunk']
    with pytest.raises(InvalidArgument, match="blockdev-backup x-perf has no max_chunk; it offers "
                                              'max-workers, use-copy-range$'):
        _qmp_backup.perf_arguments('b1', {'max_chunk': 65536}, schema)


# -- actions -------------------------------------------------------------------------------------

def test_backup_actions() -> None:
    full = {'member': 'b1.disk0', 'sync': 'full', 'bitmap': None, 'bitmap_mode': None}
    assert _qmp_backup.backup_action(full, 'disk0-fmt', 'vjt', {'compress': False}, {}) == {
        'type': 'blockdev-backup', 'data': {
            'job-id': 'b1.disk0', 'device': 'disk0-fmt', 'target': 'vjt', 'sync': 'full',
            'auto-finalize': True, 'auto-dismiss': False}}
    inc = {'member': 'i1.disk0', 'sync': 'bitmap', 'bitmap': 'nightly',
           'bitmap_mode': 'on-success'}
    action = _qmp_backup.backup_action(inc, 'disk0-fmt', 'vjt', {'compress': True, 'speed': 1024},
                                       {'x-perf': {'max-workers': 2}})
    assert action['data'] == {
        'job-id': 'i1.disk0', 'device': 'disk0-fmt', 'target': 'vjt', 'sync': 'bitmap',
        'auto-finalize': True, 'auto-dismiss': False, 'bitmap': 'nightly',
        'bitmap-mode': 'on-success', 'compress': True, 'speed': 1024,
        'x-perf': {'max-workers': 2}}


# -- starting ------------------------------------------------------------------------------------

def step(tmp: pathlib.Path, device: str, mode: str = 'full', **extra: t.Any) -> Record:
    """A plan entry as the backup module makes it."""
    entry = {'device': device, 'member': f'b1.{device}', 'target': str(tmp / f'{device}.qcow2'),
             'format': 'qcow2', 'sync': 'full', 'bitmap': None, 'bitmap_mode': None,
             'backing': None, 'backing_format': None, 'reset': [], 'require': None,
             'mode': mode, 'reason': None}
    if mode == 'full':
        entry['reset'] = ['nightly', 'nightly.full']
    else:
        entry.update(sync='bitmap', bitmap='nightly', bitmap_mode='on-success', require='nightly',
                     backing=str(tmp / 'full' / f'{device}.qcow2'), backing_format='qcow2')
    entry.update(extra)
    return entry


def params(*plan: Record, **extra: t.Any) -> Record:
    return dict({'type': 'backup', 'plan': list(plan), 'compress': False, 'speed': None,
                 'perf': None}, **extra)


def launch_group(mon: FakeMonitor, name: str, given: Record, note: t.Callable[..., None]) -> None:
    """``start_group`` with the plan and the reset hook of ``params()`` taken out."""
    given = dict(given)
    plan, before_reset = given.pop('plan'), given.pop('before_reset', None)
    _qmp_backup.start_group(t.cast(t.Any, mon), WAITER, name, given, plan, note, before_reset)


def test_start_a_full_backup_of_two_disks(rec: Record, tmp_path: pathlib.Path) -> None:
    mon, notes = FakeMonitor(rec), Notes()
    launch_group(mon, 'b1',
                 params(step(tmp_path, 'disk0'), step(tmp_path, 'disk1')), notes)
    fmt0, file0 = _nodes.target_node_names('b1.disk0')
    fmt1, file1 = _nodes.target_node_names('b1.disk1')
    assert notes.facts[0] == {'members': ['b1.disk0', 'b1.disk1'], 'disks': [
        {'device': 'disk0', 'member': 'b1.disk0', 'node': 'disk0-fmt', 'format': 'qcow2',
         'target': str(tmp_path / 'disk0.qcow2'), 'backing': None, 'mode': 'full',
         'reason': None},
        {'device': 'disk1', 'member': 'b1.disk1', 'node': 'disk1-fmt', 'format': 'qcow2',
         'target': str(tmp_path / 'disk1.qcow2'), 'backing': None, 'mode': 'full',
         'reason': None}]}, \
        'members are noted before anything is created'
    assert notes.merged()['attached'] == [fmt0, file0, fmt1, file1]
    assert notes.merged()['created_files'] == [str(tmp_path / 'disk0.qcow2'),
                                               str(tmp_path / 'disk1.qcow2')]
    commands = mon.commands()
    assert commands[-3:] == ['blockdev-add', 'transaction', 'transaction']
    assert 'block-dirty-bitmap-remove' not in commands, "disk1's 'old' is not the chain's"
    resets, group = mon.calls[-2][1], mon.calls[-1][1]
    assert 'properties' not in resets, 'bitmap actions cannot be grouped'
    assert [a['type'] for a in resets['actions']] == [
        'block-dirty-bitmap-clear', 'block-dirty-bitmap-clear',
        'block-dirty-bitmap-clear', 'block-dirty-bitmap-add']
    assert group['properties'] == {'completion-mode': 'grouped'}
    assert [(a['data']['job-id'], a['data']['device'], a['data']['target'])
            for a in group['actions']] == [('b1.disk0', 'disk0-fmt', fmt0),
                                           ('b1.disk1', 'disk1-fmt', fmt1)]
    creates = [args for command, args in mon.calls if command == 'blockdev-create']
    assert creates[1]['options'] == {'driver': 'qcow2', 'file': file0, 'size': 16777216}
    assert ('blockdev-add', {'driver': 'qcow2', 'node-name': fmt0, 'file': file0,
                             'backing': None}) in mon.calls


def test_start_a_full_replaces_a_transient_bitmap(rec: Record, tmp_path: pathlib.Path) -> None:
    node = _nodes.node(rec['vm'][FLAT], 'disk1-fmt')
    node['dirty-bitmaps'][1]['persistent'] = False
    mon = FakeMonitor(rec)
    launch_group(mon, 'b1', params(step(tmp_path, 'disk1')), Notes())
    assert ('block-dirty-bitmap-remove', {'node': 'disk1-fmt', 'name': 'nightly'}) in mon.calls
    assert mon.commands()[-3:] == ['block-dirty-bitmap-remove', 'transaction', 'transaction']
    assert [a['type'] for a in mon.calls[-2][1]['actions']] == ['block-dirty-bitmap-add'] * 2


def test_start_marks_the_chain_just_before_the_bitmaps_change(rec: Record,
                                                              tmp_path: pathlib.Path) -> None:
    mon, marks = FakeMonitor(rec), []
    launch_group(mon, 'b1', params(
                 step(tmp_path, 'disk0'), before_reset=lambda: marks.append(len(mon.calls))), Notes())
    assert marks == [len(mon.calls) - 2], 'once, right before the reset transaction'
    marks.clear()
    launch_group(mon, 'b2', params(
                 step(tmp_path, 'disk1', 'incremental', member='b2.disk1'),
                 before_reset=lambda: marks.append(len(mon.calls))), Notes())
    assert marks == [], 'an incremental changes no bitmap before its job runs'


def test_start_an_incremental_records_the_backing_file(rec: Record,
                                                       tmp_path: pathlib.Path) -> None:
    mon = FakeMonitor(rec)
    launch_group(mon, 'b1',
                 params(step(tmp_path, 'disk0', 'incremental')), Notes())
    creates = [args for command, args in mon.calls if command == 'blockdev-create']
    assert creates[1]['options']['backing-file'] == 'full/disk0.qcow2'
    assert creates[1]['options']['backing-fmt'] == 'qcow2'
    assert mon.commands().count('transaction') == 1, 'an incremental resets no bitmap'
    assert mon.calls[-1][1]['actions'][0]['data']['bitmap-mode'] == 'on-success'


def test_start_refuses_a_missing_bitmap_before_creating_anything(rec: Record,
                                                                 tmp_path: pathlib.Path) -> None:
    mon, notes = FakeMonitor(rec), Notes()
    with pytest.raises(InvalidArgument, match="dirty bitmap 'nightly.full' of disk 'disk1'"):
        launch_group(mon, 'b1', params(
                     step(tmp_path, 'disk1', 'differential', require='nightly.full')), notes)
    assert notes.facts == [] and mon.commands() == ['query-block', 'query-named-block-nodes']


def test_start_refuses_an_existing_target(rec: Record, tmp_path: pathlib.Path) -> None:
    (tmp_path / 'disk1.qcow2').write_text('mine')
    mon, notes = FakeMonitor(rec), Notes()
    with pytest.raises(InvalidArgument, match="target .*disk1.qcow2 of disk 'disk1' already "
                                              'exists; choose another path$'):
        launch_group(mon, 'b1',
                     params(step(tmp_path, 'disk0'), step(tmp_path, 'disk1')), notes)
    assert (tmp_path / 'disk1.qcow2').read_text() == 'mine'
    assert notes.merged()['attached'] == [] and notes.merged()['created_files'] == []
    fmt0, file0 = _nodes.target_node_names('b1.disk0')
    assert [args['node-name'] for command, args in mon.calls if command == 'blockdev-del'] == [
        file0, fmt0], 'what was attached for disk0 is detached again'
    assert 'transaction' not in mon.commands()


def test_a_file_that_appears_before_its_creation_is_not_removed(
        rec: Record, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Something makes disk1's target between its check and its creation: the start fails,
    disk0's target (made by the start) is removed, disk1's (not the start's) is left."""
    real_check = _qmp_images.TARGETS.check

    def check_then_race(job: str, path: str, what: str = 'target') -> _targets.Target:
        checked = real_check(job, path, what)
        if path.endswith('disk1.qcow2'):
            pathlib.Path(path).write_text('theirs')
        return checked

    monkeypatch.setattr(_qmp_images.TARGETS, 'check', check_then_race)
    mon, notes = FakeMonitor(rec), Notes()
    with pytest.raises(_targets.TargetRace, match="target .*disk1.qcow2 appeared while it was "
                                                  'being created'):
        launch_group(mon, 'b1',
                     params(step(tmp_path, 'disk0'), step(tmp_path, 'disk1')), notes)
    assert (tmp_path / 'disk1.qcow2').read_text() == 'theirs'
    assert not (tmp_path / 'disk0.qcow2').exists()
    assert notes.merged()['created_files'] == []


def test_new_targets_are_private(rec: Record, tmp_path: pathlib.Path) -> None:
    before = os.umask(0)
    try:
        launch_group(FakeMonitor(rec), 'b1',
                     params(step(tmp_path, 'disk0'), step(tmp_path, 'disk1'),
                            target_mode=0o640), Notes())
        launch_group(FakeMonitor(rec), 'b2',
                     params(step(tmp_path, 'disk0', member='b2.disk0',
                                 target=str(tmp_path / 'b2.qcow2'))),
                     Notes())
    finally:
        os.umask(before)
    assert [stat.S_IMODE((tmp_path / name).stat().st_mode)
            for name in ('disk0.qcow2', 'disk1.qcow2', 'b2.qcow2')] == [0o640, 0o640, 0o600]


def test_a_refused_transaction_undoes_everything(rec: Record, tmp_path: pathlib.Path) -> None:
    created = tmp_path / 'disk0.qcow2'
    mon, notes = FakeMonitor(rec, {'transaction': rec['errors']['bitmap action grouped']['desc']}), \
        Notes()

    def create_file(command: str, arguments: Record | None = None) -> t.Any:
        if command == 'blockdev-create' and arguments and arguments['options']['driver'] == 'file':
            created.write_text('')
        return FakeMonitor.execute(mon, command, arguments)

    mon.execute = create_file  # type: ignore[method-assign]
    with pytest.raises(BackendError, match='does not support Transaction property'):
        launch_group(mon, 'b1', params(step(tmp_path, 'disk0')), notes)
    assert not created.exists(), 'a target the failed start created is removed'
    assert notes.merged()['attached'] == []


def test_start_probes_the_schema_only_for_perf(rec: Record, tmp_path: pathlib.Path) -> None:
    mon = FakeMonitor(rec)
    launch_group(mon, 'b1', params(
                 step(tmp_path, 'disk0'), perf={'max_workers': 4}, compress=True, speed=8), Notes())
    assert 'query-qmp-schema' in mon.commands()
    data = mon.calls[-1][1]['actions'][0]['data']
    assert (data['x-perf'], data['compress'], data['speed']) == ({'max-workers': 4}, True, 8)
    (tmp_path / 'disk0.qcow2').unlink()  # the first start made it
    mon = FakeMonitor(rec)
    launch_group(mon, 'b1', params(step(tmp_path, 'disk0')), Notes())
    assert 'query-qmp-schema' not in mon.commands()


def test_cleanup_of_an_interrupted_group_start(rec: Record, tmp_path: pathlib.Path) -> None:
    """The next start of the name cleans up after a start that died half-way."""
    made = [tmp_path / 'disk0.qcow2', tmp_path / 'disk1.qcow2']
    for path in made:
        path.write_text('')
    fmt1 = _nodes.target_node_names('b1.disk1')[0]
    mon = FakeMonitor(rec)
    execute = mon.execute

    def missing_fmt1(command: str, arguments: Record | None = None) -> t.Any:
        if command == 'blockdev-del' and arguments == {'node-name': fmt1}:
            raise BackendError(command, 'GenericError', rec['errors']['blockdev-del missing']
                               ['desc'].replace('nonexistent', fmt1))
        return execute(command, arguments)

    mon.execute = missing_fmt1  # type: ignore[method-assign]
    attached = [*_nodes.target_node_names('b1.disk0'), *_nodes.target_node_names('b1.disk1')]
    kept = _qmp_backend.QmpSession(t.cast(t.Any, mon), WAITER).cleanup({
        'state': 'starting', 'attached': attached, 'created_files': [str(p) for p in made]},
        discard=True)
    assert kept == [], "a node QEMU never had is not kept ('Failed to find node ...')"
    assert not any(path.exists() for path in made)


def test_backup_sources_are_the_disks_with_their_bitmaps(rec: Record) -> None:
    session = _qmp_backend.QmpSession(t.cast(t.Any, FakeMonitor(rec)), WAITER)
    found = session.backup_sources('b1', None)
    pairs = [(s['device'], s['node']) for s in found]
    assert pairs == [('disk0', 'disk0-fmt'), ('disk1', 'disk1-fmt')]
    assert found[0]['marks'] == {'nightly': None, 'nightly.full': None}
    assert found[1]['marks'] == {'old': 'is disabled (it does not record writes)',
                                 'nightly': None}
    assert [s['device'] for s in session.backup_sources('b1', ['disk1'])] == ['disk1']
    with pytest.raises(InvalidArgument, match="^job 'b1': "):
        session.backup_sources('b1', ['nodisk'])
