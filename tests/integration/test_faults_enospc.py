"""A target file system that fills up during a backup and a mirror: the job fails with
QEMU's own text, and nothing else is touched (source data, the device, other files)."""

from __future__ import annotations

from harness import has_pattern
from harness.faults import assert_clean_failure, ledger_records
from harness.guest import inserted_node


def snapshot_fs(path):
    return {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}


def test_backup_fills_the_target_fs(workdir, make_image, vm, qmp_observer, small_fs,
                                    run_module):
    disks = {name: make_image(f'{name}.qcow2', '32M', pattern=0x5A) for name in ('disk0', 'disk1')}
    daemon = vm(disks=disks)
    full = small_fs('8M')
    (full / 'other-data').write_bytes(b'x' * 4096)
    before = snapshot_fs(full)
    args = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger')}
    result = run_module('backup', dict(args, name='nightly', target_dir=str(full),
                                       disks=[{'device': 'disk0'}, {'device': 'disk1'}],
                                       wait='concluded', wait_timeout=60))
    assert_clean_failure(result, "job 'nightly' failed", 'No space left on device')
    record = result['job']
    assert (record['status'], record['outcome']) == ('concluded', 'failed'), record
    assert record['target_state'] == 'removed'
    assert sorted(p.name for p in full.iterdir()) == ['other-data'], 'no partial image is left'
    obs = qmp_observer(daemon.obs_sock)
    assert inserted_node(obs, 'disk0') == 'disk0-fmt' and inserted_node(obs, 'disk1') == 'disk1-fmt'
    assert (full / 'other-data').read_bytes() == before['other-data']
    assert list(ledger_records(workdir / 'ledger')) == ['nightly']
    daemon.stop()
    for disk in disks.values():
        assert has_pattern(disk, 0x5A, 0, '32M'), 'the source is untouched'


def test_mirror_fills_the_target_fs(workdir, make_image, vm, qmp_observer, small_fs,
                                    run_module):
    disk = make_image('disk0.qcow2', '32M', pattern=0x5A)
    daemon = vm(disks={'disk0': disk})
    full = small_fs('8M')
    (full / 'other-data').write_bytes(b'y' * 4096)
    args = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger')}
    result = run_module('block_job', dict(args, name='move', type='mirror', device='disk0',
                                          target=str(full / 'moved.qcow2'), wait='ready',
                                          wait_timeout=60))
    assert_clean_failure(result, "job 'move' failed: No space left on device")
    obs = qmp_observer(daemon.obs_sock)
    assert inserted_node(obs, 'disk0') == 'disk0-fmt', 'no pivot'
    info = run_module('job_info', dict(args, name=['move']))['jobs'][0]
    assert (info['status'], info['outcome'], info['error']) == (
        'concluded', 'failed', 'No space left on device')
    assert (full / 'other-data').read_bytes() == b'y' * 4096
    assert [j['id'] for j in obs.cmd('query-jobs')] == ['move']
    assert not [n for n in obs.cmd('query-named-block-nodes', flat=True)
                if n['node-name'].startswith('vj')], 'the failed copy was detached at once'
    assert sorted(p.name for p in full.iterdir()) == ['other-data'], 'and removed'
    assert info['target_state'] == 'removed'
    gone = run_module('job', dict(args, name='move', state='absent'))
    assert gone['changed'] and not gone['failed'], gone.get('msg')
    daemon.stop()
    assert has_pattern(disk, 0x5A, 0, '32M'), 'the source is untouched'
