"""What ``succeeded`` promises: a target that is complete, closed and durable when the task says so.

Every target is read the way a user reads it: by another process, without ``-U`` (which
fails while QEMU holds the file), before any dismissal, and again after QEMU is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from harness.chains import compare
from harness.images import check_closed, compare_closed, image_info


def conn(daemon, workdir: Path) -> dict[str, Any]:
    return {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger')}


def kill9(daemon) -> None:
    os.kill(daemon.pid, signal.SIGKILL)
    daemon.proc.wait(10)


def our_nodes(obs) -> list[str]:
    return [n['node-name'] for n in obs.cmd('query-named-block-nodes', flat=True)
            if n['node-name'].startswith('vj')]


def wait_for_status(obs, name: str, status: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while [j['status'] for j in obs.cmd('query-jobs') if j['id'] == name] != [status]:
        assert time.monotonic() < deadline, f'{name} never became {status}'
        time.sleep(0.05)


def assert_durable(target: Path, source: Path, daemon, obs) -> None:
    """Complete and closed now, before dismissal; and still so after ``kill -9`` of QEMU."""
    assert our_nodes(obs) == [], 'the target was detached when the job concluded'
    report = check_closed(target)
    assert report.get('corruptions', 0) == 0 and report.get('leaks', 0) == 0, report
    compare_closed(target, source)
    assert [j['status'] for j in obs.cmd('query-jobs')] == ['concluded'], 'not dismissed'
    kill9(daemon)
    compare_closed(target, source)


def test_a_backup_is_closed_and_durable_when_the_wait_returns(workdir, make_image, vm,
                                                              qmp_observer, run_module):
    disk = make_image('disk0.qcow2', pattern=0x5A)
    daemon = vm(disks={'disk0': disk})
    obs = qmp_observer(daemon.obs_sock)
    target = workdir / 'backup.qcow2'
    args = dict(conn(daemon, workdir), name='b1', type='backup', device='disk0',
                target=str(target), wait='concluded')
    result = run_module('block_job', args)
    assert not result['failed'], result.get('msg')
    assert (result['changed'], result['job']['outcome']) == (True, 'succeeded')
    assert result['job']['target_state'] == 'closed'
    again = run_module('block_job', args)
    assert (again['changed'], again['job']['target_state']) == (False, 'closed')
    assert_durable(target, disk, daemon, obs)


def test_job_info_tells_an_open_target_and_job_wait_closes_it(workdir, make_image, qsd,
                                                              qmp_observer, run_module):
    disk = make_image('disk0.qcow2', pattern=0x5A)
    daemon = qsd(disks={'disk0': disk})
    obs = qmp_observer(daemon.obs_sock)
    target = workdir / 'backup.qcow2'
    started = run_module('block_job', dict(conn(daemon, workdir), name='b1', type='backup',
                                           device='disk0', target=str(target)))
    assert started['changed'] and not started['failed'], started.get('msg')
    wait_for_status(obs, 'b1', 'concluded')
    info = run_module('job_info', dict(conn(daemon, workdir), name=['b1']))
    assert (info['changed'], info['jobs'][0]['target_state']) == (False, 'open')
    assert len(our_nodes(obs)) == 2, 'job_info changes nothing'
    waited = run_module('job_wait', dict(conn(daemon, workdir), name='b1'))
    assert not waited['failed'], waited.get('msg')
    assert waited['changed'] is True, 'job_wait closed the target'
    assert waited['job'] == waited['jobs'][0] and waited['job']['target_state'] == 'closed'
    repeat = run_module('job_wait', dict(conn(daemon, workdir), name='b1'))
    assert repeat['changed'] is False
    assert_durable(target, disk, daemon, obs)


@pytest.mark.parametrize('fmt', ['qcow2', 'raw'])
def test_a_created_image_is_closed_when_the_wait_returns(workdir, qsd, make_image, qmp_observer,
                                                         run_module, fmt):
    daemon = qsd(disks={'disk0': make_image('disk0.qcow2')})
    obs = qmp_observer(daemon.obs_sock)
    target = workdir / f'new.{fmt}'
    result = run_module('block_job', dict(conn(daemon, workdir), name='c1', type='create',
                                          target=str(target), target_format=fmt, size='32M',
                                          wait='concluded'))
    assert not result['failed'], result.get('msg')
    assert (result['job']['outcome'], result['job']['target_state']) == ('succeeded', 'closed')
    assert our_nodes(obs) == []
    if fmt == 'qcow2':
        assert check_closed(target).get('corruptions', 0) == 0
    kill9(daemon)
    info = image_info(target)
    assert (info['format'], info['virtual-size']) == (fmt, 32 << 20)


def test_a_mirror_canceled_while_ready_leaves_a_complete_closed_copy(workdir, make_image, vm,
                                                                     qmp_observer, run_module):
    disk = make_image('disk0.qcow2', pattern=0x3C)
    daemon = vm(disks={'disk0': disk})
    obs = qmp_observer(daemon.obs_sock)
    target = workdir / 'copy.qcow2'
    ready = run_module('block_job', dict(conn(daemon, workdir), name='m1', type='mirror',
                                         device='disk0', target=str(target), wait='ready'))
    assert not ready['failed'] and ready['job']['target_state'] == 'open', ready
    canceled = run_module('job', dict(conn(daemon, workdir), name='m1', state='canceled'))
    assert not canceled['failed'], canceled.get('msg')
    assert (canceled['changed'], canceled['job']['outcome']) == (True, 'canceled')
    assert canceled['job']['target_state'] == 'closed', 'the in-sync copy is kept, closed'
    assert run_module('job', dict(conn(daemon, workdir), name='m1', state='canceled'))[
        'changed'] is False
    assert_durable(target, disk, daemon, obs)


def test_a_mirror_canceled_before_ready_leaves_no_file(workdir, make_image, qsd, qmp_observer,
                                                       run_module):
    daemon = qsd(disks={'disk0': make_image('disk0.qcow2', pattern=0x3C)})
    obs = qmp_observer(daemon.obs_sock)
    target = workdir / 'copy.qcow2'
    started = run_module('block_job', dict(conn(daemon, workdir), name='m1', type='mirror',
                                           device='disk0', target=str(target), speed=65536))
    assert started['changed'] and target.exists()
    canceled = run_module('job', dict(conn(daemon, workdir), name='m1', state='canceled'))
    assert not canceled['failed'], canceled.get('msg')
    assert (canceled['job']['outcome'], canceled['job']['target_state']) == ('canceled',
                                                                             'removed')
    assert not target.exists(), 'an unfinished copy cannot pass for a finished one'
    assert our_nodes(obs) == []


def test_a_failed_backup_on_a_full_filesystem_lets_it_unmount(workdir, make_image, qsd,
                                                              qmp_observer, run_module, small_fs):
    daemon = qsd(disks={'disk0': make_image('disk0.qcow2', pattern=0x77)})
    obs = qmp_observer(daemon.obs_sock)
    mount = small_fs('4M')
    target = mount / 'backup.qcow2'
    result = run_module('block_job', dict(conn(daemon, workdir), name='b1', type='backup',
                                          device='disk0', target=str(target), wait='concluded'))
    assert result['failed'] and 'No space left on device' in result['msg'], result
    assert result['job']['name'] == 'b1', 'a failed start still returns its one record'
    assert (result['job']['outcome'], result['job']['target_state']) == ('failed', 'removed')
    assert list(mount.iterdir()) == [], 'no partial image is left looking like a backup'
    assert our_nodes(obs) == []
    umount = subprocess.run(['umount', str(mount)], capture_output=True, text=True, check=False)
    assert umount.returncode == 0, umount.stderr


def test_every_member_of_a_backup_is_closed_full_then_incremental(disks, run_module, workdir):
    def backup(name: str, mode: str) -> dict[str, Any]:
        folder = workdir / name
        folder.mkdir()
        return run_module('backup', dict(conn(disks.daemon, workdir), name=name, mode=mode,
                                         bitmap='nightly', target_dir=str(folder),
                                         wait='concluded'))

    full = backup('f1', 'full')
    assert full['job']['outcome'] == 'succeeded', full
    assert full['job']['target_state'] == 'closed'
    at_full = disks.remember('f1')
    disks.write('disk0', 0x33, '1M', '1M')
    inc = backup('i1', 'incremental')
    assert inc['job']['outcome'] == 'succeeded', inc
    at_inc = disks.remember('i1')
    assert disks.attached_by_collection() == [], 'every member target was detached'
    for name, expected in (('f1', at_full), ('i1', at_inc)):
        for dev, reference in expected.items():
            image = workdir / name / f'{dev}.qcow2'
            assert check_closed(image).get('corruptions', 0) == 0
            compare(image, reference)  # no -U: the chain is closed
    kill9(disks.daemon)
    for dev, reference in at_inc.items():
        compare(workdir / 'i1' / f'{dev}.qcow2', reference)


def test_a_paused_job_is_reported_at_once_not_waited_for(workdir, make_image, qsd, run_module):
    daemon = qsd(disks={'disk0': make_image('disk0.qcow2', pattern=0x3C)})
    args = conn(daemon, workdir)
    assert run_module('block_job', dict(args, name='m1', type='mirror', device='disk0',
                                        target=str(workdir / 'slow.qcow2'), speed=65536))['changed']
    paused = run_module('job', dict(args, name='m1', state='paused'))
    assert paused['changed'] and paused['job']['status'] == 'paused', paused
    waited = run_module('job_wait', dict(args, name='m1', state='ready', timeout=120))
    assert waited['failed'], waited
    assert "job 'm1' (mirror) is paused" in waited['msg'], waited['msg']
    assert 'resume it first (job state: running)' in waited['msg']
    assert waited['job']['status'] == 'paused'
    completed = run_module('job', dict(args, name='m1', state='completed', wait_timeout=120))
    assert completed['failed'] and 'resume it first' in completed['msg'], completed['msg']

    run_module('job', dict(args, name='m1', state='running'))
    run_module('job', dict(args, name='m1', speed=0))
    ready = run_module('job_wait', dict(args, name='m1', state='ready'))
    assert not ready['failed'], ready['msg']
    standby = run_module('job', dict(args, name='m1', state='paused'))
    assert standby['job']['status'] == 'standby', standby
    refused = run_module('job', dict(args, name='m1', state='completed', wait_timeout=120))
    assert refused['failed'], refused
    assert "job 'm1' (mirror) is standby" in refused['msg'] and 'state: running' in refused['msg']
    assert refused['changed'] is False and refused['job']['status'] == 'standby'


def test_a_failed_start_returns_its_one_record(workdir, make_image, vm, run_module):
    daemon = vm(disks={'disk0': make_image('disk0.qcow2')})
    result = run_module('block_job', dict(conn(daemon, workdir), name='x1', type='mirror',
                                          device='nope', target=str(workdir / 'x.qcow2')))
    assert result['failed'] and "job 'x1'" in result['msg']
    assert (result['job']['name'], result['job']['status']) == ('x1', 'absent')
    assert 'jobs' not in result
    migration = run_module('migration', dict(conn(daemon, workdir), name='mig1',
                                             dest_uri='tcp:127.0.0.1:9', wait='concluded',
                                             wait_timeout=60))
    assert migration['failed'], migration
    assert migration['job']['name'] == 'mig1' and 'jobs' not in migration
    assert migration['job']['outcome'] == 'failed' and migration['job']['error'], migration['job']


def test_a_full_ledger_filesystem_fails_the_start_before_qemu_is_asked(
        workdir, make_image, qsd, qmp_observer, run_module, small_fs):
    daemon = qsd(disks={'disk0': make_image('disk0.qcow2', pattern=0x5A)})
    ledger = small_fs('1M', name='ledger-fs')
    args = {'socket': str(daemon.sock), 'ledger_dir': str(ledger)}
    first = run_module('block_job', dict(args, name='b0', type='stream', device='disk0',
                                         wait='concluded'))
    assert not first['failed'], first.get('msg')
    filled = subprocess.run(['dd', 'if=/dev/zero', f'of={ledger / "filler"}', 'bs=64k'],
                            capture_output=True, text=True, check=False)
    assert 'No space left on device' in filled.stderr, filled.stderr
    target = workdir / 'b1.qcow2'
    result = run_module('block_job', dict(args, name='b1', type='backup', device='disk0',
                                          target=str(target)))
    assert result['failed'], result
    assert result['msg'].startswith("job 'b1': cannot write ledger record "), result['msg']
    assert result['msg'].endswith('No space left on device') and '\n' not in result['msg']
    assert result['job']['status'] == 'absent'
    # b0, a concluded stream, left QEMU when its wait saw it conclude; b1 never started
    assert [j['id'] for j in qmp_observer(daemon.obs_sock).cmd('query-jobs')] == []
    assert not target.exists()
