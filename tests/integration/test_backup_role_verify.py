"""The backup role's backup_verify: each disk's chain verified after the backup, a damaged
image named in the role's failure."""

from __future__ import annotations

import pytest
from harness import REPO, assert_ok
from harness.chains import Disks
from harness.images import corrupt_cluster

PLAYBOOK = REPO / 'playbooks' / 'backup.yml'


@pytest.fixture
def disks(vm, make_image, workdir):
    made = Disks(vm, make_image, workdir, name='vm1')
    yield made
    made.close()


def test_role_verifies_each_chain(disks, workdir, run_playbook, ledger_dir):
    backups = workdir / 'backup'
    inventory = workdir / 'inventory.ini'
    inventory.write_text(f'[vms]\nvm1 backup_socket={disks.daemon.sock} backup_dir={backups} '
                         f'backup_ledger_dir={ledger_dir} backup_verify=true\n')

    def play(mode: str, stamp: str):
        return run_playbook(PLAYBOOK, {'backup_mode': mode, 'backup_stamp': stamp}, '-i',
                            str(inventory))

    first = play('full', '2026-11-21')
    assert_ok(first)
    assert 'Verify each disk' in first.stdout and 'disk1' in first.stdout, first.stdout
    full = backups / 'vm1' / 'chain-2026-11-21' / '2026-11-21-full' / 'disk0.qcow2'
    corrupt_cluster(full, 0)
    disks.write('disk0', 0x42, '1M', '1M')
    second = play('incremental', '2026-11-22')
    assert second.returncode != 0
    assert (f"job 'verify-backup-vm1-2026-11-22-incremental-disk0': image {full}: qemu-img check "
            'found') in second.stdout, second.stdout
