"""The playbooks that chain the roles, over an inventory of several real VMs.

Each role is covered on its own, idempotence included, by its molecule scenario
(extensions/molecule/); these tests run the playbooks as a user would, by their FQCN,
against VMs of an inventory, and run each one twice.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from harness import QMPConnection, assert_ok, has_pattern, recap_changed, write_pattern
from harness.ansible import inventory
from harness.libvirt import LibvirtHost, create_domain, running, taint_messages
from harness.migration import start_destination, start_source
from lxml import etree


def inserted_file(daemon, device: str) -> str:
    with QMPConnection(daemon.obs_sock) as qmp:
        for block in qmp.cmd('query-block'):
            if block.get('qdev', '').startswith(f'/machine/peripheral/{device}/'):
                return str(block['inserted']['file'])
    raise LookupError(device)


def run_state(daemon) -> str:
    with QMPConnection(daemon.obs_sock) as qmp:
        return str(qmp.cmd('query-status')['status'])


def test_move_disks_moves_every_listed_disk(workdir, vm, make_image, run_playbook, ledger_dir):
    old0, old1 = make_image('d0.qcow2', '8M', pattern=0x11), make_image('d1.qcow2', '8M', pattern=0x22)
    daemon = vm(disks={'disk0': old0, 'disk1': old1})
    fast = workdir / 'fast'
    fast.mkdir()
    hosts = inventory(workdir, {'vm1': {'vm_socket': str(daemon.sock), 'vm_disks': [
        {'device': 'disk0', 'path': str(old0)},
        {'device': 'disk1', 'path': str(old1), 'target': str(fast / 'other.qcow2')}]}})
    extra = {'move_disks_target_dir': str(fast), 'move_disks_remove_sources': True,
             'disk_move_ledger_dir': str(ledger_dir)}

    first = run_playbook('vmjobs.qemu.move_disks', extra, '-i', str(hosts))
    assert_ok(first)
    assert recap_changed(first.stdout)['vm1'] > 0
    assert inserted_file(daemon, 'disk0') == str(fast / 'd0.qcow2')
    assert inserted_file(daemon, 'disk1') == str(fast / 'other.qcow2')
    assert has_pattern(fast / 'd0.qcow2', 0x11, 0, '8M')
    assert has_pattern(fast / 'other.qcow2', 0x22, 0, '8M')
    assert not old0.exists() and not old1.exists()

    again = run_playbook('vmjobs.qemu.move_disks', extra, '-i', str(hosts))
    assert_ok(again)
    assert recap_changed(again.stdout) == {'vm1': 0}


def test_merge_snapshots_merges_the_chain(workdir, vm, make_image, run_playbook, ledger_dir):
    base = make_image('base.qcow2', '8M', pattern=0x11)
    snap1 = make_image('snap1.qcow2', '8M', backing=base)
    write_pattern(snap1, 0x22, '2M', '2M')
    snap2 = make_image('snap2.qcow2', '8M', backing=snap1)
    write_pattern(snap2, 0x33, '4M', '2M')
    daemon = vm(disks={'disk0': snap2})
    hosts = inventory(workdir, {'vm1': {'vm_socket': str(daemon.sock), 'vm_snapshots': [
        {'device': 'disk0', 'base': str(base), 'overlays': [str(snap1), str(snap2)]}]}})
    extra = {'snapshot_merge_ledger_dir': str(ledger_dir)}

    first = run_playbook('vmjobs.qemu.merge_snapshots', extra, '-i', str(hosts))
    assert_ok(first)
    assert inserted_file(daemon, 'disk0') == str(base)
    for pattern, offset in ((0x11, '0'), (0x22, '2M'), (0x33, '4M'), (0x11, '6M')):
        assert has_pattern(base, pattern, offset, '2M')
    assert not snap1.exists() and not snap2.exists()

    again = run_playbook('vmjobs.qemu.merge_snapshots', extra, '-i', str(hosts))
    assert_ok(again)
    assert recap_changed(again.stdout) == {'vm1': 0}


def test_a_failed_merge_removes_nothing(workdir, vm, make_image, run_playbook, ledger_dir,
                                        small_fs, run_module):
    small = small_fs('3M')
    base = make_image(small / 'base.qcow2', '16M')
    snap1 = make_image('snap1.qcow2', '16M', backing=base)
    write_pattern(snap1, 0x22, 0, '8M')
    snap2 = make_image('snap2.qcow2', '16M', backing=snap1)
    write_pattern(snap2, 0x33, '8M', '4M')
    daemon = vm(disks={'disk0': snap2})
    hosts = inventory(workdir, {'vm1': {'vm_socket': str(daemon.sock), 'vm_snapshots': [
        {'device': 'disk0', 'base': str(base), 'overlays': [str(snap1), str(snap2)]}]}})

    failed = run_playbook('vmjobs.qemu.merge_snapshots',
                          {'snapshot_merge_ledger_dir': str(ledger_dir)}, '-i', str(hosts))
    assert failed.returncode != 0
    assert 'No space left on device' in failed.stdout
    assert snap1.exists() and snap2.exists(), 'nothing is removed after a failure'
    assert inserted_file(daemon, 'disk0') == str(snap2)
    assert has_pattern(snap2, 0x22, 0, '8M') and has_pattern(snap2, 0x33, '8M', '4M')
    info = run_module('job_info', {'socket': str(daemon.sock), 'ledger_dir': str(ledger_dir),
                                   'include_dismissed': True})
    assert info['jobs'] == [], 'the names are released for a retry'


@pytest.fixture
def vms_of_hosts(workdir):
    """Running sources a and b on hv1 (with destinations waiting), c on hv2."""
    daemons = {name: start_source(workdir, name=name, ram_mb=4) for name in ('a', 'b', 'c')}
    daemons.update({f'{name}-dst': start_destination(workdir, name=f'{name}-dst') for name in 'ab'})
    yield daemons
    for daemon in daemons.values():
        daemon.stop()


def test_evacuate_migrates_the_vms_of_one_hypervisor(workdir, vms_of_hosts, run_playbook,
                                                     ledger_dir):
    d = vms_of_hosts
    hosts = inventory(workdir, {
        'a': {'vm_socket': str(d['a'].sock), 'vm_hypervisor': 'hv1',
              'vm_dest_socket': str(d['a-dst'].sock), 'vm_stop_command': ['kill', str(d['a'].pid)]},
        'b': {'vm_socket': str(d['b'].sock), 'vm_hypervisor': 'hv1',
              'vm_dest_socket': str(d['b-dst'].sock)},
        'c': {'vm_socket': str(d['c'].sock), 'vm_hypervisor': 'hv2'}})
    extra = {'evacuate_from': 'hv1', 'evacuate_parallel': 1, 'evacuate_stamp': '2026-11-21',
             'live_migration_ledger_dir': str(ledger_dir)}

    first = run_playbook('vmjobs.qemu.evacuate', extra, '-i', str(hosts))
    assert_ok(first)
    assert run_state(d['a-dst']) == 'running' and run_state(d['b-dst']) == 'running'
    d['a'].proc.wait(timeout=10)
    assert not d['a'].sock.exists(), 'the stop command ended the source'
    assert run_state(d['b']) == 'postmigrate', 'without a stop command the source stays'
    assert run_state(d['c']) == 'running', 'a VM of another hypervisor stays'
    assert recap_changed(first.stdout)['c'] == 0

    again = run_playbook('vmjobs.qemu.evacuate', extra, '-i', str(hosts))
    assert_ok(again)
    assert recap_changed(again.stdout) == {'a': 0, 'b': 0, 'c': 0}


def test_nightly_backup_starts_a_chain_then_adds_auto_backups(workdir, vm, make_image,
                                                              run_playbook, ledger_dir):
    daemon = vm(disks={'disk0': make_image('d0.qcow2', '8M', pattern=0x44)})
    backups = workdir / 'backup'
    backups.mkdir()
    hosts = inventory(workdir, {'vm1': {'vm_socket': str(daemon.sock)}})

    def night(stamp: str, full_weekday: int = 0) -> subprocess.CompletedProcess[str]:
        return run_playbook('vmjobs.qemu.nightly_backup', {
            'backup_dir': str(backups), 'backup_stamp': stamp, 'backup_ledger_dir': str(ledger_dir),
            'nightly_backup_full_weekday': full_weekday}, '-i', str(hosts))

    assert_ok(night('2026-11-20'))
    second = night('2026-11-21')
    assert_ok(second)
    chain = backups / 'vm1' / 'chain-2026-11-20'
    assert sorted(p.name for p in chain.iterdir()) == ['2026-11-20-full', '2026-11-21-auto']
    assert has_pattern(chain / '2026-11-21-auto' / 'disk0.qcow2', 0x44, 0, '8M')
    assert 'full backup:' not in second.stdout, 'the chain went on: an incremental'

    again = night('2026-11-21')
    assert_ok(again)
    assert recap_changed(again.stdout) == {'vm1': 0}

    # The night's weekday is the stamp's: 2026-11-22 is a Sunday (7), whatever today is.
    assert_ok(night('2026-11-22', full_weekday=7))
    assert sorted(p.name for p in (backups / 'vm1').iterdir()) == ['chain-2026-11-20',
                                                                   'chain-2026-11-22']
    assert_ok(night('2026-11-23', full_weekday=7))
    assert (backups / 'vm1' / 'chain-2026-11-22' / '2026-11-23-auto').is_dir()


def test_a_failed_move_leaves_the_vm_on_its_disk_and_can_be_retried(
        workdir, vm, make_image, run_playbook, ledger_dir, small_fs, run_module):
    old = make_image('d0.qcow2', '16M', pattern=0x55)
    daemon = vm(disks={'disk0': old})
    small = small_fs('4M')
    hosts = inventory(workdir, {'vm1': {'vm_socket': str(daemon.sock), 'vm_disks': [
        {'device': 'disk0', 'path': str(old)}]}})
    extra = {'move_disks_target_dir': str(small), 'move_disks_remove_sources': True,
             'disk_move_ledger_dir': str(ledger_dir)}

    failed = run_playbook('vmjobs.qemu.move_disks', extra, '-i', str(hosts))
    assert failed.returncode != 0
    assert 'No space left on device' in failed.stdout
    assert inserted_file(daemon, 'disk0') == str(old) and old.exists()
    assert list(small.iterdir()) == [], 'the unfinished copy is removed'
    info = run_module('job_info', {'socket': str(daemon.sock), 'ledger_dir': str(ledger_dir),
                                   'include_dismissed': True})
    assert info['jobs'] == [], 'the name is released for a retry'

    (workdir / 'new').mkdir()
    extra['move_disks_target_dir'] = str(workdir / 'new')
    retried = run_playbook('vmjobs.qemu.move_disks', extra, '-i', str(hosts))
    assert_ok(retried)
    assert inserted_file(daemon, 'disk0') == str(workdir / 'new' / 'd0.qcow2')
    assert has_pattern(workdir / 'new' / 'd0.qcow2', 0x55, 0, '16M') and not old.exists()


def test_a_failed_migration_is_forgotten_and_the_guest_stays(workdir, vms_of_hosts, run_playbook,
                                                             run_module, ledger_dir):
    d = vms_of_hosts
    hosts = inventory(workdir, {'a': {'vm_socket': str(d['a'].sock), 'vm_hypervisor': 'hv1',
                                      'vm_dest_uri': 'unix:' + str(workdir / 'nobody.sock')}})
    extra = {'evacuate_from': 'hv1', 'evacuate_stamp': '2026-11-21',
             'live_migration_ledger_dir': str(ledger_dir)}

    failed = run_playbook('vmjobs.qemu.evacuate', extra, '-i', str(hosts))
    assert failed.returncode != 0
    assert "job 'evacuate-a-2026-11-21' failed: Failed to connect" in failed.stdout
    assert run_state(d['a']) == 'running'
    info = run_module('job_info', {'socket': str(d['a'].sock), 'ledger_dir': str(ledger_dir),
                                   'include_dismissed': True})
    assert info['jobs'] == [], 'the name is released for a retry'


@pytest.fixture(scope='module')
def libvirt_host() -> Iterator[LibvirtHost]:
    """A private libvirtd for the libvirt test of this module."""
    with running(LibvirtHost()) as host:
        yield host


def test_merge_then_move_a_libvirt_domain_disk(workdir, make_image, libvirt_host, run_playbook):
    base = make_image('base.qcow2', '8M', pattern=0x11)
    mid = make_image('mid.qcow2', '8M', backing=base)
    write_pattern(mid, 0x22, '2M', '2M')
    top = make_image('top.qcow2', '8M', backing=mid)
    write_pattern(top, 0x33, '4M', '2M')
    name = create_domain(libvirt_host, workdir, f'{workdir.name}-roles', {'vda': top})

    def chain() -> list[str]:
        xml = etree.fromstring(libvirt_host.virsh('dumpxml', name).stdout.encode())
        disk = xml.xpath("devices/disk[target/@dev='vda']")[0]
        return [disk.find('source').get('file')] + [
            s.get('file') for s in disk.xpath('.//backingStore/source') if s.get('file')]

    new = workdir / 'new'
    new.mkdir()
    hosts = inventory(workdir, {'vm1': {
        'vm_domain': name, 'vm_libvirt_uri': libvirt_host.uri,
        'vm_snapshots': [{'device': 'vda', 'base': str(base), 'overlays': [str(mid), str(top)]}],
        'vm_disks': [{'device': 'vda', 'path': str(base), 'target': str(new / 'vda.qcow2')}]}})
    extra = {'snapshot_merge_ledger_dir': str(workdir / 'ledger'),
             'disk_move_ledger_dir': str(workdir / 'ledger'), 'move_disks_remove_sources': True}
    try:
        for playbook in ('vmjobs.qemu.merge_snapshots', 'vmjobs.qemu.move_disks'):
            first = run_playbook(playbook, extra, '-i', str(hosts))
            assert_ok(first)
            assert recap_changed(first.stdout)['vm1'] > 0
            again = run_playbook(playbook, extra, '-i', str(hosts))
            assert_ok(again)
            assert recap_changed(again.stdout) == {'vm1': 0}, playbook
            if playbook.endswith('merge_snapshots'):
                assert chain() == [str(base)] and not mid.exists() and not top.exists()
        assert chain() == [str(new / 'vda.qcow2')] and not base.exists()
        messages = ' '.join(taint_messages(libvirt_host, name))
        assert 'custom monitor' not in messages and 'custom-monitor' not in messages, messages
        libvirt_host.virsh('destroy', name, '--graceful')
        for pattern, offset in ((0x11, '0'), (0x22, '2M'), (0x33, '4M'), (0x11, '6M')):
            assert has_pattern(new / 'vda.qcow2', pattern, offset, '2M')
    finally:
        libvirt_host.virsh('destroy', name, check=False)


def test_a_copy_not_in_sync_in_time_is_switched_to_write_blocking(
        workdir, vm, make_image, run_playbook, ledger_dir, run_module):
    """The speed keeps the copy from being in sync for 4 s at least; the switch is due after 1 s."""
    old = make_image('d0.qcow2', '16M', pattern=0x66)
    daemon = vm(disks={'disk0': old})
    (workdir / 'new').mkdir()
    hosts = inventory(workdir, {'vm1': {'vm_socket': str(daemon.sock), 'vm_disks': [
        {'device': 'disk0', 'path': str(old)}]}})
    extra = {'move_disks_target_dir': str(workdir / 'new'), 'disk_move_speed': 4 << 20,
             'disk_move_converge_timeout': 1, 'disk_move_ledger_dir': str(ledger_dir)}
    with QMPConnection(daemon.obs_sock) as qmp:
        can_switch = {'name': 'block-job-change'} in qmp.cmd('query-commands')

    run = run_playbook('vmjobs.qemu.move_disks', extra, '-i', str(hosts))
    info = run_module('job_info', {'socket': str(daemon.sock), 'ledger_dir': str(ledger_dir),
                                   'include_dismissed': True})
    if can_switch:
        assert_ok(run)
        assert 'Switch the copy to write-blocking' in run.stdout
        assert info['jobs'][0]['copy_mode'] == 'write-blocking', info
        assert inserted_file(daemon, 'disk0') == str(workdir / 'new' / 'd0.qcow2')
        assert has_pattern(workdir / 'new' / 'd0.qcow2', 0x66, 0, '16M')
    else:
        assert run.returncode != 0
        assert 'block-job-change came with QEMU 8.2' in run.stdout
        assert inserted_file(daemon, 'disk0') == str(old), 'the disk stays where it was'
