"""mirror, commit, stream and create jobs through ansible-playbook, data verified afterwards."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness import assert_ok, has_pattern, image_info, write_pattern
from harness.guest import guest_has, guest_write, inserted_node

PLAYBOOKS = Path(__file__).parent / 'playbooks'


def play_vars(daemon, workdir, **extra):
    return dict(socket=str(daemon.sock), ledger_dir=str(workdir / 'ledger'),
                workdir=str(workdir), **extra)


def test_mirror_pivot(workdir, make_image, vm, qmp_observer, run_playbook):
    disk = make_image('disk0.qcow2', pattern=0x5A)
    daemon = vm(disks={'disk0': disk})
    target = workdir / 'moved.qcow2'
    assert_ok(run_playbook(PLAYBOOKS / 'mirror.yml', play_vars(daemon, workdir,
                                                               target=str(target))))
    obs = qmp_observer(daemon.obs_sock)
    block = [b for b in obs.cmd('query-block') if b['qdev'].startswith('/machine/peripheral/disk0/')]
    assert block[0]['inserted']['file'] == str(target), 'disk0 runs on the copy after the pivot'
    guest_write(obs, 'disk0', 0x22, '1M', '1M')
    assert guest_has(obs, 'disk0', 0x5A, 0, '1M') and guest_has(obs, 'disk0', 0x22, '1M', '1M')
    assert has_pattern(disk, 0x5A, '1M', '1M'), 'writes after the pivot go to the copy only'
    assert inserted_node(obs, 'disk0').startswith('vj'), 'the pivoted target stays attached'


def test_commit_intermediate_and_active(workdir, make_image, vm, qmp_observer, run_playbook):
    base = make_image('base.qcow2', pattern=0x01)
    mid = make_image('mid.qcow2', backing=base)
    write_pattern(mid, 0x02, '1M', '1M')
    top = make_image('top.qcow2', backing=mid)
    write_pattern(top, 0x03, '2M', '1M')
    daemon = vm(disks={'disk0': top})
    assert_ok(run_playbook(PLAYBOOKS / 'commit.yml', play_vars(
        daemon, workdir, mid=str(mid), base=str(base))))
    obs = qmp_observer(daemon.obs_sock)
    block = [b for b in obs.cmd('query-block') if b['qdev'].startswith('/machine/peripheral/disk0/')]
    assert block[0]['inserted']['file'] == str(base), 'after the active commit disk0 runs on base'
    for pattern, offset in ((0x01, 0), (0x02, '1M'), (0x03, '2M')):
        assert guest_has(obs, 'disk0', pattern, offset, '1M')
    daemon.stop()
    assert has_pattern(base, 0x02, '1M', '1M') and has_pattern(base, 0x03, '2M', '1M')
    assert 'backing-filename' not in image_info(base)


def test_stream(workdir, make_image, vm, qmp_observer, run_playbook):
    base = make_image('base.qcow2', pattern=0x0B)
    top = make_image('top.qcow2', backing=base)
    write_pattern(top, 0x0C, 0, '1M')
    daemon = vm(disks={'disk0': top})
    assert_ok(run_playbook(PLAYBOOKS / 'stream.yml', play_vars(daemon, workdir)))
    daemon.stop()
    assert 'backing-filename' not in image_info(top), 'top no longer needs its backing file'
    base.unlink()
    assert has_pattern(top, 0x0C, 0, '1M') and has_pattern(top, 0x0B, '1M', '63M')


def test_create_and_finalize(workdir, make_image, qsd, qmp_observer, run_playbook):
    disk = make_image('disk0.qcow2', pattern=0x5A)
    daemon = qsd(disks={'disk0': disk})
    assert_ok(run_playbook(PLAYBOOKS / 'create_finalize.yml', play_vars(daemon, workdir)))
    info = image_info(workdir / 'scratch.qcow2')
    assert (info['format'], info['virtual-size']) == ('qcow2', 32 << 20)
    subprocess.run(['qemu-img', 'compare', '-U', str(disk), str(workdir / 'held.qcow2')],
                   check=True)


def test_auto_dismiss_keeps_the_outcome_seen_in_events(workdir, make_image, qsd, qmp_observer,
                                                       run_module):
    daemon = qsd(disks={'disk0': make_image('disk0.qcow2', pattern=0x5A)})
    args = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger')}
    result = run_module('block_job', dict(args, name='ad', type='backup', device='disk0',
                                          target=str(workdir / 'ad.qcow2'), auto_dismiss=True,
                                          wait='concluded'))
    assert not result['failed'], result['msg']
    assert result['job']['outcome'] == 'succeeded'
    assert qmp_observer(daemon.obs_sock).cmd('query-jobs') == []


def test_job_dismissed_behind_our_back_can_be_forgotten(workdir, make_image, qsd, qmp_observer,
                                                        run_module):
    daemon = qsd(disks={'disk0': make_image('disk0.qcow2', pattern=0x5A)})
    args = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger')}
    start = dict(args, name='b2', type='backup', device='disk0', target=str(workdir / 'b2.qcow2'),
                 wait='concluded')
    assert run_module('block_job', start)['changed']
    qmp_observer(daemon.obs_sock).cmd('job-dismiss', id='b2')
    info = run_module('job_info', args)['jobs'][0]
    assert (info['name'], info['outcome'], info['live']) == ('b2', 'succeeded', False)
    forgotten = run_module('job', dict(args, name='b2', state='absent', forget=True))
    assert forgotten['changed'] and not forgotten['failed'], forgotten.get('msg')
    (workdir / 'b2.qcow2').unlink()
    assert run_module('block_job', start)['changed'], 'a forgotten name starts a new job'


def test_backup_of_a_protocol_node_is_raw(workdir, make_image, qsd, run_module):
    daemon = qsd(disks={'disk0': make_image('disk0.qcow2', pattern=0x5A)})
    result = run_module('block_job', {
        'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger'), 'name': 'rawcopy',
        'type': 'backup', 'device': 'disk0-file', 'target': str(workdir / 'raw.img'),
        'wait': 'concluded'})
    assert not result['failed'], result['msg']
    # the file node's bytes are the qcow2 file itself: the copy is byte-identical
    subprocess.run(['qemu-img', 'compare', '-U', '-f', 'raw', '-F', 'raw',
                    str(workdir / 'disk0.qcow2'), str(workdir / 'raw.img')], check=True)
