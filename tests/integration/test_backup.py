"""block_job type=backup through ansible-playbook against qemu-storage-daemon and a VM."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from harness import assert_ok, has_pattern
from harness.guest import guest_write

PLAYBOOKS = Path(__file__).parent / 'playbooks'


def attached_by_us(obs) -> list[str]:
    return [n['node-name'] for n in obs.cmd('query-named-block-nodes', flat=True)
            if n['node-name'].startswith('vj')]


@pytest.mark.parametrize('kind', ['qsd', 'vm'])
def test_backup_lifecycle(kind, request, workdir, make_image, qmp_observer, run_playbook):
    disk = make_image('disk0.qcow2', pattern=0x5A)
    daemon = request.getfixturevalue(kind)(disks={'disk0': disk})
    target = workdir / 'backup.qcow2'
    assert_ok(run_playbook(PLAYBOOKS / 'backup.yml', {
        'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger'),
        'target': str(target)}))
    obs = qmp_observer(daemon.obs_sock)
    assert obs.cmd('query-jobs') == []
    assert attached_by_us(obs) == [], 'target nodes left attached after dismissal'
    subprocess.run(['qemu-img', 'compare', '-U', str(disk), str(target)], check=True)
    if kind == 'vm':
        guest_write(obs, 'disk0', 0x11, 0, '1M')
    assert has_pattern(target, 0x5A, 0, '64M'), 'the backup is the point in time it started'
