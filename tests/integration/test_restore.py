"""The restore module against a real QEMU: every point of a chain restored exactly, by name, once.

A VM takes guest writes between a full backup, two incrementals and a differential
(see harness/chains.py); every backup is then restored into a new standalone image by
a qemu-storage-daemon the module starts, and each image must equal the disk as it was
when its backup started (a reference copy taken then). The images are read by
``qemu-img`` in another process once the module has returned and its daemon is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from harness.chains import Disks, compare
from harness.daemons import back_up, no_daemon, refused
from harness.images import corrupt_cluster, has_pattern, image_info
from harness.pagecache import resident_bytes

POINTS = [('f1', 'full'), ('i1', 'incremental'), ('i2', 'incremental'), ('d1', 'differential')]


@pytest.fixture
def disks(vm, make_image, workdir):
    made = Disks(vm, make_image, workdir)
    yield made
    made.close()


@pytest.fixture
def chain(disks, run_module, ledger_dir, workdir) -> dict[str, dict[str, Path]]:
    """Four backups of both disks with writes between them; the disks as each one saw them."""
    expected = {}
    writes = {'i1': [('disk0', 0x33, '1M', '1M'), ('disk1', 0x44, '3M', '512K'),
                     ('disk0', None, '6M', '1M')],
              'i2': [('disk0', 0x55, '1536K', '1M'), ('disk1', 0x66, '0', '64K')],
              'd1': [('disk1', 0x77, '7M', '1M')]}
    for name, mode in POINTS:
        for write in writes.get(name, []):
            disks.write(*write)
        back_up(run_module, disks.daemon.sock, ledger_dir, workdir, name, mode)
        expected[name] = disks.remember(name)
    disks.write('disk0', 0x99, '0', '2M')  # the disk moves on; restores must not see this
    return expected


def restore(run_module, disks: Disks, ledger_dir: Path, name: str, **options: Any) -> dict[str, Any]:
    args = {'socket': str(disks.daemon.sock), 'ledger_dir': str(ledger_dir), 'name': name,
            'wait_timeout': 60}
    args.update(options)
    return run_module('restore', args)


def daemon_pid(socket: str) -> int | None:
    pidfile = Path(socket).parent / 'qsd.pid'
    return int(pidfile.read_text()) if pidfile.exists() else None


def test_each_point_restores_exactly_and_once(chain, disks, run_module, ledger_dir, workdir):
    out = workdir / 'restored'
    out.mkdir()
    for name, _mode in POINTS:
        for device in ('disk0', 'disk1'):
            target = out / f'{name}-{device}.qcow2'
            result = restore(run_module, disks, ledger_dir, f'r-{name}-{device}', backup=name,
                             device=device, target=str(target))
            assert result['changed'] and not result.get('failed'), result
            job = result['job']
            assert (job['type'], job['status'], job['outcome'], job['target_state']) == (
                'restore', 'concluded', 'succeeded', 'closed'), job
            assert job['target'] == str(target) and job['backup'] == name
            assert daemon_pid(result['socket']) is None, 'the daemon has exited'
            assert not Path(result['socket']).exists()
            info = image_info(target)
            assert info.get('backing-filename') is None, 'standalone'
            assert info['format'] == 'qcow2'
            assert oct(os.stat(target).st_mode & 0o777) == '0o600'
            compare(target, chain[name][device])

    again = restore(run_module, disks, ledger_dir, 'r-i1-disk0', backup='i1', device='disk0',
                    target=str(out / 'i1-disk0.qcow2'))
    assert not again['changed'] and again['job']['outcome'] == 'succeeded', again
    info = run_module('job_info', {'socket': again['socket'], 'ledger_dir': str(ledger_dir),
                                   'name': 'r-i1-disk0', 'include_dismissed': True})
    assert [(j['name'], j['type'], j['outcome']) for j in info['jobs']] == [
        ('r-i1-disk0', 'restore', 'succeeded')], info


def test_restore_an_image_to_raw_without_a_vm(chain, run_module, ledger_dir, workdir):
    target = workdir / 'i2.raw'
    result = run_module('restore', {'ledger_dir': str(ledger_dir), 'name': 'from-file',
                                    'image': str(workdir / 'i2' / 'disk1.qcow2'),
                                    'target': str(target), 'target_format': 'raw'})
    assert result['changed'] and result['job']['outcome'] == 'succeeded', result
    assert result['job']['source'] == str(workdir / 'i2' / 'disk1.qcow2')
    assert image_info(target)['format'] == 'raw'
    compare(target, chain['i2']['disk1'])


def test_refusals_change_nothing(chain, disks, run_module, ledger_dir, workdir):
    target = workdir / 'r.qcow2'
    msg = refused(restore(run_module, disks, ledger_dir, 'r1', backup='nope', device='disk0',
                          target=str(target)), "job 'r1'", "no backup named 'nope'", 'f1, i1')
    msg = refused(restore(run_module, disks, ledger_dir, 'r1', backup='i1', device='disk9',
                          target=str(target)), "job 'r1'", "no disk 'disk9'", 'disk0, disk1')
    missing_dir = workdir / 'nowhere' / 'r.qcow2'
    msg = refused(restore(run_module, disks, ledger_dir, 'r1', backup='i1', device='disk0',
                          target=str(missing_dir)), "job 'r1'", 'does not exist')
    assert not target.exists()
    no_daemon(ledger_dir)

    target.write_bytes(b'mine')
    msg = refused(restore(run_module, disks, ledger_dir, 'r1', backup='i1', device='disk0',
                          target=str(target)), "job 'r1'", 'already exists', 'overwrite')
    assert target.read_bytes() == b'mine'
    no_daemon(ledger_dir)
    # Nothing of the refused starts was kept: the same name starts now.
    done = restore(run_module, disks, ledger_dir, 'r1', backup='i1', device='disk0',
                   target=str(target), overwrite=True)
    assert done['changed'] and done['job']['outcome'] == 'succeeded', done
    compare(target, chain['i1']['disk0'])
    del msg


def test_a_missing_chain_image_is_named(chain, disks, run_module, ledger_dir, workdir):
    full = workdir / 'f1' / 'disk0.qcow2'
    full.rename(workdir / 'away.qcow2')
    target = workdir / 'r.qcow2'
    refused(restore(run_module, disks, ledger_dir, 'r2', backup='i2', device='disk0',
                    target=str(target)), "job 'r2'", str(full))
    assert not target.exists()
    no_daemon(ledger_dir)


def test_a_failed_copy_leaves_no_image(chain, disks, run_module, ledger_dir, workdir):
    corrupt_cluster(workdir / 'i1' / 'disk0.qcow2', 1 << 20)  # written by the guest before i1
    target = workdir / 'r.qcow2'
    result = restore(run_module, disks, ledger_dir, 'r3', backup='i2', device='disk0',
                     target=str(target))
    refused(result, "job 'r3' failed", 'Input/output error')
    assert result['job']['outcome'] == 'failed' and result['job']['target_state'] == 'removed'
    assert not target.exists()
    no_daemon(ledger_dir)
    again = restore(run_module, disks, ledger_dir, 'r3', backup='i2', device='disk0',
                    target=str(target))
    refused(again, "job 'r3' failed", 'Input/output error')
    assert not again['changed'] and not target.exists()


def test_check_mode_and_a_restore_waited_for_elsewhere(chain, disks, run_module, ledger_dir,
                                                       workdir):
    target = workdir / 'later.qcow2'
    args = {'socket': str(disks.daemon.sock), 'ledger_dir': str(ledger_dir), 'name': 'r4',
            'backup': 'd1', 'device': 'disk1', 'target': str(target)}
    predicted = run_module('restore', args, True)
    assert predicted['changed'] and predicted['job']['status'] == 'absent', predicted
    assert not target.exists()
    no_daemon(ledger_dir)

    started = run_module('restore', dict(args, wait='none'))
    assert started['changed'] and started['job']['type'] == 'restore', started
    waited = run_module('job_wait', {'socket': started['socket'], 'ledger_dir': str(ledger_dir),
                                     'name': 'r4', 'state': 'concluded', 'timeout': 60})
    assert waited['job']['outcome'] == 'succeeded', waited
    assert waited['job']['target_state'] == 'closed', 'the wait closed the target'
    compare(target, chain['d1']['disk1'])
    again = run_module('restore', args)  # dismisses the job and stops the daemon: a change
    assert again['changed'] and again['job']['outcome'] == 'succeeded', again
    assert again['job']['dismissed']
    no_daemon(ledger_dir)
    assert not run_module('restore', args)['changed']
    predicted = run_module('restore', args, True)
    assert not predicted['changed'], predicted


def test_a_daemon_killed_leaves_no_image(chain, disks, run_module, ledger_dir, workdir):
    target = workdir / 'killed.qcow2'
    args = {'socket': str(disks.daemon.sock), 'ledger_dir': str(ledger_dir), 'name': 'r5',
            'backup': 'i2', 'device': 'disk0', 'target': str(target)}
    started = run_module('restore', dict(args, wait='none'))
    assert started['changed'], started
    pid = daemon_pid(started['socket'])
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # whether the copy had concluded or not, nothing closed it
    again = run_module('restore', args)
    refused(again, "job 'r5' failed", 'exited before the job closed its target')
    assert again['job']['target_state'] == 'removed' and not target.exists(), again
    no_daemon(ledger_dir)


def test_a_restore_is_never_seen_ready_and_any_task_settles_it(
        chain, disks, run_module, ledger_dir, workdir):
    """The copy (a mirror) is complete at READY, but without a wait nobody has completed it:
    it reads ``running``. A ``job`` task that comes then (a cancel) finds the copy done, as
    a backup job's would have been: it completes it and closes the target first."""
    target = workdir / 'late.qcow2'
    args = {'socket': str(disks.daemon.sock), 'ledger_dir': str(ledger_dir), 'name': 'r6',
            'backup': 'i1', 'device': 'disk1', 'target': str(target)}
    started = run_module('restore', dict(args, wait='none'))
    assert started['changed'], started
    daemon = {'socket': started['socket'], 'ledger_dir': str(ledger_dir), 'name': 'r6'}
    seen = run_module('job_info', daemon)['jobs'][0]
    assert seen['type'] == 'restore' and seen['status'] == 'running', seen
    assert not seen['ready'] and seen['target_state'] == 'open', seen
    late = run_module('job', dict(daemon, state='canceled'))
    assert late['changed'] and late['job']['outcome'] == 'succeeded', late
    assert late['job']['target_state'] == 'closed', late
    compare(target, chain['i1']['disk1'])
    again = run_module('restore', args)  # dismisses the job and stops the daemon
    assert again['job']['outcome'] == 'succeeded' and again['job']['dismissed'], again
    no_daemon(ledger_dir)
    compare(target, chain['i1']['disk1'])


def test_two_tasks_with_the_same_name_run_one_restore(run_module, ledger_dir, workdir,
                                                      make_image):
    """Two tasks start the same restore at once: one daemon, one copy, both report it."""
    source = make_image('src.qcow2', '256M', pattern=0x5A)
    target = workdir / 'out.qcow2'
    results: dict[int, dict[str, Any]] = {}

    def task(index: int) -> None:
        results[index] = run_module('restore', {'ledger_dir': str(ledger_dir), 'name': 'same',
                                                'image': str(source), 'target': str(target)})
    tasks = [threading.Thread(target=task, args=(index,)) for index in range(2)]
    for thread in tasks:
        thread.start()
    for thread in tasks:
        thread.join()
    for result in results.values():
        assert not result.get('failed') and result['job']['outcome'] == 'succeeded', result
    assert sorted(r['changed'] for r in results.values()) in ([False, True], [True, True])
    no_daemon(ledger_dir)
    compare(target, source)


def test_the_image_is_written_back_while_the_task_waits(
        run_module, ledger_dir, workdir, make_image):
    """What the copy wrote reaches the disk during the wait and leaves the page cache.

    ``qemu-img convert`` of the same image, for contrast, leaves its copy in the cache.
    """
    size = 256 << 20
    source = make_image('big.qcow2', size=size, pattern=0x5A)
    target = workdir / 'restored.qcow2'
    result = run_module('restore', {'ledger_dir': str(ledger_dir), 'name': 'big',
                                    'image': str(source), 'target': str(target),
                                    'wait_timeout': 120})
    assert result['job']['outcome'] == 'succeeded' and result['elapsed'] > 0, result
    converted = workdir / 'converted.qcow2'
    subprocess.run(['qemu-img', 'convert', '-O', 'qcow2', str(source), str(converted)],
                   check=True, timeout=120)
    assert resident_bytes(converted) > size // 2
    assert resident_bytes(target) < size // 2, 'most of it was written back and dropped'
    assert has_pattern(target, 0x5A, 0, size)
