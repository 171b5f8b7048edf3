"""libvirt domains through libvirt's own API: a private libvirtd, real QEMU, real ansible runs.

Every test ends by asserting that the domain was never tainted by monitor commands.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import has_pattern, image_info, write_pattern
from harness.domain import Domain
from harness.images import check_closed, compare_closed
from harness.libvirt import LibvirtHost

NS = 'https://vmjobs.github.io/xmlns/jobs/1'


@pytest.fixture(scope='module')
def host(libvirt_host: LibvirtHost) -> LibvirtHost:
    """The module's private libvirtd (conftest's ``libvirt_host``)."""
    return libvirt_host


def chain3(make_image: Callable[..., Path]) -> tuple[Path, Path, Path]:
    """base (0x01 everywhere) <- mid (0x02 at 1M) <- top (0x03 at 2M), 16 MiB."""
    base = make_image('base.qcow2', '16M', pattern=0x01)
    mid = make_image('mid.qcow2', '16M', backing=base)
    write_pattern(mid, 0x02, '1M', '1M')
    top = make_image('top.qcow2', '16M', backing=mid)
    write_pattern(top, 0x03, '2M', '1M')
    return base, mid, top


def holds_chain_data(image: Path) -> bool:
    return (has_pattern(image, 0x01, 0, '1M') and has_pattern(image, 0x02, '1M', '1M')
            and has_pattern(image, 0x03, '2M', '1M'))


def metadata_jobs(dom: Domain) -> dict[str, Any]:
    return {job.get('name'): job for job in dom.xml().iter(f'{{{NS}}}job')}


# -- copy -----------------------------------------------------------------------------------------

@pytest.mark.parametrize('persistent', [False, True], ids=['transient', 'persistent'])
def test_copy_pivot_dismiss_rerun(workdir, make_image, domain, persistent):
    base, _mid, top = chain3(make_image)
    dom = domain({'vda': top}, persistent=persistent)
    target = workdir / 'copy.qcow2'
    args = {'name': 'move-vda', 'type': 'mirror', 'device': 'vda', 'target': str(target)}
    first, again = dom.play(('block_job', dict(args, wait='ready')), ('block_job', args))
    assert first['changed'] and first['job']['status'] == 'ready', first
    assert first['job']['type'] == 'mirror' and first['job']['device'] == 'vda'
    assert not again['changed'] and again['job']['status'] == 'ready', again
    assert 'move-vda' in metadata_jobs(dom), 'the record is in the domain metadata'
    assert dom.source('vda') == str(top)

    done, same, gone, listed, tomb, rerun = dom.play(
        ('job', {'name': 'move-vda', 'state': 'completed'}),
        ('job', {'name': 'move-vda', 'state': 'completed'}),
        ('job', {'name': 'move-vda', 'state': 'absent'}),
        ('job_info', {}),
        ('job_info', {'include_dismissed': True}),
        ('block_job', dict(args, wait='ready')))
    assert done['changed'] and done['job']['outcome'] == 'succeeded', done
    assert not same['changed'], same
    assert dom.source('vda') == str(target), 'libvirt shows the copy as the source'
    if persistent:
        assert dom.source('vda', inactive=True) == str(target), 'and so does the definition'
    assert gone['changed'] and gone['job']['dismissed'], gone
    assert listed['jobs'] == []
    assert [(j['name'], j['outcome']) for j in tomb['jobs']] == [('move-vda', 'succeeded')]
    assert not rerun.get("failed"), rerun
    assert not rerun['changed'] and rerun['job']['outcome'] == 'succeeded', rerun
    dom.stop()
    assert holds_chain_data(target) and base.exists()


def test_cancel_copy_and_speed(workdir, make_image, domain):
    disk = make_image('disk.qcow2', '64M', pattern=0x11)
    dom = domain({'vda': disk})
    target = workdir / 'slow.qcow2'
    started, faster, blocking, paused, canceled, listed = dom.play(
        ('block_job', {'name': 'slow', 'type': 'mirror', 'device': 'vda', 'target': str(target),
                       'speed': 1 << 20}),
        ('job', {'name': 'slow', 'speed': 2 << 20}),
        ('job', {'name': 'slow', 'copy_mode': 'write-blocking'}),
        ('job', {'name': 'slow', 'state': 'paused'}),
        ('job', {'name': 'slow', 'state': 'canceled'}),
        ('job_info', {'name': ['slow']}))
    assert started['changed'] and started['job']['status'] == 'running', started
    assert started['job']['speed'] == 1 << 20
    assert faster['changed'] and faster['job']['speed'] == 2 << 20, faster
    assert blocking['failed'] and not blocking['changed'], blocking
    assert "libvirt cannot change the copy mode of a running copy" in blocking['msg'], blocking
    assert paused['failed'] and 'libvirt cannot pause a block job' in paused['msg'], paused
    assert canceled['changed'] and canceled['job']['outcome'] == 'canceled', canceled
    assert canceled['job']['target_state'] == 'removed' and not target.exists(), canceled
    assert listed['jobs'][0]['outcome'] == 'canceled'
    assert dom.source('vda') == str(disk), 'no pivot after a cancel'
    predicted = dom.run('block_job', check=True, name='later', type='mirror', device='vda',
                        target=str(workdir / 'later.qcow2'))
    assert predicted['changed'] and not predicted['failed'], predicted
    assert set(metadata_jobs(dom)) == {'slow'} and not (workdir / 'later.qcow2').exists()


def test_cancel_a_ready_copy_keeps_a_closed_copy(workdir, make_image, domain):
    disk = make_image('disk.qcow2', '16M', pattern=0x21)
    dom = domain({'vda': disk})
    target = workdir / 'copy.qcow2'
    ready, canceled = dom.play(
        ('block_job', {'name': 'cp', 'type': 'mirror', 'device': 'vda', 'target': str(target),
                       'wait': 'ready', 'copy_mode': 'write-blocking'}),
        ('job', {'name': 'cp', 'state': 'canceled'}))
    assert ready['job']['status'] == 'ready', ready
    assert ready['job']['copy_mode'] == 'write-blocking', 'blockCopy took synchronous writes'
    assert canceled['changed'] and canceled['job']['outcome'] == 'canceled', canceled
    assert canceled['job']['target_state'] == 'closed', canceled
    assert dom.source('vda') == str(disk), 'no pivot after a cancel'
    compare_closed(target, disk)


# -- commit and pull ---------------------------------------------------------------------------------

def test_commit_intermediate_then_active(make_image, domain):
    base, mid, top = chain3(make_image)
    dom = domain({'vda': top})
    inter, active, refused, done, info = dom.play(
        ('block_job', {'name': 'squash-mid', 'type': 'commit', 'device': 'vda', 'top': str(mid),
                       'wait': 'concluded'}),
        ('block_job', {'name': 'squash-top', 'type': 'commit', 'device': 'vda', 'wait': 'ready'}),
        ('job', {'name': 'squash-mid', 'state': 'completed'}),
        ('job', {'name': 'squash-top', 'state': 'completed'}),
        ('job_info', {}))
    assert inter['changed'] and inter['job']['outcome'] == 'succeeded', inter
    assert active['job']['status'] == 'ready', active
    assert refused['failed'] and 'only mirror and active commit' in refused['msg'], refused
    assert done['job']['outcome'] == 'succeeded', done
    assert {j['name']: j['outcome'] for j in info['jobs']} == {'squash-mid': 'succeeded',
                                                               'squash-top': 'succeeded'}
    assert dom.chain('vda') == [str(base)], 'mid and then top left the chain'
    dom.stop()
    assert holds_chain_data(base)


def test_pull_and_outcome_after_libvirtd_restart(host, make_image, domain):
    base, mid, top = chain3(make_image)
    dom = domain({'vda': top}, persistent=True)
    pulled, slow = dom.play(
        ('block_job', {'name': 'flatten', 'type': 'stream', 'device': 'vda', 'base': str(base),
                       'wait': 'concluded'}),
        ('block_job', {'name': 'flatten-all', 'type': 'stream', 'device': 'vda',
                       'speed': 4 << 20}))
    assert pulled['job']['outcome'] == 'succeeded', pulled
    assert slow['job']['status'] == 'running', slow
    host.restart()  # the pull goes on, and ends while nobody is connected
    info, waited = dom.play(('job_info', {'name': ['flatten']}),
                            ('job_wait', {'name': ['flatten-all'], 'timeout': 60}))
    assert [(j['status'], j['outcome']) for j in info['jobs']] == [('concluded', 'succeeded')]
    assert waited['jobs'][0]['outcome'] == 'succeeded', waited
    assert dom.chain('vda') == [str(top)]
    host.restart()
    again = dom.run('job_info')
    assert {j['name']: j['outcome'] for j in again['jobs']} == {'flatten': 'succeeded',
                                                                'flatten-all': 'succeeded'}
    dom.stop()
    assert holds_chain_data(top) and not image_info(top).get('backing-filename')
    assert mid.exists()


# -- backups -------------------------------------------------------------------------------------

def compare(image: Path, copy: Path) -> None:
    proc = subprocess.run(['qemu-img', 'compare', '-U', str(image), str(copy)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_backup_one_disk(workdir, make_image, domain):
    base, _mid, top = chain3(make_image)
    dom = domain({'vda': top})
    target = workdir / 'vda.bak.qcow2'
    args = {'name': 'bk1', 'type': 'backup', 'device': 'vda', 'target': str(target)}
    done, again = dom.play(('block_job', dict(args, wait='concluded')), ('block_job', args))
    assert done['changed'] and done['job']['outcome'] == 'succeeded', done
    assert done['job']['type'] == 'backup' and done['job']['target_state'] == 'closed'
    assert not again['changed'] and again['job']['outcome'] == 'succeeded', again
    # libvirt detached the target itself: it reads as a finished file while the domain runs
    assert check_closed(target).get('corruptions', 0) == 0
    compare_closed(target, top)
    dom.stop()
    compare(top, target)
    assert base.exists()


def test_incremental_backup_through_a_checkpoint(host, workdir, make_image, domain):
    """A full backup creates a checkpoint; writes made afterwards are what the incremental
    copies, and the incremental on top of the full is the disk."""
    disk = make_image('disk.qcow2', '16M', pattern=0x01)
    dom = domain({'vda': disk}, persistent=True)
    full, inc = workdir / 'full.qcow2', workdir / 'inc.qcow2'
    (done,) = dom.play(('block_job', {'name': 'bk-full', 'type': 'backup', 'device': 'vda',
                                      'target': str(full), 'bitmap': 'ck-full',
                                      'wait': 'concluded'}))
    assert done['job']['outcome'] == 'succeeded', done
    assert host.virsh('checkpoint-list', dom.name, '--name').stdout.split() == ['ck-full']
    host.virsh('destroy', dom.name, '--graceful')
    stopped = dom.run('job_info')  # the records of a shut-off domain are in its definition
    assert [(j['name'], j['outcome']) for j in stopped['jobs']] == [('bk-full', 'succeeded')]
    write_pattern(disk, 0x09, '4M', '1M')  # the persistent bitmap in the image records it
    host.virsh('start', dom.name, '--paused')
    (done,) = dom.play(('block_job', {'name': 'bk-inc', 'type': 'backup', 'device': 'vda',
                                      'target': str(inc), 'sync': 'incremental',
                                      'bitmap': 'ck-full', 'wait': 'concluded'}))
    assert done['job']['outcome'] == 'succeeded', done
    dom.stop()
    assert image_info(inc)['actual-size'] < image_info(full)['actual-size']
    subprocess.run(['qemu-img', 'rebase', '-u', '-b', str(full), '-F', 'qcow2', str(inc)],
                   check=True)
    compare(disk, inc)


# -- jobs started elsewhere, failures ------------------------------------------------------------------

def test_virsh_job_is_listed_and_controlled(host, workdir, make_image, domain):
    disk = make_image('disk.qcow2', '16M', pattern=0x21)
    dom = domain({'vda': disk})
    target = workdir / 'virsh-copy.qcow2'
    host.virsh('blockcopy', dom.name, 'vda', str(target), '--transient-job', '--wait',
               '--timeout', '60')
    listed, done, after = dom.play(('job_info', {}),
                                   ('job', {'name': 'libvirt-vda-copy', 'state': 'completed'}),
                                   ('job_info', {}))
    assert [(j['name'], j['type'], j['status']) for j in listed['jobs']] == [
        ('libvirt-vda-copy', 'mirror', 'ready')]
    assert done['changed'] and done['job']['outcome'] == 'succeeded', done
    assert [(j['name'], j['outcome']) for j in after['jobs']] == [
        ('libvirt-vda-copy', 'succeeded')]
    assert dom.source('vda') == str(target)


def test_failures_carry_libvirt_text(workdir, make_image, domain):
    disk = make_image('disk.qcow2', '64M', pattern=0x31)
    dom = domain({'vda': disk})
    other = str(workdir / 'other.qcow2')
    results = dom.play(
        ('job_info', {'domain': 'no-such-domain'}),
        ('block_job', {'name': 'x1', 'type': 'stream', 'device': 'vdz'}),
        ('block_job', {'name': 'x2', 'type': 'commit', 'device': 'vda'}),
        ('block_job', {'name': 'busy', 'type': 'mirror', 'device': 'vda',
                       'target': str(workdir / 'busy.qcow2'), 'speed': 1 << 20}),
        ('block_job', {'name': 'x3', 'type': 'mirror', 'device': 'vda', 'target': other}),
        ('block_job', {'name': 'x4', 'type': 'backup', 'device': 'vda',
                       'target': '/nonexistent/dir/b.qcow2'}),
        ('block_job', {'name': 'x5', 'type': 'stream', 'device': 'vda', 'on_error': 'stop'}),
        ('job_info', {'socket': '/tmp/x.sock'}),
        ('job', {'name': 'busy', 'state': 'canceled'}))
    unknown, nodisk, flat, busy, second, baddir, policy, both, cancel = results
    assert unknown['failed'] and "domain 'no-such-domain' not found" in unknown['msg']
    assert 'Domain not found' in unknown['msg']
    assert nodisk['failed'] and "the domain has no disk 'vdz' (disks: vda" in nodisk['msg']
    assert flat['failed'] and 'has no backing file' in flat['msg']
    assert not busy['failed'], busy
    assert second['failed']
    assert "job 'x3': blockCopy failed: VIR_ERR_BLOCK_COPY_ACTIVE" in second['msg'], second
    assert 'already in active block job' in second['msg']
    assert baddir['failed'] and 'does not exist' in baddir['msg'], baddir
    assert policy['failed'] and 'on_error cannot be used with a libvirt domain' in policy['msg']
    assert both['failed'] and 'mutually exclusive' in both['msg'], both
    assert cancel['job']['outcome'] == 'canceled', cancel
    assert not Path(other).exists()
    assert set(metadata_jobs(dom)) == {'busy'}, 'refused starts leave no record'
    for result in results:
        assert 'Traceback' not in result.get('msg', '') and '\n' not in result.get('msg', '')
