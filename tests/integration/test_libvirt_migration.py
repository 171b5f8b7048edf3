"""Live migration of a libvirt domain between two private libvirtd "hosts".

The source libvirtd runs in the root network namespace, the destination in a
namespace of its own, joined by a veth pair; each has its own mount and UTS
namespace (its own /run/libvirt, /etc/libvirt, hostname and host UUID).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.libvirt import LibvirtHost, create_domain, taint_messages
from harness.libvirt_net import remote_namespace
from lxml import etree

NS = 'https://vmjobs.github.io/xmlns/jobs/1'


@pytest.fixture(scope='module')
def hosts() -> Iterator[tuple[LibvirtHost, LibvirtHost]]:
    with remote_namespace() as link:
        source = LibvirtHost(name='vjsrc')
        dest = LibvirtHost(name='vjdst', netns=link.netns, listen=link.remote,
                           migration_address=link.remote)
        try:
            source.start()
            dest.start()
            yield source, dest
        finally:
            dest.teardown()
            source.teardown()


@pytest.mark.parametrize('wait', ['concluded', 'none'])
def test_migrate_a_running_domain(hosts, workdir: Path, make_image, run_module, wait):
    """Waiting in the task, or not: libvirtd carries the migration on after the module exited.

    With ``wait: none`` the guest has 2 GiB of RAM at 1 MiB/s, so the migration still runs
    when the module returns (even zero pages take a while at that rate); it succeeds later.
    """
    source, dest = hosts
    disk = make_image('disk.qcow2', '16M', pattern=0x44)
    name = f'{workdir.name}-m'
    create_domain(source, workdir, name, {'vda': disk}, running=True,
                  memory_mib=2048 if wait == 'none' else 64)
    connection = {'domain': name, 'uri': source.uri, 'ledger_dir': str(workdir / 'ledger')}
    task = dict(connection, name='evacuate', dest_uri=dest.tcp_uri,
                bandwidth=(1 if wait == 'none' else 512) << 20, unsafe=True, downtime_limit=300,
                auto_converge=True, wait=wait, wait_timeout=120)
    moved = run_module('migration', task)
    assert not moved['failed'], moved
    assert moved['changed']
    if wait == 'none':
        assert moved['job']['status'] == 'running', moved['job']
        listed = run_module('job_info', dict(connection, name=['evacuate']))
        assert [j['type'] for j in listed['jobs']] == ['migration'], listed
        moved = run_module('job_wait', dict(connection, name=['evacuate'], timeout=120))
        assert not moved['failed'], moved
        moved['job'] = moved['jobs'][0]
    assert moved['job']['outcome'] == 'succeeded', moved
    assert name not in source.virsh('list', '--all', '--name').stdout.split()
    assert dest.virsh('domstate', name).stdout.strip() == 'running'
    arrived = etree.fromstring(dest.virsh('dumpxml', name).stdout.encode())
    assert [j.get('name') for j in arrived.iter(f'{{{NS}}}job')] == ['evacuate'], \
        'the records travel in the metadata'
    again = run_module('migration', task)
    assert not again['failed'], again
    assert not again['changed'] and again['job']['outcome'] == 'succeeded'
    info = run_module('job_info', dict(connection, name=['evacuate']))
    assert [(j['name'], j['outcome']) for j in info['jobs']] == [('evacuate', 'succeeded')]
    messages = ' '.join(taint_messages(dest, name))
    assert 'custom monitor' not in messages, messages


def test_migration_refusals(hosts, workdir: Path, make_image, run_module):
    source, dest = hosts
    disk = make_image('disk.qcow2', '16M')
    name = f'{workdir.name}-r'
    create_domain(source, workdir, name, {'vda': disk}, running=True)
    connection = {'domain': name, 'uri': source.uri, 'ledger_dir': str(workdir / 'ledger')}
    qmp_style = run_module('migration', dict(connection, name='m1', dest_uri='tcp:1.2.3.4:5'))
    assert qmp_style['failed'] and 'give dest_uri as its libvirt URI' in qmp_style['msg']
    unsafe = run_module('migration', dict(connection, name='m2', dest_uri=dest.tcp_uri))
    assert unsafe['failed'], unsafe
    assert "job 'm2': migrateToURI3 failed: VIR_ERR_MIGRATE_UNSAFE" in unsafe['msg']
    info = run_module('job_info', connection)
    assert info['jobs'] == [], 'a refused migration leaves no record'
    source.virsh('destroy', name)


def slow_migration(hosts, workdir: Path, make_image, suffix: str,
                   memory_mib: int) -> tuple[dict, dict]:
    """A running domain and the options of a migration at 1 MiB/s: even the zero pages
    of its RAM take about 2.5 s per GiB at that rate. The sizes leave room for a busy
    machine, where libvirt's answers (and so the policy's checks) take seconds."""
    source, dest = hosts
    name = f'{workdir.name}-{suffix}'
    create_domain(source, workdir, name, {'vda': make_image('disk.qcow2', '16M')}, running=True,
                  memory_mib=memory_mib)
    connection = {'domain': name, 'uri': source.uri, 'ledger_dir': str(workdir / 'ledger')}
    return connection, dict(connection, dest_uri=dest.tcp_uri, bandwidth=1 << 20, unsafe=True)


def test_cancel_midway(hosts, workdir: Path, make_image, run_module):
    source, dest = hosts
    connection, options = slow_migration(hosts, workdir, make_image, 'c', 16384)
    started = run_module('migration', dict(options, name='slow'))
    assert started['changed'] and started['job']['status'] == 'running', started
    canceled = run_module('job', dict(connection, name='slow', state='canceled', wait_timeout=30))
    assert not canceled['failed'] and canceled['changed'], canceled
    record = run_module('job_info', dict(connection, name=['slow']))['jobs'][0]
    assert (record['status'], record['outcome']) == ('concluded', 'canceled'), record
    assert source.virsh('domstate', connection['domain']).stdout.strip() == 'running'
    assert connection['domain'] not in dest.virsh('list', '--all', '--name').stdout.split()
    again = run_module('job', dict(connection, name='slow', state='canceled'))
    assert not again['failed'] and not again['changed'], again
    source.virsh('destroy', connection['domain'])


@pytest.mark.parametrize('action', ['cancel', 'postcopy', 'pause'])
def test_completion_policy(hosts, workdir: Path, make_image, run_module, action):
    source, dest = hosts
    connection, options = slow_migration(
        hosts, workdir, make_image, action[:2], 16384 if action == 'cancel' else 8192)
    domain = connection['domain']
    moved = run_module('migration', dict(
        options, name=f'policy-{action}', postcopy=action == 'postcopy', completion_timeout=1,
        completion_action=action, wait='concluded', wait_timeout=120))
    if action == 'cancel':
        assert moved['failed'] and 'did not migrate' in moved['msg'], moved
        assert moved['job']['outcome'] == 'canceled' and 'jobs' not in moved
        assert source.virsh('domstate', domain).stdout.strip() == 'running'
        source.virsh('destroy', domain)
        return
    assert not moved['failed'], moved
    assert moved['job']['outcome'] == 'succeeded'
    assert moved['job']['actions_taken'] == [action]
    assert domain not in source.virsh('list', '--all', '--name').stdout.split()
    assert dest.virsh('domstate', domain).stdout.strip() == 'running'
    dest.virsh('destroy', domain)
