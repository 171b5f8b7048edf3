"""The vmjobs.qemu.restore role through playbooks/restore.yml, on the backup role's chains:
offline into new images and instantly on overlays, the newest or a given backup, all or
listed disks; every restored image equals the disk as it was at that backup."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from harness import REPO, assert_ok, recap_changed
from harness.chains import Disks, backing_file, compare
from harness.images import write_pattern
from harness.libvirt import domain_xml, taint_messages
from lxml import etree

BACKUP = REPO / 'playbooks' / 'backup.yml'
RESTORE = REPO / 'playbooks' / 'restore.yml'
#: Two free PCIe slots for the instantly restored disks.
PORTS = ['-device', 'pcie-root-port,id=hp1,chassis=1,bus=pcie.0',
         '-device', 'pcie-root-port,id=hp2,chassis=2,bus=pcie.0']


@pytest.fixture
def vm1(vm, make_image, workdir):
    def with_ports(**options: Any):
        return vm(**dict(options, extra_args=[*options.get('extra_args', []), *PORTS]))
    made = Disks(with_ports, make_image, workdir, name='vm1')
    yield made
    made.close()


def test_restore_role_offline_and_instant(vm1, workdir, run_playbook, ledger_dir):
    backups = workdir / 'backup'
    inventory = workdir / 'inventory.ini'
    inventory.write_text(
        '[vms]\n'
        f'vm1 backup_socket={vm1.daemon.sock} vm_socket={vm1.daemon.sock}\n'
        '[vms:vars]\n'
        f'backup_dir={backups}\nrestore_backup_dir={backups}\n'
        f'backup_ledger_dir={ledger_dir}\nrestore_ledger_dir={ledger_dir}\n')

    def play(playbook, **extra) -> subprocess.CompletedProcess[str]:
        return run_playbook(playbook, extra, '-i', str(inventory))

    assert_ok(play(BACKUP, backup_mode='full', backup_stamp='2026-11-21'))
    full = vm1.remember('full')
    vm1.write('disk0', 0x55, '2M', '1M')
    assert_ok(play(BACKUP, backup_mode='incremental', backup_stamp='2026-11-22'))
    incremental = vm1.remember('incremental')

    offline = workdir / 'offline'
    offline.mkdir(mode=0o700)
    first = play(RESTORE, restore_target_dir=str(offline))
    assert_ok(first)
    assert recap_changed(first.stdout)['vm1'] > 0
    for dev in ('disk0', 'disk1'):
        assert backing_file(offline / f'{dev}.qcow2') is None
        compare(offline / f'{dev}.qcow2', incremental[dev])
    again = play(RESTORE, restore_target_dir=str(offline))
    assert_ok(again)
    assert recap_changed(again.stdout) == {'vm1': 0}, again.stdout

    older = workdir / 'older'
    older.mkdir(mode=0o700)
    assert_ok(play(RESTORE, restore_target_dir=str(older), restore_disks=['disk0'],
                   restore_backup='backup-vm1-2026-11-21-full'))
    assert [p.name for p in older.iterdir()] == ['disk0.qcow2'], 'the listed disk only'
    compare(older / 'disk0.qcow2', full['disk0'])

    missing = play(RESTORE, restore_target_dir=str(older), restore_backup='2026-11-23-full')
    assert missing.returncode != 0
    assert 'no backup 2026-11-23-full of vm1 under' in missing.stdout, missing.stdout
    assert '(backups: 2026-11-21-full, 2026-11-22-incremental)' in missing.stdout

    instant = workdir / 'instant'
    instant.mkdir(mode=0o700)
    attach_as = {'disk0': {'disk': 'restored0', 'bus': 'hp1'},
                 'disk1': {'disk': 'restored1', 'bus': 'hp2'}}
    third = play(RESTORE, restore_target_dir=str(instant), restore_mode='instant',
                 restore_attach_as=attach_as)
    assert_ok(third)
    assert vm1.obs.cmd('query-jobs') == [], 'the streams concluded and were dismissed'
    used = {b['qdev'].split('/')[3]: b['inserted']['file'] for b in vm1.obs.cmd('query-block')
            if b.get('inserted')}
    assert used['restored0'] == str(instant / 'disk0.qcow2')
    assert used['restored1'] == str(instant / 'disk1.qcow2')
    fourth = play(RESTORE, restore_target_dir=str(instant), restore_mode='instant',
                  restore_attach_as=attach_as)
    assert_ok(fourth)
    assert recap_changed(fourth.stdout) == {'vm1': 0}, fourth.stdout
    vm1.daemon.stop()
    for dev in ('disk0', 'disk1'):
        assert backing_file(instant / f'{dev}.qcow2') is None
        compare(instant / f'{dev}.qcow2', incremental[dev])


def test_restore_role_instant_on_a_libvirt_domain(workdir, make_image, libvirt_host, run_playbook,
                                                  ledger_dir):
    """The backup role's layout (made here with qemu-img), restored instantly into a domain
    as a new disk vdb through libvirt's API, then offline as well."""
    run_dir = workdir / 'backup' / 'vm1' / 'chain-2026-11-21'
    (run_dir / '2026-11-21-full').mkdir(parents=True)
    (run_dir / '2026-11-22-incremental').mkdir()
    full = make_image(run_dir / '2026-11-21-full' / 'vda.qcow2', '8M', pattern=0x11)
    incr = run_dir / '2026-11-22-incremental' / 'vda.qcow2'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', '../2026-11-21-full/vda.qcow2',
                    '-F', 'qcow2', 'vda.qcow2'], cwd=incr.parent, check=True)
    write_pattern(incr, 0x22, '2M', '1M')
    expected = make_image('expected.qcow2', '8M', pattern=0x11)
    write_pattern(expected, 0x22, '2M', '1M')
    name = f'{workdir.name}-rr'
    xml = domain_xml(name, {'vda': make_image('vda.qcow2', '8M')}).replace(
        '</devices>', "<controller type='pci' index='0' model='pcie-root'/>"
        "<controller type='pci' index='9' model='pcie-root-port'/></devices>")
    (workdir / 'dom.xml').write_text(xml)
    libvirt_host.virsh('create', str(workdir / 'dom.xml'), '--paused')
    inventory = workdir / 'inventory.ini'
    inventory.write_text(f'[vms]\nvm1 vm_domain={name} vm_libvirt_uri={libvirt_host.uri}\n')
    instant, offline = workdir / 'instant', workdir / 'offline'
    instant.mkdir(mode=0o700)
    offline.mkdir(mode=0o700)
    extra = {'restore_backup_dir': str(workdir / 'backup'), 'restore_ledger_dir': str(ledger_dir),
             'restore_mode': 'instant', 'restore_target_dir': str(instant),
             'restore_attach_as': {'vda': 'vdb'}}
    try:
        refused = run_playbook(RESTORE, dict(extra, restore_attach_as={}), '-i', str(inventory))
        assert refused.returncode != 0
        assert 'under libvirt, give each restored disk its new target' in refused.stdout
        first = run_playbook(RESTORE, extra, '-i', str(inventory))
        assert_ok(first)
        again = run_playbook(RESTORE, extra, '-i', str(inventory))
        assert_ok(again)
        assert recap_changed(again.stdout) == {'vm1': 0}, again.stdout
        disk = etree.fromstring(libvirt_host.virsh('dumpxml', name).stdout.encode()).xpath(
            "devices/disk[target/@dev='vdb']")[0]
        assert [s.get('file') for s in disk.iter('source')] == [str(instant / 'vda.qcow2')], \
            'the stream concluded: the disk no longer has the backup below it'
        assert full.exists()
        assert_ok(run_playbook(RESTORE, dict(extra, restore_mode='offline',
                                             restore_target_dir=str(offline)),
                               '-i', str(inventory)))
        messages = ' '.join(taint_messages(libvirt_host, name))
        assert 'custom monitor' not in messages and 'custom-monitor' not in messages, messages
        libvirt_host.virsh('destroy', name, '--graceful')
        for image in (instant / 'vda.qcow2', offline / 'vda.qcow2'):
            assert backing_file(image) is None
            compare(image, expected)
    finally:
        libvirt_host.virsh('destroy', name, check=False)
