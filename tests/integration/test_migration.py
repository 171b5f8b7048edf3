"""Live migration as a named job, between real QEMU processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import assert_ok
from harness.migration import frozen_destination, start_destination, start_source
from harness.netns import two_hosts
from harness.qmp import QMPConnection

PLAYBOOKS = Path(__file__).parent / 'playbooks'


@pytest.fixture
def pair(workdir):
    """``pair(ram_mb=16)`` -> (running source, destination waiting); stopped at teardown."""
    started = []

    def start(ram_mb=16):
        started.append(start_source(workdir, ram_mb=ram_mb))
        started.append(start_destination(workdir))
        return started[-2], started[-1]
    yield start
    for daemon in reversed(started):
        daemon.stop()


def run_state(daemon):
    with QMPConnection(daemon.obs_sock) as qmp:
        return qmp.cmd('query-status')['status']


def migrate_args(source, workdir, **options):
    return {'socket': str(source.sock), 'ledger_dir': str(workdir / 'ledger'), **options}


def test_playbook_migrates_and_reruns_unchanged_after_the_source_exited(
        workdir, pair, run_playbook, run_module):
    source, dest = pair()
    play_vars = {'socket': str(source.sock), 'dest_socket': str(dest.sock),
                 'ledger_dir': str(workdir / 'ledger')}
    assert_ok(run_playbook(PLAYBOOKS / 'migration.yml', play_vars))
    assert run_state(source) == 'postmigrate'
    assert run_state(dest) == 'running', 'the guest ran on the source, so it runs on arrival'

    source.stop()
    again = run_module('migration', migrate_args(source, workdir, name='move-vm',
                                                 dest_socket=str(dest.sock), wait='concluded'))
    assert not again['failed'], again.get('msg')
    assert not again['changed']
    assert again['job']['outcome'] == 'succeeded' and again['job']['live'] is False
    info = run_module('job_info', migrate_args(source, workdir, name=['move-vm']))
    assert info['jobs'][0]['raw_status'] == 'completed'
    waited = run_module('job_wait', migrate_args(source, workdir, name=['move-vm']))
    assert not waited['failed'] and waited['jobs'][0]['outcome'] == 'succeeded'
    other = run_module('job_info', migrate_args(source, workdir))
    assert other['failed'] and 'no QMP socket' in other['msg'], 'only named migrations outlive the VM'


def test_the_destination_witnesses_an_outcome_nobody_saw(workdir, pair, run_module):
    source, dest = pair()
    with QMPConnection(source.obs_sock) as qmp:
        started = run_module('migration', migrate_args(source, workdir, name='unseen',
                                                       dest_socket=str(dest.sock)))
        assert started['changed'] and not started['failed'], started.get('msg')
        qmp.wait_event('MIGRATION', timeout=30, status='completed')
    source.stop()
    info = run_module('job_info', migrate_args(source, workdir, name=['unseen']))
    assert info['jobs'][0]['outcome'] == 'succeeded'
    assert info['jobs'][0]['lost'] is False


def test_cancel_midway(workdir, run_module):
    """The destination reads nothing, so the migration holds at ``active`` until canceled."""
    source = start_source(workdir, ram_mb=32)
    try:
        with frozen_destination(workdir) as (_dest, uri):
            started = run_module('migration', migrate_args(source, workdir, name='held',
                                                           dest_uri=uri))
            assert started['changed'] and started['job']['status'] == 'running', started
            canceled = run_module('job', migrate_args(source, workdir, name='held',
                                                      state='canceled', wait_timeout=30))
            assert canceled['changed'], canceled.get('msg')
        info = run_module('job_info', migrate_args(source, workdir, name=['held']))
        record = info['jobs'][0]
        assert (record['status'], record['raw_status'], record['outcome']) == (
            'concluded', 'cancelled', 'canceled')
        assert run_state(source) == 'running', 'the guest keeps running on the source'
        again = run_module('job', migrate_args(source, workdir, name='held', state='canceled'))
        assert not again['changed']
        gone = run_module('job', migrate_args(source, workdir, name='held', state='absent',
                                              forget=True))
        assert gone['changed']
        listed = run_module('job_info', migrate_args(source, workdir, include_dismissed=True))
        assert listed['jobs'] == []
    finally:
        source.stop()


def test_failure_carries_qemus_words(workdir, pair, run_module):
    source, _dest = pair()
    args = migrate_args(source, workdir, name='nowhere', dest_uri='tcp:127.0.0.1:9', wait='concluded',
                        wait_timeout=30)
    failed = run_module('migration', args)
    assert failed['failed'] and failed['msg'].startswith("job 'nowhere' failed: ")
    assert 'Connection refused' in failed['msg'], failed['msg']
    assert 'Traceback' not in failed['raw']
    again = run_module('migration', args)
    assert again['failed'] and not again['changed'] and 'Connection refused' in again['msg']
    assert run_state(source) == 'running'


def test_postcopy_after_passes(workdir, pair, run_module):
    source, dest = pair(ram_mb=32)
    moved = run_module('migration', migrate_args(
        source, workdir, name='pc', dest_socket=str(dest.sock), postcopy=True,
        postcopy_after_passes=1, bandwidth=8 << 20, wait='concluded', wait_timeout=60))
    assert not moved['failed'], moved.get('msg')
    job = moved['job']
    assert job['outcome'] == 'succeeded' and job['postcopy'] is True
    assert job['actions_taken'] == ['postcopy']
    assert run_state(dest) == 'running'


def test_completion_policy_cancel(workdir, run_module):
    """A migration held at ``active`` (the destination reads nothing) outlives the timeout."""
    source = start_source(workdir, ram_mb=32)
    try:
        with frozen_destination(workdir) as (_dest, uri):
            moved = run_module('migration', migrate_args(
                source, workdir, name='policy-cancel', dest_uri=uri, completion_timeout=1,
                completion_action='cancel', wait='concluded', wait_timeout=60))
        assert moved['failed'] and 'did not migrate' in moved['msg'], moved.get('msg')
        assert moved['job']['outcome'] == 'canceled' and 'jobs' not in moved
        assert run_state(source) == 'running'
    finally:
        source.stop()


@pytest.mark.parametrize('action', ['postcopy', 'pause'])
def test_completion_policy(workdir, pair, run_module, action):
    source, dest = pair(ram_mb=32)
    moved = run_module('migration', migrate_args(
        source, workdir, name=f'policy-{action}', dest_socket=str(dest.sock),
        bandwidth=8 << 20, postcopy=action == 'postcopy', completion_timeout=1,
        completion_action=action, wait='concluded', wait_timeout=60))
    assert not moved['failed'], moved.get('msg')
    assert moved['job']['outcome'] == 'succeeded'
    assert moved['job']['actions_taken'] == [action]
    assert run_state(source) == 'postmigrate'
    assert run_state(dest) == 'running', 'a guest paused to converge is resumed on arrival'


def test_wait_timeout_returns_the_last_record(workdir, run_module):
    source = start_source(workdir, ram_mb=32)
    try:
        with frozen_destination(workdir) as (_dest, uri):
            run_module('migration', migrate_args(source, workdir, name='long', dest_uri=uri))
            waited = run_module('job_wait', migrate_args(source, workdir, name=['long'],
                                                         timeout=1))
            assert waited['failed'] and 'timed out' in waited['msg']
            last = waited['jobs'][0]
            assert last['status'] == 'running' and last['raw_status'] == 'active'
            assert 0 < last['progress']['current'] < last['progress']['total']
            assert 'rate' in last['progress']
            run_module('job', migrate_args(source, workdir, name='long', state='canceled'))
    finally:
        source.stop()


def test_bad_requests_change_nothing(workdir, pair, vm, run_module):
    source, dest = pair()
    not_waiting = vm(name='busy')
    cases = [
        ({'name': 'x'}, "job 'x': give dest_uri"),
        ({'name': 'x', 'dest_uri': 'file:/tmp/x'}, 'must start with one of tcp:, unix:, exec:'),
        ({'name': 'x', 'dest_uri': 'tcp:127.0.0.1:9', 'bandwidth': -1}, 'must not be negative'),
        ({'name': 'x', 'dest_uri': 'tcp:127.0.0.1:9', 'postcopy_after_passes': 2},
         'needs postcopy: true'),
        ({'name': 'x', 'dest_socket': str(not_waiting.sock)},
         'is prelaunch, not waiting for an incoming migration'),
        ({'name': 'x', 'dest_socket': str(workdir / 'nosuch.sock')},
         f"job 'x': no QMP socket at {workdir / 'nosuch.sock'} (dest_socket): start the destination"),
        ({'name': 'x', 'dest_socket': str(dest.sock), 'tls_creds': 'nosuch'},
         "the destination QEMU has no object 'nosuch' for tls_creds"),
        ({'name': 'x', 'dest_uri': 'tcp:127.0.0.1:9', 'tls_creds': 'nosuch'},
         "the source QEMU has no object 'nosuch' for tls_creds"),
        ({'name': '../x', 'dest_uri': 'tcp:127.0.0.1:9'}, "invalid job name '../x'"),
    ]
    for options, message in cases:
        result = run_module('migration', migrate_args(source, workdir, **options))
        assert result['failed'] and message in result['msg'], (options, result.get('msg'))
        assert '\n' not in result['msg'] and 'Traceback' not in result['raw']
    assert run_state(source) == 'running'
    info = run_module('job_info', migrate_args(source, workdir, include_dismissed=True))
    assert info['jobs'] == []


def test_between_two_hosts_over_tcp(workdir, run_module):
    with two_hosts() as (here, there):
        source = start_source(workdir, prefix=here.prefix)
        dest = start_destination(workdir, prefix=there.prefix)
        try:
            moved = run_module('migration', migrate_args(
                source, workdir, name='to-there', dest_socket=str(dest.sock),
                dest_uri=f'tcp:{there.address}:0', wait='concluded', wait_timeout=60))
            assert not moved['failed'], moved.get('msg')
            assert moved['job']['dest_uri'].startswith(f'tcp:{there.address}:')
            assert moved['job']['outcome'] == 'succeeded'
            assert run_state(dest) == 'running'
        finally:
            dest.stop()
            source.stop()
