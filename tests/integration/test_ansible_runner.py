"""The demo playbook under ansible-runner, the runner AWX and Ansible Automation Platform use.

The demo's VM is booted (and removed) by the vmjobs.qemu.test_vm role, also through
ansible-runner. The test reads the job events as AWX stores them: the modules' results
(``runner_on_ok`` events whose ``event_data.res`` holds the ``job`` record) and the live
progress lines, which arrive as ``verbose`` events attributed to the waiting task
(docs/progress.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import ansible_runner
from harness import COLLECTIONS_PATH, REPO, VENV_PYTHON, has_pattern
from harness.paths import VENV_BIN

BOOT = '''
- name: The demo's VM
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Boot or remove it
      ansible.builtin.include_role:
        name: vmjobs.qemu.test_vm
      vars:
        test_vm_dir: "{{ vms_dir }}"
        test_vm_state: "{{ vms_state }}"
        test_vm_vms:
          - name: vm
            disks:
              - id: disk0
                size: 64M
                images: [{file: disk0.qcow2, writes: ["0xa5 0 32M", "0x5a 32M 16M"]}]
              - id: disk1
                size: 32M
                images:
                  - {file: disk1-base.qcow2, writes: ["0x11 0 32M"]}
                  - {file: disk1-snap1.qcow2, writes: ["0x22 8M 8M"]}
                  - {file: disk1-snap2.qcow2, writes: ["0x33 16M 8M"]}
'''
PROGRESS = re.compile(r'^\[localhost\] (?P<job>[\w.-]+): (?P<text>.*)$')


def run(workdir: Path, playbook: Path, extravars: dict[str, Any]) -> Any:
    """``ansible_runner.run`` as AWX would start it, with the collection on its path."""
    private = workdir / 'runner'
    private.mkdir(exist_ok=True)
    return ansible_runner.run(
        private_data_dir=str(private), playbook=str(playbook), quiet=True,
        inventory=f'localhost ansible_connection=local ansible_python_interpreter={VENV_PYTHON}',
        extravars=extravars,
        envvars={'ANSIBLE_COLLECTIONS_PATH': str(COLLECTIONS_PATH),
                 'PATH': f'{VENV_BIN}:{os.environ["PATH"]}',
                 'ANSIBLE_LOCAL_TEMP': str(workdir / 'ansible-tmp')})


def dest_argv(record: dict[str, Any], vms: Path) -> list[str]:
    """The VM's command line without monitor, pidfile and -daemonize, on the images the
    demo leaves (disk0 moved to fast/, disk1 merged into its base): the destination's."""
    argv: list[str] = []
    args = iter(record['argv'])
    for arg in args:
        if arg in ('-pidfile', '-qmp'):
            next(args)
        elif arg != '-daemonize':
            argv.append(arg.replace(f'{vms}/disk0.qcow2', f'{vms}/fast/disk0.qcow2')
                        .replace(f'{vms}/disk1-snap2.qcow2', f'{vms}/disk1-base.qcow2'))
    return argv


def stop_demo_destination(vms: Path) -> None:
    """The destination QEMU the demo starts itself (dest.pid), only if it is that process."""
    with contextlib.suppress(OSError, ValueError):
        pid = int((vms / 'dest.pid').read_text())
        if str(vms / 'dest.pid').encode() in Path(f'/proc/{pid}/cmdline').read_bytes():
            os.kill(pid, signal.SIGTERM)


def test_demo_under_ansible_runner(workdir: Path) -> None:
    vms = workdir / 'vms'
    boot = workdir / 'boot.yml'
    boot.write_text(BOOT)
    booted = run(workdir, boot, {'vms_dir': str(vms), 'vms_state': 'present'})
    try:
        assert (booted.status, booted.rc) == ('successful', 0), booted.stdout.read()
        record = json.loads((vms / 'test_vm.json').read_text())['test_vm_result']['vms']['vm']
        (vms / 'fast').mkdir()
        demo = run(workdir, REPO / 'playbooks' / 'demo.yml', {
            'vm_socket': record['socket'], 'demo_dir': str(vms),
            'vm_argv': dest_argv(record, vms),
            'vmjobs_progress': 'always', 'vmjobs_progress_interval': 0.5})
        events = list(demo.events)
        assert (demo.status, demo.rc) == ('successful', 0), demo.stdout.read()
        # the moved disk0 and the merged disk1 hold the data the VM started with
        assert has_pattern(vms / 'fast' / 'disk0.qcow2', 0xa5, 0, '32M')
        assert has_pattern(vms / 'fast' / 'disk0.qcow2', 0x5a, '32M', '16M')
        assert has_pattern(vms / 'disk1-base.qcow2', 0x33, '16M', '8M')
        assert has_pattern(vms / 'disk1-base.qcow2', 0x22, '8M', '8M')
    finally:
        stop_demo_destination(vms)
        removed = run(workdir, boot, {'vms_dir': str(vms), 'vms_state': 'absent'})
    assert removed.status == 'successful'
    assert not vms.exists(), 'the role removes its directory'

    # The modules' results, as AWX stores them: runner_on_ok with the job record in res.
    results = {(e['event_data']['task_action'], e['event_data']['res']['job']['name']):
               e['event_data']['res']['job']
               for e in events
               if e['event'] == 'runner_on_ok' and 'job' in e['event_data'].get('res', {})}
    migration = results[('vmjobs.qemu.migration', 'vm1-to-new-host')]
    assert migration['type'] == 'migration' and migration['outcome'] == 'succeeded'
    moves = [job for (action, name), job in results.items()
             if action == 'vmjobs.qemu.job' and name.startswith('move-disk0-')]
    assert moves and moves[0]['outcome'] == 'succeeded'
    backups = [job for (action, name), job in results.items() if action == 'vmjobs.qemu.backup']
    assert {job['outcome'] for job in backups} == {'succeeded'} and len(backups) == 2

    # The progress lines: verbose events, in the waiting task's context (AWX shows them
    # under that task, as they come), between its start and its result.
    lines = [e for e in events if e['event'] == 'verbose' and PROGRESS.match(e['stdout'])]
    assert lines, 'progress lines in the event stream'
    counters = {e['uuid']: e['counter'] for e in events}
    for line in lines:
        task = line['event_data']['task_uuid']
        assert line['event_data']['task_action'].startswith('vmjobs.qemu.')
        start = next(e['counter'] for e in events
                     if e['event'] == 'playbook_on_task_start' and e['event_data']['task_uuid'] == task)
        end = next(e['counter'] for e in events
                   if e['event'] == 'runner_on_ok' and e['event_data']['task_uuid'] == task)
        assert start < counters[line['uuid']] < end, line
    texts = {PROGRESS.match(line['stdout'])['job']: PROGRESS.match(line['stdout'])['text']
             for line in lines}
    assert texts['vm1-to-new-host'] == 'concluded (succeeded)'
    assert any(job.startswith('move-disk0-') for job in texts)
