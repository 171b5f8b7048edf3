"""Self-test of the integration harness (no collection modules needed)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import (
    Daemon,
    QMPCommandError,
    QMPConnection,
    QMPError,
    assert_ok,
    has_pattern,
    image_info,
)
from harness.compat import compat_args
from harness.procs import stop_strays


def test_qsd_nodes_and_observer(make_image: Callable[..., Path], qsd: Callable[..., Daemon],
                                qmp_observer: Callable[[Path], QMPConnection]) -> None:
    base = make_image('base.qcow2', pattern=0x5A)
    top = make_image('top.qcow2', backing=base)
    assert image_info(top)['backing-filename'] == str(base)
    assert has_pattern(top, 0x5A, 0, '64M') and not has_pattern(top, 0x00, 0, '64k')

    daemon = qsd(disks={'disk0': top})
    assert daemon.pidfile.read_text().strip() == str(daemon.pid)

    obs = qmp_observer(daemon.obs_sock)
    names = {node['node-name'] for node in obs.cmd('query-named-block-nodes')}
    assert {'disk0', 'disk0-file'} <= names
    assert obs.cmd('query-jobs') == []
    with pytest.raises(QMPCommandError, match='CommandNotFound'):
        obs.cmd('no-such-command')


def test_vm_devices(make_image: Callable[..., Path], vm: Callable[..., Daemon],
                    qmp_observer: Callable[[Path], QMPConnection]) -> None:
    daemon = vm(disks={'disk0': make_image('d0.qcow2'), 'disk1': make_image('d1.qcow2', size='1M')})
    obs = qmp_observer(daemon.obs_sock)
    assert obs.cmd('query-status')['status'] == 'prelaunch'
    block = {dev['qdev']: dev['inserted']['node-name'] for dev in obs.cmd('query-block')}
    assert block == {'/machine/peripheral/disk0/virtio-backend': 'disk0-fmt',
                     '/machine/peripheral/disk1/virtio-backend': 'disk1-fmt'}
    names = {node['node-name'] for node in obs.cmd('query-named-block-nodes')}
    assert {'disk0-fmt', 'disk0-file', 'disk1-fmt', 'disk1-file'} <= names


def test_vm_rejects_deprecated_qmp(make_image: Callable[..., Path], vm: Callable[..., Daemon],
                                   qmp_observer: Callable[[Path], QMPConnection]) -> None:
    """The VMs run with -compat deprecated-input=reject: a deprecated command fails."""
    if not compat_args('qemu-system-x86_64', '-compat'):
        pytest.skip('this qemu-system-x86_64 has no -compat option')
    daemon = vm(disks={'disk0': make_image('d0.qcow2')})
    obs = qmp_observer(daemon.obs_sock)
    # drive-backup is deprecated (blockdev-backup replaces it) on every QEMU tested
    with pytest.raises(QMPCommandError, match='(?i)CommandNotFound.*deprecated'):
        obs.cmd('drive-backup', {'device': 'disk0-fmt', 'target': str(daemon.sock.parent / 'b.qcow2'),
                                 'sync': 'full'})


def test_busy_socket_blocks_other_clients(qsd: Callable[..., Daemon],
                                          busy_socket: Callable[[Path], Any]) -> None:
    daemon = qsd()
    with busy_socket(daemon.sock) as holder:
        assert holder.cmd('query-jobs') == []
        with pytest.raises(QMPError, match='timed out'):
            QMPConnection(daemon.sock, timeout=0.5).connect()
    with QMPConnection(daemon.sock) as conn:
        assert conn.cmd('query-jobs') == []


def test_job_events_on_observer(make_image: Callable[..., Path], workdir: Path,
                                qsd: Callable[..., Daemon], small_fs: Callable[..., Path],
                                qmp_observer: Callable[[Path], QMPConnection]) -> None:
    """A mirror to a too-small filesystem fails with ENOSPC; the observer sees it."""
    src = make_image('src.qcow2', size='32M', pattern=0x11)
    small = small_fs('4M')
    target = make_image(small / 'dst.qcow2', size='32M')
    daemon = qsd(disks={'src': src, 'dst': target})
    obs = qmp_observer(daemon.obs_sock)
    obs.cmd('blockdev-mirror', {'job-id': 'j1', 'device': 'src', 'target': 'dst', 'sync': 'full',
                                'auto-dismiss': False})
    obs.wait_event('JOB_STATUS_CHANGE', timeout=30, id='j1', status='concluded')
    (job,) = obs.cmd('query-jobs')
    assert job['id'] == 'j1' and 'No space left' in job['error']
    obs.cmd('job-dismiss', id='j1')
    assert obs.cmd('query-jobs') == []


def test_playbook_runs(run_playbook: Callable[..., Any]) -> None:
    result = run_playbook("""
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.debug:
        msg: "hello {{ who }} from {{ ansible_playbook_python }}"
""", {'who': 'harness'})
    assert_ok(result)
    assert 'hello harness from' in result.stdout


def test_run_module_parses_json(run_module: Callable[..., dict[str, Any]]) -> None:
    result = run_module('ansible.builtin.ping', {'data': 'pong!'})
    assert result['ping'] == 'pong!' and result['rc'] == 0
    result = run_module('ansible.builtin.fail', {'msg': 'boom'})
    assert result['failed'] and result['msg'] == 'boom' and result['rc'] != 0


def test_guest_io_writes_through_the_device_and_reads_back(make_image, vm, qmp_observer):
    from harness.guest import guest_has, guest_write
    daemon = vm(disks={'disk0': make_image('disk0.qcow2', pattern=0x5A)})
    obs = qmp_observer(daemon.obs_sock)
    guest_write(obs, 'disk0', 0x33, '1M', '1M')
    assert guest_has(obs, 'disk0', 0x33, '1M', '1M')
    assert guest_has(obs, 'disk0', 0x5A, 0, '1M')
    assert not guest_has(obs, 'disk0', 0x5A, '1M', '1M'), 'a wrong pattern is noticed'


def test_a_daemon_left_running_under_the_workdir_is_stopped(tmp_path: Path) -> None:
    # as the restore module starts its daemon: daemonized, pidfile under the ledger
    under = tmp_path / 'ledger' / 'daemons' / 'abc'
    under.mkdir(parents=True)
    pidfile = under / 'qsd.pid'
    subprocess.run(['qemu-storage-daemon', '--daemonize', '--pidfile', str(pidfile),
                    '--chardev', f'socket,id=m,path={under}/qmp.sock,server=on,wait=off',
                    '--monitor', 'chardev=m'], check=True, timeout=30)
    pid = int(pidfile.read_text())
    assert Path(f'/proc/{pid}').exists()
    stopped = stop_strays(tmp_path)
    assert len(stopped) == 1 and str(pidfile) in stopped[0]
    assert not Path(f'/proc/{pid}').exists() or \
        Path(f'/proc/{pid}/stat').read_text().split(')')[1].split()[0] == 'Z'
    assert stop_strays(tmp_path) == []
