"""Internal snapshots of a libvirt domain through libvirt's snapshot API, as named jobs.

The disk is changed with the domain shut off, reverted through the module, and read
from outside once the domain is shut off again.
"""

from __future__ import annotations

import pytest
from harness import has_pattern, write_pattern
from harness.libvirt import LibvirtHost


@pytest.fixture(scope='module')
def host(libvirt_host: LibvirtHost) -> LibvirtHost:
    return libvirt_host


def test_save_revert_delete_by_name(host, workdir, make_image, domain):
    disk = make_image('disk.qcow2', '16M', pattern=0x31)
    dom = domain({'vda': disk}, persistent=True)
    save = ('snapshot', {'name': 'save-1', 'tag': 'before'})
    saved, again = dom.play(save, save)
    assert saved['changed'] and saved['job']['type'] == 'snapshot-save', saved
    assert saved['job']['outcome'] == 'succeeded', saved
    assert not again['changed'] and again['job']['outcome'] == 'succeeded', again
    assert host.virsh('snapshot-list', dom.name, '--name').stdout.split() == ['before']

    host.virsh('destroy', dom.name, '--graceful')
    write_pattern(disk, 0x32, '1M', '1M')
    reverted, listed = dom.play(('snapshot', {'name': 'revert-1', 'tag': 'before',
                                              'state': 'reverted'}),
                                ('job_info', {'type': ['snapshot-load', 'snapshot-save']}))
    assert reverted['changed'] and reverted['job']['outcome'] == 'succeeded', reverted
    assert sorted(j['name'] for j in listed['jobs']) == ['revert-1', 'save-1'], listed
    host.virsh('destroy', dom.name, '--graceful')
    assert has_pattern(disk, 0x31, 0, '16M'), 'the revert brought the disk back'

    deleted, gone = dom.play(('snapshot', {'name': 'drop-1', 'tag': 'before', 'state': 'absent'}),
                             ('snapshot', {'name': 'drop-2', 'tag': 'before', 'state': 'absent'}))
    assert deleted['changed'] and deleted['job']['outcome'] == 'succeeded', deleted
    assert host.virsh('snapshot-list', dom.name, '--name').stdout.split() == []
    assert gone['failed'] and "job 'drop-2': snapshotLookupByName failed: " in gone['msg'], gone
    dom.stopped = True


def test_raw_disks_and_vmstate_are_refused(host, workdir, make_image, domain):
    dom = domain({'vda': make_image('raw.img', '16M', fmt='raw')})
    refused, chosen = dom.play(('snapshot', {'name': 's1', 'tag': 't'}),
                               ('snapshot', {'name': 's2', 'tag': 't', 'vmstate': 'vda'}))
    assert refused['failed'] and not refused['changed'], refused
    assert refused['msg'] == ("job 's1': disk 'vda' is a raw image, which cannot hold internal "
                              'snapshots; only qcow2 images can'), refused
    assert chosen['failed'] and 'libvirt chooses the image' in chosen['msg'], chosen
    assert host.virsh('snapshot-list', dom.name, '--name').stdout.split() == []
    assert dom.run('job_info', include_dismissed=True)['jobs'] == []
