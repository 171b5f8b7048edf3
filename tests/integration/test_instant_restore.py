"""Instant restore: a new disk on an overlay of a backup chain, pulled in by a named stream.

The guest reads the backup through the overlay as soon as the task returns and writes
into the overlay while the stream runs; once the stream has concluded the backup's files
are deleted and the disk, read after QEMU has gone, holds the backup and the guest's
writes. QMP (a VM started by the test) and libvirt (a private libvirtd; the guest's writes
there pass through libvirt's monitor passthrough, made by the test) alike.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from harness import has_pattern, make_image, write_pattern
from harness.chains import backing_file, compare
from harness.domain import Domain
from harness.libvirt import LibvirtHost, domain_xml

SIZE = 16 << 20
MIB = 1 << 20
#: A free PCIe slot for the new disk: a q35 root bus takes no hot-plugged devices.
ROOT_PORT = ['-device', 'pcie-root-port,id=hotplug1,chassis=1,bus=pcie.0']


def backup_chain(workdir: Path) -> tuple[Path, Path]:
    """A full backup (0x11 everywhere) and an incremental on it (0x22 at 4 MiB), the
    incremental's backing file relative, as the backup module writes them."""
    (workdir / 'backup' / 'full').mkdir(parents=True)
    (workdir / 'backup' / 'incr').mkdir()
    full = make_image(workdir / 'backup' / 'full' / 'disk0.qcow2', SIZE, pattern=0x11)
    incr = workdir / 'backup' / 'incr' / 'disk0.qcow2'
    os.system(f'cd {incr.parent} && qemu-img create -q -f qcow2 -b ../full/disk0.qcow2 '
              f'-F qcow2 disk0.qcow2')
    write_pattern(incr, 0x22, 4 * MIB, MIB)
    return full, incr


def holds(image: Path, *ranges: tuple[int, int, int]) -> bool:
    return all(has_pattern(image, pattern, offset, length) for pattern, offset, length in ranges)


#: What the restored disk holds: the backup, and the guest's write at 8 MiB.
BACKUP = ((0x11, 0, 4 * MIB), (0x22, 4 * MIB, MIB), (0x11, 5 * MIB, 3 * MIB))
GUEST = (0x33, 8 * MIB, MIB)
REST = (0x11, 9 * MIB, SIZE - 9 * MIB)


def guest_write(obs: Any, disk: str, pattern: int, offset: int, length: int) -> None:
    """A write through the new disk's device, as the guest makes it."""
    reply = obs.cmd('human-monitor-command', {'command-line': (
        f'qemu-io -d /machine/peripheral/{disk}/virtio-backend '
        f'"write -P {pattern} {offset} {length}"')})
    assert not str(reply).strip(), reply


def vj_nodes(obs: Any) -> list[str]:
    return [n['node-name'] for n in obs.cmd('query-named-block-nodes', {'flat': True})
            if n['node-name'].startswith('vj')]


def test_qmp_instant_restore(workdir, make_image, vm, qmp_observer, run_module):
    full, incr = backup_chain(workdir)
    daemon = vm(disks={'disk0': make_image('disk0.qcow2', SIZE)}, extra_args=ROOT_PORT)
    args = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger')}
    overlay = workdir / 'restored.qcow2'
    restore = dict(args, name='ir', image=str(incr), target=str(overlay), disk='restored',
                   bus='hotplug1', speed=1)
    predicted = run_module('instant_restore', restore, check=True)
    assert not predicted['failed'] and predicted['changed'], predicted
    assert not overlay.exists() and predicted['job']['status'] == 'absent', 'check mode'
    started = run_module('instant_restore', restore)
    assert not started['failed'] and started['changed'], started
    job = started['job']
    assert job['type'] == 'stream' and job['status'] == 'running', job
    assert started['overlay'] == str(overlay)
    obs = qmp_observer(daemon.obs_sock)
    blocks = {b.get('qdev'): b for b in obs.cmd('query-block')}
    inserted = blocks['/machine/peripheral/restored/virtio-backend']['inserted']
    assert inserted['file'] == str(overlay), inserted
    assert oct(overlay.stat().st_mode & 0o777) == '0o600'
    # The disk answers at once with the backup's data, through the overlay.
    assert backing_file(overlay) == str(incr)
    assert holds(overlay, *BACKUP)
    guest_write(obs, 'restored', *GUEST)
    listed = run_module('job_info', dict(args, name=['ir']))
    assert listed['jobs'][0]['type'] == 'stream' and listed['jobs'][0]['status'] == 'running'
    again = run_module('instant_restore', restore)
    assert not again['failed'] and not again['changed'], again
    assert run_module('job', dict(args, name='ir', speed=0))['changed']
    done = run_module('job_wait', dict(args, name=['ir'], timeout=120))
    assert not done['failed'] and done['job']['outcome'] == 'succeeded', done
    assert backing_file(overlay) is None, 'the overlay no longer depends on the backup'
    # (QEMU 7.2 dies on query-named-block-nodes while a concluded stream that pulled a
    # chain waits to be dismissed: dismiss first.)
    dismissed = run_module('job', dict(args, name='ir', state='absent'))
    assert not dismissed['failed'] and dismissed['changed'], dismissed
    assert vj_nodes(obs) == [inserted['node-name']], 'the overlay alone, the disk\'s node'
    rerun = run_module('instant_restore', restore)
    assert not rerun['failed'] and not rerun['changed'], rerun
    assert rerun['job']['outcome'] == 'succeeded'
    for image in (incr, full):
        image.unlink()
    guest_write(obs, 'restored', 0x44, SIZE - MIB, MIB)
    daemon.stop()
    assert holds(overlay, *BACKUP, GUEST, (0x11, 9 * MIB, SIZE - 10 * MIB),
                 (0x44, SIZE - MIB, MIB)), 'read after QEMU has gone, without the backup'


def test_qmp_start_a_vm_on_the_overlay(workdir, vm, run_module):
    """attach: false makes the overlay; a VM started on it runs at once, and the stream is
    started by name with block_job (or with instant_restore and the VM's disk)."""
    full, incr = backup_chain(workdir)
    overlay = workdir / 'boot.qcow2'
    ledger = str(workdir / 'ledger')
    make = {'socket': str(workdir / 'later.sock'), 'ledger_dir': ledger, 'name': 'boot',
            'image': str(incr), 'target': str(overlay), 'attach': False, 'backing': 'relative'}
    made = run_module('instant_restore', make)
    assert not made['failed'] and made['changed'] and made['job']['status'] == 'absent', made
    assert backing_file(overlay) == 'backup/incr/disk0.qcow2'
    assert not run_module('instant_restore', make)['changed']
    daemon = vm(disks={'disk0': overlay})
    args = {'socket': str(daemon.sock), 'ledger_dir': ledger}
    assert holds(overlay, *BACKUP)
    pulled = run_module('instant_restore', dict(args, name='pull-boot', image=str(incr),
                                                target=str(overlay), disk='disk0',
                                                wait='concluded'))
    assert not pulled['failed'] and pulled['changed'], pulled
    assert pulled['job']['outcome'] == 'succeeded'
    full.unlink()
    incr.unlink()
    daemon.stop()
    assert backing_file(overlay) is None and holds(overlay, *BACKUP)


def test_qmp_from_a_backup_by_name(workdir, make_image, vm, qmp_observer, run_module):
    """The backup module's own chain, named by backup and device; the restored disk equals the
    disk as it was at the backup, after the backup's files are gone."""
    disk = make_image('disk0.qcow2', SIZE, pattern=0x11)
    write_pattern(disk, 0x22, 4 * MIB, MIB)
    reference = make_image('reference.qcow2', SIZE, pattern=0x11)
    write_pattern(reference, 0x22, 4 * MIB, MIB)
    daemon = vm(disks={'disk0': disk}, extra_args=ROOT_PORT)
    args = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger')}
    (workdir / 'full').mkdir()
    backed = run_module('backup', dict(args, name='nightly-1', target_dir=str(workdir / 'full'),
                                       bitmap='nightly', wait='concluded'))
    assert not backed['failed'], backed
    overlay = workdir / 'restored.qcow2'
    restore = dict(args, name='ir', backup='nightly-1', device='disk0', target=str(overlay),
                   disk='restored', bus='hotplug1', wait='concluded')
    unknown = run_module('instant_restore', dict(restore, device='disk9'))
    assert unknown['failed'] and not unknown['changed'], unknown
    assert unknown['msg'] == ("job 'ir': backup 'nightly-1' has no disk 'disk9' (its disks: "
                              'disk0)'), unknown['msg']
    assert not overlay.exists()
    done = run_module('instant_restore', restore)
    assert not done['failed'] and done['job']['outcome'] == 'succeeded', done
    obs = qmp_observer(daemon.obs_sock)
    guest_write(obs, 'restored', 0x55, 0, MIB)  # the restored disk, not the VM's disk0
    for image in (workdir / 'full').iterdir():
        image.unlink()
    daemon.stop()
    write_pattern(reference, 0x55, 0, MIB)
    compare(overlay, reference)


def test_qmp_refusals(workdir, make_image, vm, qmp_observer, run_module):
    """Each refusal is one line naming the job; nothing is left behind."""
    full, incr = backup_chain(workdir)
    daemon = vm(disks={'disk0': make_image('disk0.qcow2', SIZE)}, extra_args=ROOT_PORT)
    ledger = workdir / 'ledger'
    args = {'socket': str(daemon.sock), 'ledger_dir': str(ledger), 'name': 'ir',
            'target': str(workdir / 'new.qcow2'), 'disk': 'restored', 'bus': 'hotplug1'}
    obs = qmp_observer(daemon.obs_sock)

    def refused(fragment: str, keep: bool = False, **options: Any) -> dict[str, Any]:
        result = run_module('instant_restore', dict(args, **options))
        assert result['failed'] and not result['changed'], result
        assert result['msg'].startswith("job 'ir': ") and '\n' not in result['msg'], result
        assert 'Traceback' not in result['raw'] and fragment in result['msg'], result['msg']
        assert keep or not (workdir / 'new.qcow2').exists()
        assert not vj_nodes(obs) and 'restored' not in json.dumps(obs.cmd('query-block'))
        assert not any(ledger.rglob('ir.json')), 'no job of that name'
        return result

    refused(f'the backup image {workdir}/missing.qcow2 does not exist',
            image=str(workdir / 'missing.qcow2'))
    refused("device_add failed: GenericError: Bus 'nobus' not found", image=str(incr), bus='nobus')
    refused(f'disk \'disk0\' exists and runs on {workdir}/disk0.qcow2', image=str(incr),
            disk='disk0')
    (workdir / 'new.qcow2').write_bytes(b'mine')
    refused('already exists; set overwrite: true', image=str(incr), keep=True)
    assert (workdir / 'new.qcow2').read_bytes() == b'mine'
    (workdir / 'new.qcow2').unlink()
    full.unlink()
    refused(f'the backup chain of {incr} cannot be opened', image=str(incr))


# -- libvirt ----------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def host(libvirt_host: LibvirtHost) -> LibvirtHost:
    return libvirt_host


@pytest.fixture
def hotplug_domain(host: LibvirtHost, workdir: Path, run_module: Any) -> Any:
    """A transient, paused domain with disk vda and a free PCIe slot for a new disk."""
    made: list[Domain] = []

    def make(disk: Path, persistent: bool = False) -> Domain:
        name = f'{workdir.name}-ir'
        xml = domain_xml(name, {'vda': disk}).replace(
            '</devices>', "<controller type='pci' index='0' model='pcie-root'/>"
            "<controller type='pci' index='9' model='pcie-root-port'/></devices>")
        (workdir / 'dom.xml').write_text(xml)
        if persistent:
            host.virsh('define', str(workdir / 'dom.xml'))
            host.virsh('start', name, '--paused')
        else:
            host.virsh('create', str(workdir / 'dom.xml'), '--paused')
        made.append(Domain(host, workdir, run_module, name))
        return made[-1]
    yield make
    for dom in made:
        host.virsh('destroy', dom.name, check=False)
        host.virsh('undefine', dom.name, check=False)


@pytest.mark.parametrize('persistent', [False, True], ids=['transient', 'persistent'])
def test_libvirt_instant_restore(workdir, make_image, host, hotplug_domain, persistent):
    full, incr = backup_chain(workdir)
    dom = hotplug_domain(make_image('vda.qcow2', SIZE), persistent)
    overlay = workdir / 'restored.qcow2'
    restore = {'name': 'ir', 'image': str(incr), 'target': str(overlay), 'disk': 'vdb',
               'speed': 1}
    started, again = dom.play(('instant_restore', restore), ('instant_restore', restore))
    assert not started['failed'] and started['changed'], started
    assert started['job']['type'] == 'stream' and started['job']['status'] == 'running', started
    assert not again['failed'] and not again['changed'], again
    assert dom.chain('vdb') == [str(overlay), str(incr), str(full)]
    assert holds(overlay, *BACKUP), 'the disk answers at once with the backup\'s data'
    dom.device_write('vdb', *GUEST)  # while the stream runs (speed 1)
    assert dom.run('job_info', name=['ir'])['jobs'][0]['status'] == 'running'
    assert holds(overlay, GUEST) and holds(incr, (0x11, 8 * MIB, MIB)), 'into the overlay'
    sped, done = dom.play(('job', {'name': 'ir', 'speed': 0}),
                          ('job_wait', {'name': ['ir'], 'timeout': 120}))
    assert not sped['failed'] and sped['changed'], sped
    assert not done['failed'] and done['job']['outcome'] == 'succeeded', done
    assert dom.chain('vdb') == [str(overlay)] and backing_file(overlay) is None
    if persistent:
        assert dom.source('vdb', inactive=True) == str(overlay), 'the definition has the disk'
    rerun = dom.run('instant_restore', **restore)
    assert not rerun['failed'] and not rerun['changed'], rerun
    full.unlink()
    incr.unlink()
    dom.device_write('vdb', 0x44, SIZE - MIB, MIB)
    dom.stop()
    assert holds(overlay, *BACKUP, GUEST, (0x11, 9 * MIB, SIZE - 10 * MIB),
                 (0x44, SIZE - MIB, MIB)), 'read after the domain is destroyed, without the backup'


def test_libvirt_refusals(workdir, make_image, host, hotplug_domain):
    _full, incr = backup_chain(workdir)
    dom = hotplug_domain(make_image('vda.qcow2', SIZE))
    args = {'name': 'ir', 'image': str(incr), 'target': str(workdir / 'new.qcow2')}
    results = dom.play(
        ('instant_restore', dict(args, disk='vda')),
        ('instant_restore', dict(args, disk='vdb', image=str(workdir / 'missing.qcow2'))),
        ('instant_restore', dict(args, disk='vdb', bus='hotplug1')),
        ('instant_restore', dict(args, disk='sda')))
    for result in results:
        assert result['failed'] and not result['changed'], result
        assert result['msg'].startswith("job 'ir': ") and '\n' not in result['msg'], result
    assert f"disk 'vda' exists and runs on {workdir}/vda.qcow2" in results[0]['msg']
    assert 'does not exist' in results[1]['msg']
    assert 'bus cannot be used with a libvirt domain' in results[2]['msg']
    assert 'attachDeviceFlags' in results[3]['msg'], results[3]['msg']
    assert not (workdir / 'new.qcow2').exists()
    assert [d.find('target').get('dev') for d in dom.xml().iter('disk')] == ['vda']
    dom.assert_untainted()
