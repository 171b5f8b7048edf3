"""A table of bad inputs, all run in one playbook: each fails with one clear line, shows no
traceback and changes nothing (QEMU's jobs, the ledger and the files stay as they were)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from harness import assert_ok
from harness.faults import fake_monitor, ledger_records

#: (case, module, arguments, fragment of the message). ``{sock}`` and friends are filled in.
CASES = [
    # the monitor
    ('no-socket', 'job_info', {'socket': '{work}/none.sock'}, 'no QMP socket at {work}/none.sock'),
    ('silent-socket', 'job_info', {'socket': '{silent}', 'connect_timeout': 1},
     'sent no greeting within 1.0s'),
    ('smtp-socket', 'job_info', {'socket': '{garbage}'}, 'cannot connect to QMP socket {garbage}'),
    ('hangup-socket', 'job_info', {'socket': '{hangup}'}, 'cannot connect to QMP socket {hangup}'),
    ('regular-file', 'job_info', {'socket': '{work}/disk0.qcow2'},
     'cannot connect to QMP socket {work}/disk0.qcow2'),
    ('busy-monitor', 'job_info', {'socket': '{busy}', 'connect_timeout': 1},
     'another client holds it'),
    ('negative-connect-timeout', 'job_info', {'connect_timeout': -1},
     'connect_timeout must not be negative'),
    ('ledger-under-a-file', 'job_info', {'ledger_dir': '{work}/disk0.qcow2/ledger'},
     'ledger {work}/disk0.qcow2/ledger'),
    ('no-qemu-qmp', 'job_info', {}, 'Failed to import the required Python library (qemu.qmp)'),
    # names
    ('name-dotdot', 'block_job', {'name': '../etc/passwd', 'type': 'backup', 'device': 'disk0',
                                  'target': '{work}/x.qcow2'}, "invalid job name '../etc/passwd'"),
    ('name-slash', 'block_job', {'name': 'a/b', 'type': 'backup', 'device': 'disk0',
                                 'target': '{work}/x.qcow2'}, "invalid job name 'a/b'"),
    ('name-absolute', 'job', {'name': '/tmp/x', 'state': 'absent'}, "invalid job name '/tmp/x'"),
    ('name-hidden', 'job_wait', {'name': ['.ledger']}, "invalid job name '.ledger'"),
    ('name-empty', 'job', {'name': '', 'state': 'absent'}, "invalid job name ''"),
    ('name-too-long', 'job_info', {'name': ['x' * 129]}, 'use 1-128 characters'),
    ('name-newline', 'job', {'name': 'run1\n', 'state': 'paused'}, "invalid job name 'run1\\n'"),
    ('name-space', 'migration', {'name': 'to there', 'dest_socket': '{work}/none.sock'},
     "invalid job name 'to there'"),
    ('name-in-a-list', 'job_wait', {'name': ['run1', '../run1']}, "invalid job name '../run1'"),
    ('name-of-a-backup', 'backup', {'name': '..', 'target_dir': '{work}'}, "invalid job name '..'"),
    # options
    ('stream-with-target', 'block_job', {'name': 'o1', 'type': 'stream', 'device': 'disk0',
                                         'target': '{work}/x.qcow2'},
     "job 'o1': type stream does not take target"),
    ('backup-without-target', 'block_job', {'name': 'o2', 'type': 'backup', 'device': 'disk0'},
     "job 'o2': type backup needs target"),
    ('negative-speed', 'block_job', {'name': 'o3', 'type': 'backup', 'device': 'disk0',
                                     'target': '{work}/x.qcow2', 'speed': -1},
     "job 'o3': speed must not be negative (got -1)"),
    ('negative-speed-change', 'job', {'name': 'run1', 'speed': -5},
     "job 'run1': speed must not be negative (got -5)"),
    ('negative-wait-timeout', 'block_job', {'name': 'o4', 'type': 'backup', 'device': 'disk0',
                                            'target': '{work}/x.qcow2', 'wait': 'concluded',
                                            'wait_timeout': -1},
     'wait_timeout must not be negative'),
    ('negative-timeout', 'job_wait', {'name': ['run1'], 'timeout': -0.5},
     'timeout must not be negative'),
    ('size-not-a-size', 'block_job', {'name': 'o5', 'type': 'create', 'target': '{work}/x.qcow2',
                                      'size': 'lots'}, "job 'o5': size 'lots' is not a positive"),
    ('create-auto-dismiss', 'block_job', {'name': 'o6', 'type': 'create',
                                          'target': '{work}/x.qcow2', 'size': '1M',
                                          'auto_dismiss': True},
     "job 'o6': create jobs always wait to be dismissed"),
    ('bitmap-mode-alone', 'block_job', {'name': 'o7', 'type': 'backup', 'device': 'disk0',
                                        'target': '{work}/x.qcow2', 'bitmap_mode': 'never'},
     "job 'o7': bitmap_mode needs a bitmap"),
    ('migration-nowhere', 'migration', {'name': 'o8'}, "job 'o8': give "),
    ('postcopy-passes-alone', 'migration', {'name': 'o9', 'dest_socket': '{work}/none.sock',
                                            'postcopy_after_passes': 2},
     "job 'o9': postcopy_after_passes needs postcopy: true"),
    ('tls-hostname-alone', 'migration', {'name': 'o10', 'dest_socket': '{work}/none.sock',
                                         'tls_hostname': 'dst'},
     "job 'o10': tls_hostname needs tls_creds"),
    ('negative-bandwidth', 'migration', {'name': 'o11', 'dest_socket': '{work}/none.sock',
                                         'bandwidth': -1},
     "job 'o11': bandwidth must not be negative"),
    ('incremental-without-bitmap', 'backup', {'name': 'o12', 'mode': 'incremental',
                                              'target_dir': '{work}'},
     "job 'o12': an incremental backup needs a bitmap"),
    ('backup-disk-without-target', 'backup', {'name': 'o13', 'disks': [{'device': 'disk0'}]},
     "job 'o13': disk 'disk0' needs a target, or give target_dir"),
    ('target-exists', 'block_job', {'name': 'o14', 'type': 'backup', 'device': 'disk0',
                                    'target': '{work}/disk0.qcow2'}, 'already exists'),
    ('reuse-missing-target', 'block_job', {'name': 'o15', 'type': 'backup', 'device': 'disk0',
                                           'target': '{work}/x.qcow2', 'reuse_target': True},
     "job 'o15': reuse_target is true but target"),
    ('unknown-device', 'block_job', {'name': 'o16', 'type': 'backup', 'device': 'nope',
                                     'target': '{work}/x.qcow2'},
     "no block node or device named 'nope'"),
    ('name-taken', 'block_job', {'name': 'done1', 'type': 'mirror', 'device': 'disk0',
                                 'target': '{work}/x.qcow2'},
     "job 'done1' already exists as a different job"),
    # verbs in the wrong state
    ('complete-a-backup', 'job', {'name': 'run1', 'state': 'completed'},
     'only mirror and active commit jobs can be completed'),
    ('pause-concluded', 'job', {'name': 'done1', 'state': 'paused'}, "cannot pause job 'done1'"),
    ('resume-concluded', 'job', {'name': 'done1', 'state': 'running'},
     "cannot resume job 'done1'"),
    ('speed-concluded', 'job', {'name': 'done1', 'speed': 1024},
     "cannot change the speed of job 'done1'"),
    ('finalize-ready', 'job', {'name': 'ready1', 'state': 'finalized'}, 'complete it first'),
    ('dismiss-running', 'job', {'name': 'run1', 'state': 'absent'}, 'set cancel: true'),
    ('ready-of-a-backup', 'job_wait', {'name': ['run1'], 'state': 'ready'},
     'cannot reach ready'),
    ('unknown-job', 'job', {'name': 'ghost', 'state': 'completed'}, "job 'ghost' not found"),
]

SETUP = '''
- name: Jobs in each state
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/vmjobs.qemu.jobs:
      socket: "{{ sock }}"
      ledger_dir: "{{ ledger }}"
  tasks:
    - name: A backup that keeps running
      vmjobs.qemu.block_job: {name: run1, type: backup, device: disk0, target: "{{ work }}/run1.qcow2", speed: 1}
    - name: A backup that has concluded
      vmjobs.qemu.block_job: {name: done1, type: backup, device: disk2, target: "{{ work }}/done1.qcow2", wait: concluded}
    - name: A mirror that is ready
      vmjobs.qemu.block_job: {name: ready1, type: mirror, device: disk1, target: "{{ work }}/ready1.qcow2", wait: ready}
'''


def fill(value, places):
    if isinstance(value, str):
        return value.format(**places)
    if isinstance(value, list):
        return [fill(v, places) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, places) for k, v in value.items()}
    return value


def table_playbook(places, results):
    tasks = []
    for case, module, args, _fragment in CASES:
        args = dict({'socket': places['sock'], 'ledger_dir': places['ledger']},
                    **fill(args, places))
        task = {'name': case, f'vmjobs.qemu.{module}': args, 'register': 'result',
                'ignore_errors': True}
        if case == 'no-qemu-qmp':  # a Python on the target without the library
            task['vars'] = {'ansible_python_interpreter': places['bare_python']}
        tasks.append(task)
        tasks.append({'name': f'keep {case}', 'ansible.builtin.set_fact': {
            'results': '{{ results | combine({%r: result}) }}'.replace('%r', repr(case))}})
    tasks.append({'name': 'Write the results', 'ansible.builtin.copy': {
        'dest': str(results), 'content': '{{ results | to_json }}', 'mode': '0600'}})
    return json.dumps([{'name': 'Bad inputs', 'hosts': 'localhost', 'gather_facts': False,
                        'vars': {'results': {}}, 'tasks': tasks}], indent=1) + '\n'


def state_of(obs, ledger):
    jobs = {j['id']: (j['status'], j['current-progress'] > 0) for j in obs.cmd('query-jobs')}
    speeds = {j['device']: j['speed'] for j in obs.cmd('query-block-jobs')}
    records = {name: (r['state'], r['params']) for name, r in ledger_records(ledger).items()}
    return jobs, speeds, records


def files_of(work: Path):
    return sorted(str(p.relative_to(work)) for p in work.rglob('*')
                  if 'ansible-tmp' not in p.parts and p.suffix not in ('.yml', '.json', '.log')
                  and not p.name.startswith(('playbook-', 'vars-')))


@pytest.fixture
def bare_python(tmp_path_factory):
    """A Python without qemu.qmp: a venv of the system Python, without site packages."""
    path = tmp_path_factory.mktemp('bare') / 'venv'
    subprocess.run(['python3', '-m', 'venv', '--without-pip', str(path)], check=True,
                   timeout=120)
    return path / 'bin' / 'python'


def test_bad_inputs(workdir, make_image, qsd, vm, qmp_observer, busy_socket, run_playbook,
                    bare_python):
    assert len(CASES) >= 30 and len({case[0] for case in CASES}) == len(CASES)
    daemon = vm(disks={'disk0': make_image('disk0.qcow2', pattern=0x5A),
                       'disk1': make_image('disk1.qcow2', pattern=0x5B),
                       'disk2': make_image('disk2.qcow2', '4M')})
    other = qsd(name='other')
    ledger = workdir / 'ledger'
    places = {'work': str(workdir), 'sock': str(daemon.sock), 'ledger': str(ledger),
              'busy': str(other.sock), 'silent': str(workdir / 'silent.sock'),
              'garbage': str(workdir / 'smtp.sock'), 'hangup': str(workdir / 'hangup.sock'),
              'bare_python': str(bare_python)}
    assert_ok(run_playbook(SETUP, {'sock': places['sock'], 'ledger': places['ledger'],
                                   'work': places['work']}))
    obs = qmp_observer(daemon.obs_sock)
    before, files_before = state_of(obs, ledger), files_of(workdir)

    results_file = workdir / 'results.json'
    with fake_monitor(workdir / 'silent.sock', 'silent'), \
            fake_monitor(workdir / 'smtp.sock', 'garbage'), \
            fake_monitor(workdir / 'hangup.sock', 'hangup'), \
            busy_socket(other.sock):
        played = run_playbook(table_playbook(places, results_file))
    assert_ok(played)
    results = json.loads(results_file.read_text())

    problems = []
    for case, _module, _args, fragment in CASES:
        result = results[case]
        msg = result.get('msg', '')
        fragment = fill(fragment, places)
        if not result.get('failed'):
            problems.append(f'{case}: did not fail: {result}')
        elif '\n' in msg.strip() or fragment not in msg:
            problems.append(f'{case}: message {msg!r} lacks {fragment!r}')
        elif 'module_stderr' in result or 'Traceback' in msg + str(result.get('exception', '')):
            problems.append(f'{case}: crashed: {result}')
        print(f'{case:28} {msg}')
    assert not problems, '\n'.join(problems)

    assert state_of(obs, ledger) == before, 'QEMU and the ledger are as they were'
    assert files_of(workdir) == files_before, 'no file was created or removed'
