"""The backup module against a real VM: chains that restore exactly, grouped failure, refusals.

Every backup is read back through its backing chain with ``qemu-img compare`` and must
equal the disk as it was when the backup started (a reference copy that took the
same writes; see harness/chains.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness import assert_ok
from harness.chains import Disks, backing_file, compare

NAMES = ['f1', 'i1', 'i2', 'd1']


def backup(run_module, machine: Disks, ledger_dir: Path, name: str, mode: str,
           check: bool = False, **options: Any) -> dict[str, Any]:
    target_dir = machine.workdir / name
    target_dir.mkdir(exist_ok=True)
    args = {'socket': str(machine.daemon.sock), 'ledger_dir': str(ledger_dir), 'name': name,
            'mode': mode, 'bitmap': 'nightly', 'target_dir': str(target_dir), 'wait': 'concluded',
            'wait_timeout': 30}
    args.update(options)
    return run_module('backup', args, check)


def dismiss(run_module, machine: Disks, ledger_dir: Path, name: str,
            forget: bool = False) -> dict[str, Any]:
    return run_module('job', {'socket': str(machine.daemon.sock), 'ledger_dir': str(ledger_dir),
                              'name': name, 'state': 'absent', 'forget': forget})


def test_full_incremental_incremental_differential_on_two_disks(disks, run_module, run_playbook,
                                                                ledger_dir, workdir):
    expected = {}
    first = backup(run_module, disks, ledger_dir, 'f1', 'full')
    assert first['changed'] and first['job']['outcome'] == 'succeeded', first
    assert [(m['name'], m['device'], m['outcome']) for m in first['job']['members']] == [
        ('f1.disk0', 'disk0', 'succeeded'), ('f1.disk1', 'disk1', 'succeeded')]
    expected['f1'] = disks.remember('f1')
    assert set(disks.bitmaps('disk0')) == {'nightly', 'nightly.full'}
    assert all(b['persistent'] and b['count'] == 0 for b in disks.bitmaps('disk1').values())
    again = backup(run_module, disks, ledger_dir, 'f1', 'full')
    assert not again['changed'] and again['job']['outcome'] == 'succeeded', again

    disks.write('disk0', 0x33, '1M', '1M')
    disks.write('disk1', 0x44, '3M', '512K')
    disks.write('disk0', None, '6M', '1M')  # zeroes must reach the incremental too
    inc = backup(run_module, disks, ledger_dir, 'i1', 'incremental')
    assert inc['changed'] and inc['job']['outcome'] == 'succeeded', inc
    assert inc['job']['progress']['total'] == 2 * 2**20 + 512 * 2**10
    expected['i1'] = disks.remember('i1')

    disks.write('disk0', 0x55, '1536K', '1M')
    disks.write('disk1', 0x66, '0', '64K')
    inc2 = backup(run_module, disks, ledger_dir, 'i2', 'incremental', compress=True,
                  perf={'max_workers': 2})
    assert inc2['job']['outcome'] == 'succeeded', inc2
    assert {d['device']: d['backing'] for d in inc2['backup']['disks']} == {
        'disk0': str(workdir / 'i1' / 'disk0.qcow2'), 'disk1': str(workdir / 'i1' / 'disk1.qcow2')}
    expected['i2'] = disks.remember('i2')

    disks.write('disk1', 0x77, '7M', '1M')
    diff = backup(run_module, disks, ledger_dir, 'd1', 'differential')
    assert diff['job']['outcome'] == 'succeeded', diff
    expected['d1'] = disks.remember('d1')
    counts = {name: b['count'] for name, b in disks.bitmaps('disk1').items()}
    assert counts['nightly'] == 2**20 and counts['nightly.full'] > counts['nightly'], \
        'a differential clears no bitmap'

    # One job each for job_info, job_wait and job; dismissal detaches every member's target.
    assert_ok(run_playbook(GROUP_PLAYBOOK, {'socket': str(disks.daemon.sock),
                                            'ledger_dir': str(ledger_dir), 'names': NAMES}))
    assert disks.obs.cmd('query-jobs') == []
    assert disks.attached_by_collection() == []

    for name in NAMES:
        for dev in ('disk0', 'disk1'):
            compare(workdir / name / f'{dev}.qcow2', expected[name][dev])
    assert backing_file(workdir / 'i1' / 'disk0.qcow2') == '../f1/disk0.qcow2'
    assert backing_file(workdir / 'i2' / 'disk1.qcow2') == '../i1/disk1.qcow2'
    assert backing_file(workdir / 'd1' / 'disk0.qcow2') == '../f1/disk0.qcow2'


GROUP_PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/vmjobs.qemu.jobs:
      socket: "{{ socket }}"
      ledger_dir: "{{ ledger_dir }}"
  tasks:
    - name: List the backups
      vmjobs.qemu.job_info:
        type: backup
      register: info

    - name: Wait for them by name
      vmjobs.qemu.job_wait:
        name: "{{ names }}"
        state: concluded
        timeout: 10
      register: waited

    - name: Completing a backup is refused
      vmjobs.qemu.job:
        name: i1
        state: completed
      register: complete
      ignore_errors: true

    - name: Dismiss them
      vmjobs.qemu.job:
        name: "{{ item }}"
        state: absent
      loop: "{{ names }}"
      register: dismissed

    - name: Dismiss them again
      vmjobs.qemu.job:
        name: "{{ item }}"
        state: absent
      loop: "{{ names }}"
      register: again

    - name: The tombstones remember the outcomes and members
      vmjobs.qemu.job_info:
        include_dismissed: true
      register: tombstones

    - name: Check
      ansible.builtin.assert:
        that:
          - info.jobs | map(attribute='name') | list == names | sort
          - info.jobs | map(attribute='status') | unique == ['concluded']
          - info.jobs | map(attribute='members') | map('length') | unique == [2]
          - waited.jobs | map(attribute='outcome') | unique == ['succeeded']
          - complete is failed
          - "'can be completed' in complete.msg"
          - dismissed is changed
          - again is not changed
          - tombstones.jobs | selectattr('dismissed') | map(attribute='name') | list == names | sort
          - tombstones.jobs | map(attribute='outcome') | unique == ['succeeded']
          - (tombstones.jobs | first).members | length == 2
"""


def test_grouped_failure_keeps_the_bitmaps_and_a_retry_succeeds(disks, run_module, small_fs,
                                                                ledger_dir, workdir):
    assert backup(run_module, disks, ledger_dir, 'f1', 'full')['job']['outcome'] == 'succeeded'
    dismiss(run_module, disks, ledger_dir, 'f1')
    disks.write('disk0', 0x31, '0', '1M')
    disks.write('disk1', 0x32, '1M', '6M')
    expected = disks.remember('i1')
    before = {dev: {n: b['count'] for n, b in disks.bitmaps(dev).items()}
              for dev in ('disk0', 'disk1')}
    small = small_fs('2M')
    failed = backup(run_module, disks, ledger_dir, 'i1', 'incremental', disks=[
        {'device': 'disk0'}, {'device': 'disk1', 'target': str(small / 'disk1.qcow2')}])
    assert failed['failed'], failed
    assert failed['msg'] == "job 'i1' failed: disk1: No space left on device"
    group = failed['job']
    assert (group['status'], group['outcome']) == ('concluded', 'failed')
    assert {m['device']: (m['outcome'], m['error']) for m in group['members']} == {
        'disk0': ('canceled', 'Operation canceled'),
        'disk1': ('failed', 'No space left on device')}
    after = {dev: {n: b['count'] for n, b in disks.bitmaps(dev).items()}
             for dev in ('disk0', 'disk1')}
    assert after == before, 'the bitmaps keep their point in time'

    forgot = dismiss(run_module, disks, ledger_dir, 'i1', forget=True)
    assert forgot['changed'], forgot
    assert disks.obs.cmd('query-jobs') == [] and disks.attached_by_collection() == []

    (workdir / 'i1-retry').mkdir()
    retry = backup(run_module, disks, ledger_dir, 'i1', 'incremental',
                   target_dir=str(workdir / 'i1-retry'))
    assert retry['changed'] and retry['job']['outcome'] == 'succeeded', retry
    dismiss(run_module, disks, ledger_dir, 'i1')
    for dev in ('disk0', 'disk1'):
        compare(workdir / 'i1-retry' / f'{dev}.qcow2', expected[dev])


def test_refusals_name_the_job_and_say_what_to_do(disks, run_module, ledger_dir, workdir):
    refused = backup(run_module, disks, ledger_dir, 'i0', 'incremental', check=True)
    assert refused['failed'] and refused['msg'] == (
        "job 'i0': there is no full backup of disk 'disk0' with bitmap 'nightly' to build an "
        'incremental backup on; run a full backup first')
    planned = backup(run_module, disks, ledger_dir, 'f1', 'full', check=True)
    assert planned['changed'] and not planned['failed'], planned
    assert disks.obs.cmd('query-jobs') == [] and not os.listdir(workdir / 'f1')

    assert backup(run_module, disks, ledger_dir, 'f1', 'full')['job']['outcome'] == 'succeeded'
    disks.obs.cmd('block-dirty-bitmap-remove', node='disk1-fmt', name='nightly')
    refused = backup(run_module, disks, ledger_dir, 'i1', 'incremental')
    assert refused['msg'] == ("job 'i1': dirty bitmap 'nightly' of disk 'disk1' (node disk1-fmt) "
                              'is missing; run a full backup'), refused
    os.unlink(workdir / 'f1' / 'disk0.qcow2')
    refused = backup(run_module, disks, ledger_dir, 'd1', 'differential')
    assert refused['msg'] == (
        f"job 'd1': image {workdir}/f1/disk0.qcow2 of full backup 'f1' (disk 'disk0'), which "
        'this backup would build on, is gone; run a full backup'), refused
    assert not os.listdir(workdir / 'i1') and not os.listdir(workdir / 'd1'), \
        'a refused backup leaves nothing behind'


def test_forgetting_a_chain_removes_its_bitmaps(disks, run_module, ledger_dir, workdir):
    first = backup(run_module, disks, ledger_dir, 'f1', 'full')
    assert first['backup']['marks'] == [
        {'device': d, 'names': ['nightly', 'nightly.full']} for d in ('disk0', 'disk1')]
    disks.obs.cmd('block-dirty-bitmap-add', node='disk1-fmt', name='other', persistent=True)
    args = {'socket': str(disks.daemon.sock), 'ledger_dir': str(ledger_dir),
            'state': 'absent', 'bitmap': 'nightly'}
    planned = run_module('backup', args, True)
    assert planned['changed'] and set(disks.bitmaps('disk0')) == {'nightly', 'nightly.full'}
    forgot = run_module('backup', args)
    assert forgot['changed'] and forgot['chain']['backups'] == ['f1'], forgot
    assert forgot['chain']['removed'] == [
        {'device': d, 'names': ['nightly', 'nightly.full']} for d in ('disk0', 'disk1')]
    assert disks.bitmaps('disk0') == {} and set(disks.bitmaps('disk1')) == {'other'}, \
        "only the chain's bitmaps go"
    assert (workdir / 'f1' / 'disk0.qcow2').exists(), 'the images stay'
    again = run_module('backup', args)
    assert not again['failed'] and not again['changed'], again
    refused = backup(run_module, disks, ledger_dir, 'i1', 'incremental')
    assert 'there is no full backup' in refused['msg'], refused
    nameless = run_module('backup', dict(args, state='present'))
    assert nameless['failed'] and 'a backup needs a name' in nameless['msg'], nameless
