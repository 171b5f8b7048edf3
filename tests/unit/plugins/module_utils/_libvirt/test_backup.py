# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_libvirt/backup.py: a plan of the client's as one
``backupBegin``, over the scripted domain of ``test_backend``."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt import (
    backup as _libvirt_backup,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt import (
    binding as _libvirt,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt.start import Starter
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils._libvirt.test_backend import (
    DIR,
    FakeDomain,
    FakeTargets,
)
from lxml import etree

Record = dict[str, t.Any]
CHECKPOINTS = [
    ('<domaincheckpoint><name>full</name><disks><disk name="vda" checkpoint="bitmap"/>'
     '<disk name="vdb" checkpoint="bitmap"/></disks></domaincheckpoint>'),
    ('<domaincheckpoint><name>inc1</name><disks><disk name="vda" checkpoint="bitmap"/>'
     '<disk name="vdb" checkpoint="no"/></disks></domaincheckpoint>'),
]


class CheckpointDomain(FakeDomain):
    def checkpoints(self) -> list[str]:
        return CHECKPOINTS


def step(node: str, require: str | None, backing: str | None = None) -> Record:
    return {'device': node, 'node': node, 'target': f'{DIR}/{node}.qcow2',
            'format': 'qcow2', 'backing': backing, 'backing_format': 'qcow2',
            'require': require}


def params(**values: t.Any) -> Record:
    return dict({'mode': 'incremental', 'bitmap': 'nightly', 'compress': False, 'perf': None,
                 'speed': None, 'target_mode': None}, **values)


def test_the_sources_are_the_disks_with_the_checkpoints_that_track_them() -> None:
    domain = CheckpointDomain()
    found = _libvirt_backup.sources(t.cast(t.Any, domain), 'b1', None)
    assert found == [{'device': 'vda', 'node': 'vda', 'marks': {'full': None, 'inc1': None}},
                     {'device': 'vdb', 'node': 'vdb', 'marks': {'full': None}}]
    (listed,) = _libvirt_backup.sources(t.cast(t.Any, domain), 'b1', ['vdb'])
    assert listed['node'] == 'vdb'
    with pytest.raises(InvalidArgument, match="^job 'b1': the domain has no disk 'vdz'"):
        _libvirt_backup.sources(t.cast(t.Any, domain), 'b1', ['vdz'])


def start(domain: FakeDomain, targets: FakeTargets, name: str, given: Record,
          plan: list[Record]) -> list[Record]:
    notes: list[Record] = []
    _libvirt_backup.start(Starter(t.cast(t.Any, domain), t.cast(t.Any, targets)), name, given,
                          plan, lambda **facts: notes.append(facts))
    return notes


def test_each_disk_reads_the_changes_since_its_own_base() -> None:
    domain, targets = CheckpointDomain(), FakeTargets()
    plan = [step('vda', 'inc1', f'{DIR}/inc1/vda.qcow2'), step('vdb', 'full', f'{DIR}/full/vdb.qcow2')]
    (note,) = start(domain, targets, 'inc2', params(), plan)
    assert note['checkpoint'] == 'inc2' and note['backup_disks'] == ['vda', 'vdb']
    assert note['created_files'] == [f'{DIR}/vda.qcow2', f'{DIR}/vdb.qcow2']
    assert [backing for _path, _fmt, _size, backing in targets.formatted] == [
        ('inc1/vda.qcow2', 'qcow2'), ('full/vdb.qcow2', 'qcow2')]
    command, backup, checkpoint, flags = domain.calls[-1]
    assert command == 'backupBegin' and flags == _libvirt.BACKUP_BEGIN_REUSE_EXTERNAL
    disks = etree.fromstring(backup).findall('disks/disk')
    assert [(d.get('name'), d.get('backupmode'), d.get('incremental')) for d in disks] == [
        ('vda', 'incremental', 'inc1'), ('vdb', 'incremental', 'full')]
    assert [(d.get('name'), d.get('checkpoint'))
            for d in etree.fromstring(checkpoint).iter('disk')] == [('vda', 'bitmap'),
                                                                    ('vdb', 'bitmap')]


def test_a_full_copy_and_a_differential_that_creates_no_checkpoint() -> None:
    domain, targets = CheckpointDomain(), FakeTargets()
    (note,) = start(domain, targets, 'd1', params(mode='differential'),
                    [step('vda', 'full', f'{DIR}/full/vda.qcow2')])
    assert note['checkpoint'] is None and domain.calls[-1][2] is None
    start(domain, targets, 'f2', params(mode='full'), [step('vdb', None)])
    disk = etree.fromstring(domain.calls[-1][1]).find('disks/disk')
    assert (disk.get('backupmode'), disk.get('incremental')) == ('full', None)
    assert [(d.get('name'), d.get('checkpoint'))
            for d in etree.fromstring(domain.calls[-1][2]).iter('disk')] == [('vda', 'no'),
                                                                             ('vdb', 'bitmap')]


@pytest.mark.parametrize('option, message', [
    ('compress', 'compress and perf cannot be used with a libvirt domain'),
    ('speed', 'libvirt sets no speed for backups'),
])
def test_options_libvirt_lacks_are_refused_before_anything(option: str, message: str) -> None:
    domain, targets = CheckpointDomain(), FakeTargets()
    with pytest.raises(InvalidArgument, match=f"^job 'b1': {message}$"):
        start(domain, targets, 'b1', params(**{option: 1}), [step('vda', None)])
    assert not targets.made and not domain.calls
