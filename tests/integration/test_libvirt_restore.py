"""The restore module on a libvirt domain: a backup restored into a new image, attached as a disk.

The backups are made through libvirt (checkpoints); the restore reads the chain in a
qemu-storage-daemon of its own and attaches the image through libvirt's API, live and in
the persistent definition. The image is compared with a copy of the disk taken when the
backup started.
"""

from __future__ import annotations

import shutil

import pytest
from harness import write_pattern
from harness.chains import compare
from harness.libvirt import LibvirtHost


@pytest.fixture(scope='module')
def host(libvirt_host: LibvirtHost) -> LibvirtHost:
    return libvirt_host


def test_restore_a_backup_and_attach_it(host, workdir, make_image, domain):
    disk = make_image('a.qcow2', '16M', pattern=0x0A)
    dom = domain({'vda': disk}, persistent=True)
    for name, mode in (('f1', 'full'), ('i1', 'incremental')):
        if name == 'i1':
            host.virsh('destroy', dom.name, '--graceful')
            write_pattern(disk, 0x0C, '1M', '1M')
            host.virsh('start', dom.name, '--paused')
        shutil.copyfile(disk, workdir / f'{name}.ref.qcow2')
        (workdir / name).mkdir()
        done = dom.ok('backup', name=name, mode=mode, bitmap='nightly',
                      target_dir=str(workdir / name), wait='concluded')
        assert done['job']['outcome'] == 'succeeded', done
    target = workdir / 'restored.qcow2'
    dry = dom.run('restore', check=True, name='r1', backup='i1', device='vda',
                  target=str(target), attach='vdb')
    assert dry['changed'] and not dry.get('failed'), dry
    assert not target.exists() and not dom.xml().xpath("devices/disk[target/@dev='vdb']"), dry
    first, again, clash = dom.play(
        ('restore', {'name': 'r1', 'backup': 'i1', 'device': 'vda', 'target': str(target),
                     'attach': 'vdb'}),
        ('restore', {'name': 'r1', 'backup': 'i1', 'device': 'vda', 'target': str(target),
                     'attach': 'vdb'}),
        ('restore', {'name': 'r2', 'backup': 'f1', 'device': 'vda',
                     'target': str(workdir / 'other.qcow2'), 'attach': 'vdb'}))
    assert first['changed'] and first['job']['outcome'] == 'succeeded', first
    assert first['attached'] == {'target': 'vdb', 'changed': True}
    assert dom.source('vdb') == str(target) and dom.source('vdb', inactive=True) == str(target)
    assert not again['changed'] and again['attached'] == {'target': 'vdb', 'changed': False}, again
    assert clash['failed'] and "job 'r2': the domain has a disk vdb already" in clash['msg'], clash
    assert '\n' not in clash['msg'] and not (workdir / 'other.qcow2').exists()
    host.virsh('destroy', dom.name, '--graceful')  # the image is closed; compare it alone
    compare(target, workdir / 'i1.ref.qcow2')
    dom.stopped = True
