"""QEMU killed in the middle of a job: a clear error within connect_timeout, and the job's
ledger record reports it lost, with the last progress the collection saw."""

from __future__ import annotations

import threading
import time

from harness.faults import assert_clean_failure, connected_clients, ledger_records


def test_qemu_killed_mid_wait(workdir, make_image, vm, run_module, qmp_observer):
    disk = make_image('disk0.qcow2', '32M', pattern=0x5A)
    daemon = vm(disks={'disk0': disk})
    args = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger'),
            'connect_timeout': 3}
    started = run_module('block_job', dict(args, name='doomed', type='backup', device='disk0',
                                           target=str(workdir / 'doomed.qcow2'),
                                           speed=4 << 20))
    assert started['changed'] and not started['failed'], started.get('msg')

    waited = {}

    def wait():
        waited.update(run_module('job_wait', dict(args, name=['doomed'], timeout=120)))
        waited['ended'] = time.monotonic()

    waiter = threading.Thread(target=wait)
    waiter.start()
    obs = qmp_observer(daemon.obs_sock)
    deadline = time.monotonic() + 30
    # the job has made progress, and job_wait is connected to the VM, waiting
    while (obs.cmd('query-jobs')[0]['current-progress'] < 8 << 20
           or connected_clients(daemon.sock) == 0):
        assert time.monotonic() < deadline and waiter.is_alive()
        time.sleep(0.05)
    progress_at_kill = obs.cmd('query-jobs')[0]['current-progress']
    daemon.proc.kill()
    killed = time.monotonic()
    daemon.proc.wait(10)
    waiter.join(60)

    assert_clean_failure(waited, str(daemon.sock))
    print(f"job_wait after the kill: {waited['msg']} ({waited['ended'] - killed:.1f}s)")

    dead = run_module('job_info', dict(args, name=['doomed']))
    assert_clean_failure(dead, f'cannot connect to QMP socket {daemon.sock}')

    record = ledger_records(workdir / 'ledger')['doomed']
    last = record['last']['progress']
    assert 0 < last['current'] <= progress_at_kill, (last, progress_at_kill)
    assert progress_at_kill - last['current'] <= 8 << 20, 'at most about two seconds old'

    # The VM comes back (same socket path, new QEMU process): the job is lost, not forgotten.
    for stale in (daemon.sock, daemon.obs_sock):
        stale.unlink(missing_ok=True)
    vm(disks={'disk0': disk})
    info = run_module('job_info', dict(args, name=['doomed']))
    assert not info['failed'], info.get('msg')
    lost = info['jobs'][0]
    assert (lost['status'], lost['lost'], lost['outcome']) == ('absent', True, None), lost
    assert lost['progress'] == last, 'the last progress seen'
    again = run_module('job_wait', dict(args, name=['doomed']))
    assert_clean_failure(again, "job 'doomed'")
