"""Migration with local storage between two QEMU processes: NBD on the destination, one
mirror per disk on the source (``storage: copy``)."""

from __future__ import annotations

import pytest
from harness import assert_ok, recap_changed
from harness.ansible import inventory
from harness.guest import device_write
from harness.images import compare_closed
from harness.migration import disk_pair
from harness.qmp import QMPCommandError, QMPConnection


@pytest.fixture
def pairs(workdir):
    """``pairs(sizes, dest_sizes=None, ram_mb=16)`` -> (source, dest, images); stopped after."""
    started = []

    def start(sizes, dest_sizes=None, ram_mb=16):
        source, dest, images = disk_pair(workdir, sizes, dest_sizes, ram_mb)
        started.extend([source, dest])
        return source, dest, images
    yield start
    for daemon in reversed(started):
        daemon.stop()


def args(source, dest, workdir, **options):
    return {'socket': str(source.sock), 'dest_socket': str(dest.sock), 'storage': 'copy',
            'ledger_dir': str(workdir / 'ledger'), **options}


def on_source(source, workdir, **options):
    """Options of job_info, job_wait and job: the source VM and the ledger."""
    return {'socket': str(source.sock), 'ledger_dir': str(workdir / 'ledger'), **options}


def query(daemon, command, **arguments):
    with QMPConnection(daemon.obs_sock) as qmp:
        return qmp.cmd(command, arguments)


def assert_clean(source, dest):
    """No disk copy, NBD client node or export left on either side (a destination QEMU
    whose incoming migration broke off has ended, as QEMU ends it)."""
    assert query(source, 'query-jobs') == []
    nodes = query(source, 'query-named-block-nodes', flat=True)
    assert [n['node-name'] for n in nodes if n['drv'] == 'nbd'] == []
    if dest is not None:
        assert query(dest, 'query-block-exports') == []


def test_disks_arrive_equal_and_rerun_is_unchanged(workdir, pairs, run_module):
    source, dest, images = pairs({'disk0': '64M', 'disk1': '32M'})
    with QMPConnection(source.obs_sock) as qmp:
        device_write(qmp, 'disk0', 0x11, '0', '8M')
        device_write(qmp, 'disk1', 0x22, '1M', '4M')
    started = run_module('migration', args(source, dest, workdir, name='move'))
    assert started['changed'] and not started['failed'], started.get('msg')
    job = started['job']
    assert job['phase'] == 'storage' and job['storage'] == 'copy'
    assert [d['device'] for d in job['disks']] == ['disk0', 'disk1']
    with QMPConnection(source.obs_sock) as qmp:  # written while the disks are copied
        device_write(qmp, 'disk0', 0x33, '32M', '4M')
        device_write(qmp, 'disk1', 0x44, '0', '512k')
    info = run_module('job_info', on_source(source, workdir, name=['move']))
    assert [j['name'] for j in info['jobs']] == ['move'], 'the disk copies are members, not jobs'
    waited = run_module('job_wait', on_source(source, workdir, name=['move'], timeout=120))
    assert not waited['failed'], waited.get('msg')
    done = waited['jobs'][0]
    assert done['outcome'] == 'succeeded' and done['phase'] == 'migration', done
    assert [d['outcome'] for d in done['disks']] == ['succeeded', 'succeeded']
    assert done['disks_progress']['percent'] == 100.0
    assert query(source, 'query-status')['status'] == 'postmigrate'
    assert query(dest, 'query-status')['status'] == 'running'
    assert_clean(source, dest)

    again = run_module('migration', args(source, dest, workdir, name='move', wait='concluded'))
    assert not again['failed'] and not again['changed'], again.get('msg')
    assert again['job']['outcome'] == 'succeeded'
    source.stop()
    dest.stop()
    for source_image, dest_image in images.values():
        compare_closed(dest_image, source_image)  # raises if they differ


def test_cancel_midway_leaves_the_source_running_on_its_disks(workdir, pairs, run_module):
    """The RAM (32 MiB of random data at 1 MiB/s) holds the migration proper mid-way."""
    source, dest, images = pairs({'disk0': '64M'}, ram_mb=32)
    started = run_module('migration', args(source, dest, workdir, name='held', bandwidth=1 << 20))
    assert started['changed'], started.get('msg')
    waited = run_module('job_wait', on_source(source, workdir, name=['held'], timeout=3))
    assert waited['failed'] and 'timed out' in waited['msg']
    last = waited['jobs'][0]
    assert last['phase'] == 'migration' and last['raw_status'] == 'active', last
    assert [d['status'] for d in last['disks']] == ['ready']
    canceled = run_module('job', on_source(source, workdir, name='held', state='canceled',
                                           wait_timeout=60))
    assert canceled['changed'] and not canceled['failed'], canceled.get('msg')
    record = canceled['job']
    assert record['outcome'] == 'canceled' and record['raw_status'] == 'cancelled', record
    assert query(source, 'query-status')['status'] == 'running'
    dest.proc.wait(10)  # QEMU ends a destination whose incoming migration broke off
    assert_clean(source, None)
    with QMPConnection(source.obs_sock) as qmp:
        device_write(qmp, 'disk0', 0x55, '0', '1M')  # still writable, on its own disk
    assert query(source, 'query-block')[0]['inserted']['image']['filename'] == str(
        images['disk0'][0])
    again = run_module('job', on_source(source, workdir, name='held', state='canceled'))
    assert not again['changed'] and not again['failed']


def test_cancel_while_the_disks_are_copied(workdir, pairs, run_module):
    source, dest, _images = pairs({'disk0': '64M'})
    started = run_module('migration', args(source, dest, workdir, name='early'))
    assert started['changed'] and started['job']['phase'] == 'storage', started
    canceled = run_module('job', on_source(source, workdir, name='early', state='canceled',
                                           wait_timeout=60))
    assert canceled['changed'] and not canceled['failed'], canceled.get('msg')
    assert canceled['job']['outcome'] == 'canceled'
    assert query(source, 'query-status')['status'] == 'running'
    assert query(dest, 'query-status')['status'] == 'inmigrate'
    assert_clean(source, dest)


@pytest.mark.parametrize('dest_sizes, words', [
    ({'disk0': '32M'}, None),  # QEMU refuses a disk of another size: its text is shown
    ({}, "the destination QEMU has no disk 'disk0'"),
])
def test_failures_name_the_job_and_leave_both_sides_clean(workdir, pairs, run_module,
                                                          dest_sizes, words):
    source, dest, _images = pairs({'disk0': '64M'}, dest_sizes)
    failed = run_module('migration', args(source, dest, workdir, name='bad', wait='concluded',
                                          wait_timeout=60))
    assert failed['failed'] and failed['msg'].startswith("job 'bad'"), failed.get('msg')
    assert '\n' not in failed['msg'] and 'Traceback' not in failed['raw']
    if words:
        assert words in failed['msg']
    assert query(source, 'query-status')['status'] == 'running'
    assert_clean(source, dest)
    again = run_module('migration', args(source, dest, workdir, name='bad', wait='concluded',
                                         wait_timeout=60))
    assert again['failed'] and not again['changed'] and again['msg'] == failed['msg']
    assert_clean(source, dest)


def test_evacuate_copies_the_disks(workdir, pairs, run_playbook):
    source, dest, images = pairs({'disk0': '32M'})
    with QMPConnection(source.obs_sock) as qmp:
        device_write(qmp, 'disk0', 0x66, '1M', '2M')
    hosts = inventory(workdir, {'a': {'vm_socket': str(source.sock), 'vm_hypervisor': 'hv1',
                                      'vm_dest_socket': str(dest.sock), 'vm_storage': 'copy'}})
    extra = {'evacuate_from': 'hv1', 'evacuate_stamp': '2026-12-04',
             'live_migration_ledger_dir': str(workdir / 'ledger')}
    first = run_playbook('vmjobs.qemu.evacuate', extra, '-i', str(hosts))
    assert_ok(first)
    assert query(dest, 'query-status')['status'] == 'running'
    assert_clean(source, dest)
    again = run_playbook('vmjobs.qemu.evacuate', extra, '-i', str(hosts))
    assert_ok(again)
    assert recap_changed(again.stdout) == {'a': 0}
    source.stop()
    dest.stop()
    compare_closed(images['disk0'][1], images['disk0'][0])


def test_a_start_qemu_refuses_is_undone_and_leaves_what_is_not_ours(workdir, pairs, run_module):
    """The destination already runs an NBD server (someone else's): QEMU refuses a second one;
    the start is undone, that server is left alone, and no record remains."""
    source, dest, _images = pairs({'disk0': '32M'})
    theirs = workdir / 'theirs.nbd'
    query(dest, 'nbd-server-start', addr={'type': 'unix', 'data': {'path': str(theirs)}})
    failed = run_module('migration', args(source, dest, workdir, name='busy-dest'))
    assert failed['failed'] and failed['msg'].startswith("job 'busy-dest'"), failed.get('msg')
    assert 'NBD server already running' in failed['msg'], failed['msg']
    assert '\n' not in failed['msg'] and 'Traceback' not in failed['raw']
    assert_clean(source, dest)
    with pytest.raises(QMPCommandError, match='already running'):  # theirs is still there
        query(dest, 'nbd-server-start', addr={'type': 'unix', 'data': {'path': str(theirs)}})
    info = run_module('job_info', on_source(source, workdir, include_dismissed=True))
    assert info['jobs'] == [], 'a start QEMU refused leaves no record'
