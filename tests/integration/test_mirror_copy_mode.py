"""A mirror's copy mode: write-blocking from the start, or switched while it runs, and a
mirror that converges under a guest writing faster than the background copy."""

from __future__ import annotations

import threading

from harness import has_pattern

#: The disk's virtio device, whose block backend sits above any filter a job inserts.
DEVICE = '/machine/peripheral/disk0/virtio-backend'


def has_command(obs, command: str) -> bool:
    return {'name': command} in obs.cmd('query-commands')


def test_write_blocking_from_the_start(workdir, make_image, vm, qmp_observer, run_module):
    disk = make_image('disk0.qcow2', '16M', pattern=0x5A)
    daemon = vm(disks={'disk0': disk})
    args = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger')}
    target = workdir / 'copy.qcow2'
    ready = run_module('block_job', dict(args, name='wb', type='mirror', device='disk0',
                                         target=str(target), copy_mode='write-blocking',
                                         wait='ready'))
    assert not ready['failed'] and ready['job']['status'] == 'ready', ready
    assert ready['job']['copy_mode'] == 'write-blocking'
    obs = qmp_observer(daemon.obs_sock)
    if has_command(obs, 'block-job-change'):  # QEMU reports the sync from 8.2 on
        assert ready['job']['actively_synced'] is True, ready['job']
    canceled = run_module('job', dict(args, name='wb', state='canceled'))
    assert canceled['job']['outcome'] == 'canceled' and canceled['job']['target_state'] == 'closed'
    daemon.stop()
    assert has_pattern(target, 0x5A, 0, '16M'), 'a complete copy, read after QEMU has gone'


def test_switching_a_running_mirror(workdir, make_image, vm, qmp_observer, run_module):
    daemon = vm(disks={'disk0': make_image('disk0.qcow2', '64M', pattern=0x11)})
    args = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger')}
    started = run_module('block_job', dict(args, name='bg', type='mirror', device='disk0',
                                           target=str(workdir / 'bg.qcow2'), speed=1))
    assert started['job']['status'] == 'running' and 'copy_mode' not in started['job'], started
    switched = run_module('job', dict(args, name='bg', copy_mode='write-blocking'))
    if has_command(qmp_observer(daemon.obs_sock), 'block-job-change'):
        assert not switched['failed'] and switched['changed'], switched
        assert switched['job']['copy_mode'] == 'write-blocking'
        again = run_module('job', dict(args, name='bg', copy_mode='write-blocking'))
        assert not again['failed'] and not again['changed'], again
        back = run_module('job', dict(args, name='bg', copy_mode='background'))
        assert back['failed'] and 'from background to write-blocking only' in back['msg'], back
    else:
        assert switched['failed'] and not switched['changed'], switched
        assert switched['msg'] == (
            "job 'bg': this QEMU cannot change the copy mode of a running mirror "
            '(block-job-change came with QEMU 8.2); start the mirror with copy_mode: '
            'write-blocking instead'), switched['msg']
        info = run_module('job_info', dict(args, name=['bg']))
        assert 'copy_mode' not in info['jobs'][0], 'nothing changed'
    canceled = run_module('job', dict(args, name='bg', state='canceled'))
    assert not canceled['failed'] and canceled['job']['outcome'] == 'canceled', canceled


def test_write_blocking_converges_under_continuous_guest_writes(workdir, make_image, vm,
                                                                qmp_observer, run_module):
    """A guest rewrites the disk without pause, faster than the mirror's background copy
    (held to 1 MiB/s); write-blocking still brings the mirror to ready, and the copy that
    takes over holds every write, read after QEMU has gone."""
    size, chunk = 8 << 20, 64 << 10
    daemon = vm(disks={'disk0': make_image('disk0.qcow2', size, pattern=0x21)})
    obs = qmp_observer(daemon.obs_sock)
    stop, last = threading.Event(), {}

    def guest() -> None:  # through the device, like the guest: above the mirror's filter
        count = 0
        while not stop.is_set():
            offset, pattern = (count * 7 % (size // chunk)) * chunk, 0x40 + count % 64
            out = obs.cmd('human-monitor-command', {
                'command-line': f'qemu-io -d {DEVICE} "write -P {pattern} {offset} {chunk}"'})
            if str(out).strip():
                raise AssertionError(out)
            last[offset] = pattern
            count += 1

    writer = threading.Thread(target=guest)
    writer.start()
    try:
        args = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger')}
        target = workdir / 'copy.qcow2'
        ready = run_module('block_job', dict(args, name='busy', type='mirror', device='disk0',
                                             target=str(target), speed=1 << 20,
                                             copy_mode='write-blocking', wait='ready',
                                             wait_timeout=600))
        assert not ready['failed'] and ready['job']['status'] == 'ready', ready
        assert len(last) > 0, 'the guest wrote while the mirror ran'
        done = run_module('job', dict(args, name='busy', state='completed'))
        assert not done['failed'] and done['job']['outcome'] == 'succeeded', done
    finally:
        stop.set()
        writer.join(60)
    daemon.stop()
    for offset, pattern in last.items():
        assert has_pattern(target, pattern, offset, chunk), f'{offset}: the last write is lost'
