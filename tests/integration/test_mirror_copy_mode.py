"""A mirror's copy mode: write-blocking from the start, or switched while it runs."""

from __future__ import annotations

from harness import has_pattern


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
