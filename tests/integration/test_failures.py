"""Expected failures: one clear line naming the job and QEMU's text, nothing changed, no traceback."""

from __future__ import annotations

import pytest


@pytest.fixture
def target(qsd, workdir, make_image, run_module):
    """A qemu-storage-daemon with disk0 and a ``call(module, **args)`` bound to it."""
    daemon = qsd(disks={'disk0': make_image('disk0.qcow2', pattern=0x5A)})

    def call(module, check=False, **args):
        args.setdefault('socket', str(daemon.sock))
        args.setdefault('ledger_dir', str(workdir / 'ledger'))
        return run_module(module, args, check=check)
    call.daemon = daemon
    return call


def assert_clean_failure(result, *fragments):
    assert result['failed'], result
    msg = result['msg']
    assert '\n' not in msg, msg
    for fragment in fragments:
        assert fragment in msg, msg
    assert 'Traceback' not in result['raw'] + msg
    assert 'module_stderr' not in result and 'exception' not in result, result


def jobs_of(qmp_observer, daemon):
    return qmp_observer(daemon.obs_sock).cmd('query-jobs')


def test_unknown_device(target, workdir, qmp_observer):
    result = target('block_job', name='b1', type='backup', device='nope',
                    target=str(workdir / 'b1.qcow2'))
    assert_clean_failure(result, "job 'b1'", "no block node or device named 'nope'", 'disk0')
    assert jobs_of(qmp_observer, target.daemon) == []
    assert not (workdir / 'b1.qcow2').exists()
    assert target('job_info', include_dismissed=True)['jobs'] == []


def test_name_taken_by_another_job(target, workdir):
    first = target('block_job', name='j1', type='backup', device='disk0',
                   target=str(workdir / 'j1.qcow2'), wait='concluded')
    assert first['changed'] and first['job']['outcome'] == 'succeeded'
    result = target('block_job', name='j1', type='mirror', device='disk0',
                    target=str(workdir / 'j1.qcow2'))
    assert_clean_failure(result, "job 'j1' already exists as a different job", "type='backup'",
                         "'mirror'")
    other_target = target('block_job', name='j1', type='backup', device='disk0',
                          target=str(workdir / 'other.qcow2'))
    assert_clean_failure(other_target, "job 'j1'", 'target=')
    assert not (workdir / 'other.qcow2').exists()


def test_complete_a_backup_fails_at_once(target, workdir):
    target('block_job', name='b2', type='backup', device='disk0',
           target=str(workdir / 'b2.qcow2'), speed=1 << 20)
    result = target('job', name='b2', state='completed', wait_timeout=300)
    assert_clean_failure(result, "job 'b2' (backup) is running",
                         'only mirror and active commit jobs can be completed',
                         'verbs allowed now: cancel, pause, resume, set-speed')
    assert result['job']['status'] == 'running'


def test_io_error_reaches_the_user(target, small_fs, qmp_observer):
    full = small_fs('4M')
    result = target('block_job', name='b3', type='backup', device='disk0',
                    target=str(full / 'b3.qcow2'), wait='concluded')
    assert_clean_failure(result, "job 'b3' failed: No space left on device")
    again = target('job_wait', name=['b3'])
    assert_clean_failure(again, "job 'b3' failed: No space left on device")
    info = target('job_info', name=['b3'])['jobs'][0]
    assert (info['status'], info['outcome'], info['error']) == (
        'concluded', 'failed', 'No space left on device')
    lenient = target('job_wait', name=['b3'], fail_on_error=False)
    assert not lenient['failed'] and lenient['jobs'][0]['outcome'] == 'failed'


def test_socket_not_there(workdir, run_module):
    result = run_module('job_info', {'socket': str(workdir / 'none.sock'),
                                     'ledger_dir': str(workdir / 'ledger')})
    assert_clean_failure(result, 'no QMP socket at %s' % (workdir / 'none.sock'))


def test_not_a_qmp_socket(workdir, run_module):
    sock = workdir / 'plain.sock'
    import socket as sk
    server = sk.socket(sk.AF_UNIX, sk.SOCK_STREAM)
    server.bind(str(sock))
    server.listen(1)
    try:
        result = run_module('job_info', {'socket': str(sock), 'connect_timeout': 1,
                                         'ledger_dir': str(workdir / 'ledger')})
    finally:
        server.close()
    assert_clean_failure(result, str(sock), 'no greeting within 1.0s')


def test_busy_socket(target, busy_socket):
    with busy_socket(target.daemon.sock):
        result = target('job_info', connect_timeout=1)
    assert_clean_failure(result, 'sent no greeting within 1.0s', 'another client holds it')


@pytest.mark.parametrize('name', ['1abc', '../etc', 'a/b', '.hidden', 'x' * 129, 'sp ace'])
def test_invalid_names(target, workdir, name):
    result = target('block_job', name=name, type='backup', device='disk0',
                    target=str(workdir / 'x.qcow2'))
    assert_clean_failure(result, 'invalid job name')
    assert not (workdir / 'ledger').exists() or not list((workdir / 'ledger').rglob('*.json'))


@pytest.mark.parametrize('args, fragment', [
    ({'type': 'backup', 'device': 'disk0'}, 'type backup needs target'),
    ({'type': 'stream', 'device': 'disk0', 'target': '/tmp/x'}, 'type stream does not take target'),
    ({'type': 'backup', 'device': 'disk0', 'target': '/tmp/x', 'speed': -1},
     'speed must not be negative'),
    ({'type': 'create', 'target': '/tmp/x', 'size': 'lots'}, "size 'lots' is not a positive size"),
    ({'type': 'backup', 'device': 'disk0', 'target': '/tmp/x', 'sync': 'bitmap'},
     'sync bitmap needs a bitmap'),
])
def test_bad_options(target, args, fragment):
    assert_clean_failure(target('block_job', name='opt', **args), "job 'opt'", fragment)


def test_existing_target_refused(target, workdir, make_image):
    existing = make_image('mine.qcow2', pattern=0x77)
    result = target('block_job', name='b4', type='backup', device='disk0', target=str(existing))
    assert_clean_failure(result, "job 'b4'", 'already exists', 'reuse_target')
    from harness import has_pattern
    assert has_pattern(existing, 0x77, 0, '64M')


def test_absent_needs_cancel_for_a_running_job(target, workdir):
    target('block_job', name='b5', type='backup', device='disk0',
           target=str(workdir / 'b5.qcow2'), speed=1 << 20)
    refused = target('job', name='b5', state='absent')
    assert_clean_failure(refused, "job 'b5' (backup) is running", 'set cancel: true')
    gone = target('job', name='b5', state='absent', cancel=True)
    assert gone['changed'] and gone['job']['outcome'] == 'canceled' and gone['job']['dismissed']
    assert not target('job', name='b5', state='absent')['changed']
    assert not target('job', name='b5', state='canceled')['changed']


def test_cancel_is_idempotent_and_waits(target, workdir):
    target('block_job', name='b6', type='backup', device='disk0',
           target=str(workdir / 'b6.qcow2'), speed=1 << 20)
    canceled = target('job', name='b6', state='canceled')
    assert canceled['changed']
    assert (canceled['job']['status'], canceled['job']['outcome']) == ('concluded', 'canceled')
    assert not target('job', name='b6', state='canceled')['changed']


def test_wait_timeout_reports_last_record(target, workdir):
    target('block_job', name='b7', type='backup', device='disk0',
           target=str(workdir / 'b7.qcow2'), speed=1 << 20)
    result = target('job_wait', name=['b7'], timeout=1.5)
    assert_clean_failure(result, "timed out after", "job 'b7'", 'b7 running')
    assert result['job'] == result['jobs'][0], 'one name: its record as job too'
    assert result['job']['status'] == 'running'
    assert result['job']['progress']['current'] > 0


def test_unknown_job(target):
    assert_clean_failure(target('job', name='ghost', state='completed'), "job 'ghost' not found")
    assert_clean_failure(target('job_wait', name=['ghost']), "job 'ghost' not found")
    assert not target('job', name='ghost', state='absent')['changed']


def test_check_mode_changes_nothing(target, workdir, qmp_observer):
    result = target('block_job', check=True, name='c1', type='backup', device='disk0',
                    target=str(workdir / 'c1.qcow2'))
    assert result['changed'] and not result['failed']
    assert jobs_of(qmp_observer, target.daemon) == []
    assert not (workdir / 'c1.qcow2').exists()
    assert target('job_info', include_dismissed=True)['jobs'] == []
