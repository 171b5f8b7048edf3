"""Live migration of a libvirt domain between two private libvirtd "hosts".

The source libvirtd runs in the root network namespace, the destination in a
namespace of its own, joined by a veth pair; each has its own mount and UTS
namespace (its own /run/libvirt, /etc/libvirt, hostname and host UUID).

A migration that must still be running when the test acts on it is started slow and
held: once its stream is connected, the stream is stopped on the wire
(``held_migrations``) until the test releases it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness.faults import ledger_records
from harness.libvirt import LibvirtHost, create_domain, taint_messages
from harness.libvirt_net import Link, held_migrations, libvirt_hosts, remote_namespace
from lxml import etree

NS = 'https://vmjobs.github.io/xmlns/jobs/1'
#: RAM of a guest whose migration is held: at 1 MiB/s even its zero pages take seconds,
#: while the hold starts within milliseconds of the stream's connection.
SLOW_MIB = 2048


@pytest.fixture(scope='module')
def network() -> Iterator[Link]:
    with remote_namespace() as link:
        yield link


@pytest.fixture(scope='module')
def hosts(network: Link) -> Iterator[tuple[LibvirtHost, LibvirtHost]]:
    with libvirt_hosts(network) as pair:
        yield pair


@pytest.fixture
def held(network: Link) -> Iterator[Callable[[], None]]:
    """Migrations to the destination are held until ``held()`` releases them."""
    with held_migrations(network) as release:
        yield release


@pytest.mark.parametrize('wait', ['concluded', 'none'])
def test_migrate_a_running_domain(hosts, network, workdir: Path, make_image, run_module, wait):
    """Waiting in the task, or not: libvirtd carries the migration on after the module exited.

    With ``wait: none`` the migration is held while the module returns and the test
    looks at it (it still runs); released, it succeeds without the module.
    """
    source, dest = hosts
    disk = make_image('disk.qcow2', '16M', pattern=0x44)
    name = f'{workdir.name}-m'
    create_domain(source, workdir, name, {'vda': disk}, running=True,
                  memory_mib=SLOW_MIB if wait == 'none' else 64)
    connection = {'domain': name, 'uri': source.uri, 'ledger_dir': str(workdir / 'ledger')}
    task = dict(connection, name='evacuate', dest_uri=dest.tcp_uri,
                bandwidth=(1 << 20) if wait == 'none' else (512 << 20), unsafe=True,
                downtime_limit=300, auto_converge=True, wait=wait, wait_timeout=120)
    if wait == 'concluded':
        moved = run_module('migration', task)
    else:
        with held_migrations(network):
            moved = run_module('migration', task)
            assert not moved['failed'], moved
            assert moved['job']['status'] == 'running', moved['job']
            listed = run_module('job_info', dict(connection, name=['evacuate']))
            assert [j['type'] for j in listed['jobs']] == ['migration'], listed
            assert listed['jobs'][0]['status'] == 'running', listed
    assert not moved['failed'], moved
    assert moved['changed']
    if wait == 'none':
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


def domain_to_move(hosts, workdir: Path, make_image, suffix: str) -> tuple[dict, dict]:
    """A running domain, and the options of a slow migration to the destination."""
    source, dest = hosts
    name = f'{workdir.name}-{suffix}'
    create_domain(source, workdir, name, {'vda': make_image('disk.qcow2', '16M')}, running=True,
                  memory_mib=SLOW_MIB)
    connection = {'domain': name, 'uri': source.uri, 'ledger_dir': str(workdir / 'ledger')}
    return connection, dict(connection, dest_uri=dest.tcp_uri, unsafe=True, bandwidth=1 << 20)


def release_once_applied(release: Callable[[], None], ledger: Path, name: str,
                         action: str) -> threading.Thread:
    """Release the held migration as soon as its ledger record says the completion policy
    applied ``action`` (written before the module goes on waiting)."""
    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if action in (ledger_records(ledger).get(name, {}).get('applied') or []):
                break
            time.sleep(0.05)
        release()
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_cancel_midway(hosts, held, workdir: Path, make_image, run_module):
    source, dest = hosts
    connection, options = domain_to_move(hosts, workdir, make_image, 'c')
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
def test_completion_policy(hosts, held, workdir: Path, make_image, run_module, action):
    """Held, the migration cannot complete within ``completion_timeout``; the policy acts,
    and once it has (its record says so) the migration is released."""
    source, dest = hosts
    connection, options = domain_to_move(hosts, workdir, make_image, action[:2])
    domain = connection['domain']
    if action != 'cancel':
        release_once_applied(held, workdir / 'ledger', f'policy-{action}', action)
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
