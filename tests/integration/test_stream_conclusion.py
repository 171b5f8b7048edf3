"""A concluded stream leaves QEMU at once: later tasks read the block graph and the VM lives on.

QEMU 7.2 crashes on ``query-named-block-nodes`` while a stream that pulled a backing chain in
is concluded and not dismissed; the collection reads the graph in many operations.
"""

from __future__ import annotations

from harness import has_pattern, image_info, write_pattern


def chain(make_image, workdir):
    base = make_image('base.qcow2', pattern=0x0B)
    mid = make_image('mid.qcow2', backing=base)
    write_pattern(mid, 0x0D, '1M', '1M')
    top = make_image('top.qcow2', backing=mid)
    write_pattern(top, 0x0C, 0, '1M')
    return top


def back_up_then_check(run_module, args, workdir, daemon, obs):
    """A backup's start reads the block graph; then the stream's outcome is checked."""
    backup = run_module('block_job', dict(args, name='copy', type='backup', device='disk0',
                                          target=str(workdir / 'copy.qcow2'), wait='concluded'))
    assert not backup['failed'], backup.get('msg')
    assert daemon.alive()
    assert_outcome_kept(run_module, args, daemon, obs)


def assert_outcome_kept(run_module, args, daemon, obs):
    """job_info and job_wait report the stream's outcome; the user's dismiss still works."""
    [info] = [j for j in run_module('job_info', args)['jobs'] if j['name'] == 'pull']
    shown = (info['status'], info['outcome'], info['dismissed'])
    assert shown == ('concluded', 'succeeded', False)
    waited = run_module('job_wait', dict(args, name=['pull'], state='concluded'))
    assert not waited['failed'], waited.get('msg')
    assert waited['job']['outcome'] == 'succeeded'
    obs.cmd('query-named-block-nodes', flat=True)  # the reads that crashed QEMU 7.2
    obs.cmd('query-block')
    assert daemon.alive()
    dismissed = run_module('job', dict(args, name='pull', state='absent'))
    assert dismissed['changed'] and dismissed['job']['outcome'] == 'succeeded', dismissed
    assert not run_module('job', dict(args, name='pull', state='absent'))['changed']


def test_stream_then_backup_keeps_the_vm_alive(workdir, make_image, vm, qmp_observer, run_module):
    top = chain(make_image, workdir)
    daemon = vm(disks={'disk0': top})
    obs = qmp_observer(daemon.obs_sock)
    args = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger')}
    pulled = run_module('block_job', dict(args, name='pull', type='stream', device='disk0',
                                          wait='concluded'))
    assert not pulled['failed'], pulled.get('msg')
    assert (pulled['job']['status'], pulled['job']['outcome']) == ('concluded', 'succeeded')
    assert obs.cmd('query-jobs') == [], 'the stream left QEMU; the ledger keeps its outcome'
    back_up_then_check(run_module, args, workdir, daemon, obs)
    daemon.stop()
    assert 'backing-filename' not in image_info(top)
    copy = workdir / 'copy.qcow2'
    assert has_pattern(copy, 0x0C, 0, '1M') and has_pattern(copy, 0x0D, '1M', '1M')
    assert has_pattern(copy, 0x0B, '2M', '62M')


def test_stream_without_waiting_then_job_wait(workdir, make_image, vm, qmp_observer, run_module):
    top = chain(make_image, workdir)
    base = workdir / 'base.qcow2'
    daemon = vm(disks={'disk0': top})
    obs = qmp_observer(daemon.obs_sock)
    args = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger')}
    started = run_module('block_job', dict(args, name='pull', type='stream', device='disk0',
                                           base=str(base)))
    assert started['changed'] and not started['failed'], started.get('msg')
    waited = run_module('job_wait', dict(args, name=['pull']))
    assert not waited['failed'] and waited['job']['outcome'] == 'succeeded', waited.get('msg')
    back_up_then_check(run_module, args, workdir, daemon, obs)
    daemon.stop()
    assert image_info(top)['backing-filename'] == str(base), 'mid was pulled in, base kept'


def concluded_unseen(workdir, make_image, vm, qmp_observer, run_module):
    """A stream that concluded with no collection task looking; then a backup, as asked."""
    top = chain(make_image, workdir)
    daemon = vm(disks={'disk0': top})
    obs = qmp_observer(daemon.obs_sock)
    args = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger')}
    started = run_module('block_job', dict(args, name='pull', type='stream', device='disk0'))
    assert started['changed'] and not started['failed'], started.get('msg')
    obs.wait_event('JOB_STATUS_CHANGE', timeout=30, id='pull', status='concluded')
    (workdir / 'full').mkdir()
    return daemon, obs, args, dict(args, name='full', mode='full', bitmap='nightly',
                                   target_dir=str(workdir / 'full'))


def test_backup_module_first_after_the_stream_concluded(workdir, make_image, vm, qmp_observer,
                                                        run_module):
    daemon, obs, args, backup = concluded_unseen(workdir, make_image, vm, qmp_observer,
                                                 run_module)
    # no collection task has seen the stream concluded: the backup's graph read comes first
    result = run_module('backup', dict(backup, wait='concluded'))
    assert not result['failed'], result.get('msg')
    assert daemon.alive()
    assert_outcome_kept(run_module, args, daemon, obs)


def test_check_mode_backup_first_after_the_stream_concluded(
        workdir, make_image, vm, qmp_observer, run_module):
    """A check run dismisses the concluded stream too (its outcome kept): it reports the same."""
    daemon, obs, args, backup = concluded_unseen(workdir, make_image, vm, qmp_observer,
                                                 run_module)
    result = run_module('backup', backup, check=True)
    assert not result['failed'] and result['changed'], result.get('msg')
    assert obs.cmd('query-jobs') == [] and daemon.alive()
    assert_outcome_kept(run_module, args, daemon, obs)
