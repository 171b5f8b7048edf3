"""Migration of a libvirt domain without shared storage (``storage: copy``) between two
private libvirtd "hosts": libvirt copies the disks itself (NBD on the destination, one
mirror per disk). Each host sees its own files in one directory (``LibvirtHost.private``),
so a disk has the same path on both and two different images behind it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.images import compare_closed, make_image
from harness.libvirt import LibvirtHost, create_domain
from harness.libvirt_net import Link, libvirt_hosts, remote_namespace

#: RAM of a guest whose migration is held (see test_libvirt_migration).
SLOW_MIB = 2048


@pytest.fixture(scope='module')
def disks_dir() -> Iterator[Path]:
    """The directory where each host sees its own disks."""
    path = Path(tempfile.mkdtemp(prefix='vjdk-', dir='/tmp'))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope='module')
def network() -> Iterator[Link]:
    with remote_namespace() as link:
        yield link


@pytest.fixture(scope='module')
def hosts(network: Link, disks_dir: Path) -> Iterator[tuple[LibvirtHost, LibvirtHost]]:
    with libvirt_hosts(network, disks_dir) as pair:
        yield pair


def domain_with_disks(hosts, workdir: Path, disks_dir: Path, suffix: str,
                      dest_size: str | None = '32M', memory_mib: int = 64):
    """A running domain on the source with disk vda (data in its first 4 MiB); an empty
    disk of ``dest_size`` at the same path on the destination (none if None)."""
    source, dest = hosts
    name = f'{workdir.name}-{suffix}'
    image = disks_dir / f'{name}-vda.qcow2'
    make_image(image, '32M')
    subprocess.run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x5a 0 4M', str(image)],
                   check=True, capture_output=True, timeout=60)
    dest_image = dest.path('private') / image.name
    if dest_size is not None:
        make_image(dest_image, dest_size)
    create_domain(source, workdir, name, {'vda': image}, running=True, memory_mib=memory_mib)
    connection = {'domain': name, 'uri': source.uri, 'ledger_dir': str(workdir / 'ledger')}
    return connection, image, dest_image


def test_disks_are_copied_and_arrive_equal(hosts, workdir, disks_dir, run_module):
    source, dest = hosts
    connection, image, dest_image = domain_with_disks(hosts, workdir, disks_dir, 'd')
    task = dict(connection, name='move', dest_uri=dest.tcp_uri, storage='copy', disks=['vda'],
                wait='concluded', wait_timeout=120)
    moved = run_module('migration', task)
    assert not moved['failed'], moved.get('msg')
    assert moved['changed'] and moved['job']['outcome'] == 'succeeded'
    domain = connection['domain']
    assert domain not in source.virsh('list', '--all', '--name').stdout.split()
    assert dest.virsh('domstate', domain).stdout.strip() == 'running'
    again = run_module('migration', task)
    assert not again['failed'] and not again['changed'], again.get('msg')
    dest.virsh('destroy', domain)
    compare_closed(dest_image, image)  # raises if the destination's disk differs


def test_cancel_midway_leaves_the_domain_on_its_disks(hosts, workdir, disks_dir, run_module):
    """At 1 MiB/s a 2 GiB guest is still migrating when the cancel comes."""
    source, dest = hosts
    connection, image, _dest_image = domain_with_disks(hosts, workdir, disks_dir, 'c',
                                                       memory_mib=SLOW_MIB)
    started = run_module('migration', dict(connection, name='slow', dest_uri=dest.tcp_uri,
                                           storage='copy', bandwidth=1 << 20))
    assert started['changed'] and started['job']['status'] == 'running', started
    canceled = run_module('job', dict(connection, name='slow', state='canceled', wait_timeout=60))
    assert not canceled['failed'] and canceled['changed'], canceled
    record = run_module('job_info', dict(connection, name=['slow']))['jobs'][0]
    assert (record['status'], record['outcome']) == ('concluded', 'canceled'), record
    domain = connection['domain']
    assert source.virsh('domstate', domain).stdout.strip() == 'running'
    jobs = source.virsh('blockjob', domain, 'vda', '--info')
    assert 'No current block job' in jobs.stdout + jobs.stderr, 'the disk copy has ended'
    assert str(image) in source.virsh('domblklist', domain).stdout, 'still on its own disk'
    assert domain not in dest.virsh('list', '--all', '--name').stdout.split()
    source.virsh('destroy', domain)


def test_a_missing_destination_disk_fails_with_libvirts_words(
        hosts, workdir, disks_dir, run_module):
    source, dest = hosts
    connection, _image, _dest_image = domain_with_disks(hosts, workdir, disks_dir, 'f',
                                                        dest_size=None)
    failed = run_module('migration', dict(connection, name='nodisk', dest_uri=dest.tcp_uri,
                                          storage='copy', wait='concluded', wait_timeout=60))
    assert failed['failed'] and failed['msg'].startswith("job 'nodisk'"), failed.get('msg')
    assert 'VIR_ERR_' in failed['msg'], "libvirt's own error class and text"
    info = run_module('job_info', connection)
    assert info['jobs'] == [], 'a refused migration leaves no record'
    assert '\n' not in failed['msg'] and 'Traceback' not in failed['raw']
    domain = connection['domain']
    assert source.virsh('domstate', domain).stdout.strip() == 'running'
    assert domain not in dest.virsh('list', '--all', '--name').stdout.split()
    print(failed['msg'])
    source.virsh('destroy', domain)
