"""The vmjobs.qemu.backup role through playbooks/backup.yml, for a group of two real VMs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from harness import REPO, assert_ok, recap_changed
from harness.chains import Disks, backing_file, compare
from harness.nbd import compare_raw, free_port, make_tls_dir

PLAYBOOK = REPO / 'playbooks' / 'backup.yml'


@pytest.fixture
def vms(vm, make_image, workdir):
    made = {'vm1': Disks(vm, make_image, workdir, name='vm1'),
            'vm2': Disks(vm, make_image, workdir, patterns=(0x33, 0x44), name='vm2')}
    yield made
    for disks in made.values():
        disks.close()


def test_role_backs_up_a_group_of_vms_in_chains(vms, workdir, run_playbook, ledger_dir,
                                                small_fs):
    backups, small = workdir / 'backup', small_fs('12M')
    inventory = workdir / 'inventory.ini'
    inventory.write_text(
        '[vms]\n'
        f"vm1 backup_socket={vms['vm1'].daemon.sock} backup_dir={backups}\n"
        f"vm2 backup_socket={vms['vm2'].daemon.sock} backup_dir={small} "
        "backup_disks='[\"disk1\"]'\n"
        '[vms:vars]\n'
        f'backup_ledger_dir={ledger_dir}\n')

    def play(**extra) -> subprocess.CompletedProcess[str]:
        return run_playbook(PLAYBOOK, dict({'backup_keep_chains': 1}, **extra), '-i',
                            str(inventory))

    def run_dir(vm: str, chain: str, run: str) -> Path:
        return (small if vm == 'vm2' else backups) / vm / f'chain-{chain}' / run

    first = play(backup_mode='full', backup_stamp='2026-11-21')
    assert_ok(first)
    assert recap_changed(first.stdout)['vm1'] > 0 and recap_changed(first.stdout)['vm2'] > 0
    full = {vm: disks.remember(f'{vm}-full') for vm, disks in vms.items()}
    assert sorted(p.name for p in run_dir('vm1', '2026-11-21', '2026-11-21-full').iterdir()) == [
        'disk0.qcow2', 'disk1.qcow2']
    assert [p.name for p in run_dir('vm2', '2026-11-21', '2026-11-21-full').iterdir()] == [
        'disk1.qcow2'], 'only the listed disk'
    for disks in vms.values():
        assert disks.obs.cmd('query-jobs') == [] and disks.attached_by_collection() == [], \
            'the role dismisses the backup'

    again = play(backup_mode='full', backup_stamp='2026-11-21')
    assert_ok(again)
    assert recap_changed(again.stdout) == {'vm1': 0, 'vm2': 0}, again.stdout

    # vm2's backups live on a small file system: its incremental runs out of space.
    vms['vm1'].write('disk0', 0x55, '2M', '1M')
    vms['vm2'].write('disk1', 0x66, '0', '8M')
    third = play(backup_mode='incremental', backup_stamp='2026-11-22')
    assert third.returncode != 0
    assert "job 'backup-vm2-2026-11-22-incremental' failed: disk1: No space left on device" \
        in third.stdout, third.stdout
    assert not run_dir('vm2', '2026-11-21', '2026-11-22-incremental').exists(), \
        'the failed backup is removed'
    assert vms['vm2'].obs.cmd('query-jobs') == [] and vms['vm2'].attached_by_collection() == []
    inc = run_dir('vm1', '2026-11-21', '2026-11-22-incremental')
    assert backing_file(inc / 'disk0.qcow2') == '../2026-11-21-full/disk0.qcow2'
    incremental = vms['vm1'].remember('vm1-incremental')
    for dev in ('disk0', 'disk1'):
        compare(run_dir('vm1', '2026-11-21', '2026-11-21-full') / f'{dev}.qcow2', full['vm1'][dev])
        compare(inc / f'{dev}.qcow2', incremental[dev])
    compare(run_dir('vm2', '2026-11-21', '2026-11-21-full') / 'disk1.qcow2', full['vm2']['disk1'])

    vms['vm1'].write('disk1', 0x77, '4M', '1M')
    assert_ok(play(backup_mode='full', backup_stamp='2026-11-23', backup_hosts='vm1'))
    assert [p.name for p in (backups / 'vm1').iterdir()] == ['chain-2026-11-23'], \
        'the older chain is deleted whole'
    compare(run_dir('vm1', '2026-11-23', '2026-11-23-full') / 'disk1.qcow2',
            vms['vm1'].remember('vm1-full2')['disk1'])


READER = """
import json, subprocess, sys
backup = json.loads(sys.argv[-1])
for disk in backup['disks']:
    subprocess.run(['qemu-img', 'convert', '-O', 'raw', disk['uri'], disk['device'] + '.raw'],
                   check=True)
sys.exit(int(sys.argv[1]))
"""


def test_role_pulls_with_the_readers_exit_status_as_verdict(vms, workdir, run_playbook,
                                                            ledger_dir):
    reader = workdir / 'reader.py'
    reader.write_text(READER)
    inventory = workdir / 'inventory.ini'
    inventory.write_text(f"[vms]\nvm1 backup_socket={vms['vm1'].daemon.sock} "
                         f"backup_dir={workdir / 'pulled'} backup_ledger_dir={ledger_dir}\n")
    disks = vms['vm1']

    def play(mode: str, stamp: str, status: int) -> subprocess.CompletedProcess[str]:
        extra = {'backup_delivery': 'pull', 'backup_mode': mode, 'backup_stamp': stamp,
                 'backup_pull_reader': ['python3', str(reader), str(status)]}
        return run_playbook(PLAYBOOK, extra, '-i', str(inventory))

    at_full = disks.remember('pull-full')
    assert_ok(play('full', '2026-11-21', 0))
    for dev in ('disk0', 'disk1'):
        compare_raw(workdir / 'pulled' / 'vm1' / f'{dev}.raw', at_full[dev])
    again = play('full', '2026-11-21', 0)
    assert_ok(again)
    assert recap_changed(again.stdout) == {'vm1': 0}, again.stdout
    assert disks.bitmaps('disk0')['vmjobs-backup']['count'] == 0

    disks.write('disk0', 0x66, '1M', '1M')
    failed = play('incremental', '2026-11-22', 3)
    assert failed.returncode != 0 and 'the reader failed' in failed.stdout, failed.stdout
    assert disks.obs.cmd('query-block-exports') == [] and disks.obs.cmd('query-jobs') == []
    assert disks.attached_by_collection() == []
    assert disks.bitmaps('disk0')['vmjobs-backup']['count'] == 2**20, \
        'a failed read leaves the chain as it was'


READER_TLS = """
import json, sys
from pathlib import Path
from urllib.parse import urlsplit
sys.path.insert(0, sys.argv[1])
from harness.nbd import read_tls
tls, backup = Path(sys.argv[2]), json.loads(sys.argv[-1])
for disk in backup['disks']:
    where = urlsplit(disk['uri'])
    assert where.scheme == 'nbds', disk['uri']
    read = read_tls(where.hostname, where.port, disk['export'], tls, Path(disk['device'] + '.raw'))
    if read.returncode:
        sys.exit(read.stderr)
"""


def test_role_pulls_over_tcp_with_tls(vms, workdir, run_playbook, ledger_dir):
    tls = make_tls_dir(workdir / 'tls')
    reader = workdir / 'reader_tls.py'
    reader.write_text(READER_TLS)
    disks = vms['vm1']
    inventory = workdir / 'inventory.ini'
    inventory.write_text(f"[vms]\nvm1 backup_socket={disks.daemon.sock} "
                         f"backup_dir={workdir / 'pulled'} backup_ledger_dir={ledger_dir}\n")
    at_full = disks.remember('tcp-full')
    result = run_playbook(PLAYBOOK, {
        'backup_delivery': 'pull', 'backup_mode': 'full', 'backup_stamp': '2026-11-21',
        'backup_nbd_address': f'127.0.0.1:{free_port()}', 'backup_nbd_tls_dir': str(tls),
        'backup_pull_reader': ['python3', str(reader), str(Path(__file__).parent), str(tls)]},
        '-i', str(inventory))
    assert_ok(result)
    for dev in ('disk0', 'disk1'):
        compare_raw(workdir / 'pulled' / 'vm1' / f'{dev}.raw', at_full[dev])
    assert disks.obs.cmd('query-block-exports') == [] and disks.obs.cmd('query-jobs') == []
    assert disks.attached_by_collection() == []
    objects = [o['name'] for o in disks.obs.cmd('qom-list', path='/objects')]
    assert 'vmjobs-nbd-tls' not in objects, 'the server and its credentials go at the end'
