"""Live progress lines on the controller while a task waits."""

from __future__ import annotations

import json
import re
import shlex
import subprocess

import pytest
from harness import assert_ok
from harness.ansible import ansible_env
from harness.paths import VENV_BIN

PLAY = """
- hosts: localhost
  gather_facts: false
  vars:
    vmjobs_progress_interval: 1
  module_defaults:
    group/vmjobs.qemu.jobs:
      socket: "{{ socket }}"
      ledger_dir: "{{ ledger_dir }}"
  tasks:
    - name: Back up slowly
      vmjobs.qemu.block_job:
        name: slow
        type: backup
        device: disk0
        target: "{{ target }}"
        speed: 16777216
        wait: concluded
      register: started
    - name: Wait for it again
      vmjobs.qemu.job_wait:
        name: slow
      register: waited
    - name: Show the results
      ansible.builtin.debug:
        msg: "RESULT {{ {'started': started.changed, 'outcome': started.job.outcome,
                        'waited': waited.changed} | to_json }}"
"""
LINE = re.compile(r'^\[localhost\] slow: running \d+\.\d% [\d.]+ MiB/64\.0 MiB', re.MULTILINE)


def _result(stdout: str) -> dict:
    return json.loads(re.search(r'"msg": "RESULT (.*)"', stdout).group(1).replace('\\"', '"'))


def test_progress_lines_with_verbosity(workdir, make_image, qsd, run_playbook):
    daemon = qsd(disks={'disk0': make_image('disk0.qcow2', pattern=0x5A)})
    play_vars = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger'),
                 'target': str(workdir / 'slow.qcow2')}
    run = run_playbook(PLAY, play_vars, '-v')
    assert_ok(run)
    assert len(LINE.findall(run.stdout)) >= 2, run.stdout
    assert '[localhost] slow: running -> concluded (succeeded)' in run.stdout
    assert 'MiB/s ETA' in run.stdout
    assert _result(run.stdout) == {'started': True, 'outcome': 'succeeded', 'waited': False}


def test_quiet_without_a_terminal(workdir, make_image, qsd, run_playbook):
    daemon = qsd(disks={'disk0': make_image('disk0.qcow2', pattern=0x5A)})
    play_vars = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger'),
                 'target': str(workdir / 'slow.qcow2')}
    run = run_playbook(PLAY, play_vars)
    assert_ok(run)
    assert '[localhost] slow:' not in run.stdout
    assert _result(run.stdout) == {'started': True, 'outcome': 'succeeded', 'waited': False}


def test_a_timeout_reports_the_whole_wait(workdir, make_image, qsd, run_playbook):
    daemon = qsd(disks={'disk0': make_image('disk0.qcow2', pattern=0x5A)})
    play = """
- hosts: localhost
  gather_facts: false
  vars:
    vmjobs_progress: always
    vmjobs_progress_interval: 1
  tasks:
    - name: Back up very slowly and wait too little
      vmjobs.qemu.block_job:
        socket: "{{ socket }}"
        ledger_dir: "{{ ledger_dir }}"
        name: crawl
        type: backup
        device: disk0
        target: "{{ target }}"
        speed: 1048576
        wait: concluded
        wait_timeout: 2.5
"""
    run = run_playbook(play, {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger'),
                              'target': str(workdir / 'crawl.qcow2')})
    assert run.returncode != 0
    failed_line = next(line for line in run.stdout.splitlines() if 'FAILED! => ' in line)
    failure = json.loads(failed_line.split('FAILED! => ', 1)[1])
    assert failure['changed'] is True, 'the job was started'
    waited = float(re.match(r"timed out after ([0-9.]+)s waiting for job 'crawl'",
                            failure['msg']).group(1))
    # The whole wait, not the last stretch: the task never gives up before its timeout,
    # and reports the wait it timed (the speed keeps the copy far from done: 64 s at least).
    assert waited >= 2.5
    assert failure['elapsed'] == pytest.approx(waited, abs=0.1)
    assert failure['job']['status'] == 'running'
    assert run.stdout.count('[localhost] crawl: running') >= 2


def test_lines_on_a_terminal_at_normal_verbosity(workdir, make_image, qsd):
    """``auto`` on a real terminal: ansible-playbook runs under script(1), which gives it a pty."""
    daemon = qsd(disks={'disk0': make_image('disk0.qcow2', pattern=0x5A)})
    play_vars = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger'),
                 'target': str(workdir / 'slow.qcow2')}
    (workdir / 'play.yml').write_text(PLAY)
    (workdir / 'vars.json').write_text(json.dumps(play_vars))
    command = shlex.join([str(VENV_BIN / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
                          '-e', f'@{workdir / "vars.json"}', str(workdir / 'play.yml')])
    run = subprocess.run(['script', '-qec', command, '/dev/null'], env=ansible_env(workdir),
                         cwd=workdir, capture_output=True, text=True, timeout=300,
                         stdin=subprocess.DEVNULL, check=False)
    output = run.stdout.replace('\r', '')
    assert run.returncode == 0, output + run.stderr
    assert len(LINE.findall(output)) >= 2, output
    assert _result(output) == {'started': True, 'outcome': 'succeeded', 'waited': False}
