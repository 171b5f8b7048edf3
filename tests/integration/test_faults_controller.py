"""The controller killed mid-task (SIGKILL of ansible-playbook and its children), then the
playbook run again: every outcome is recovered and no job is started twice.

The kills land while the job runs (even cycles, after QEMU created it) or at any moment
after the playbook started (odd cycles: before the module, inside the start, in the wait).
SIGKILL goes to the controller's process group. Ansible's workers run in sessions of their
own, so a module that had started may live on, orphaned, and finish its task while the
re-run's module works on the same VM: the two must not get in each other's way (they did,
before starts took the monitor ahead of the ledger's lock).
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

from harness import has_pattern
from harness.faults import (
    created_counts,
    kill_group,
    ledger_leftovers,
    ledger_records,
    start_playbook,
    vj_nodes,
)

CYCLES = 20
SIZE = '2M'

PLAYBOOK = '''
- name: Back up and wait
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Start the backup and wait for it
      vmjobs.qemu.block_job:
        socket: "{{ socket }}"
        ledger_dir: "{{ ledger_dir }}"
        name: "{{ job }}"
        type: backup
        device: disk0
        target: "{{ target }}"
        speed: "{{ speed }}"
        wait: concluded
        wait_timeout: 60
      register: backup

    - name: Report the outcome
      ansible.builtin.debug:
        msg: "OUTCOME={{ backup.job.outcome }}"
'''


def wait_until_created(obs, job, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(j['id'] == job for j in obs.cmd('query-jobs')) or created_counts(obs)[job]:
            return
        time.sleep(0.02)
    raise AssertionError(f'{job} never appeared in QEMU')


def run_lane(lane, daemon, obs, workdir, playbook, ledger, cycles, seed):
    """Kill and re-run ``cycles`` playbooks against one daemon; return the kill log."""
    rng = random.Random(seed)
    killed_at = []
    for cycle in cycles:
        job = f'cycle-{cycle:02d}'
        play_vars = {'socket': str(daemon.sock), 'ledger_dir': str(ledger), 'job': job,
                     'target': str(workdir / f'{job}.qcow2'), 'speed': 2 << 20}
        first = start_playbook(workdir, playbook, play_vars, f'{job}-1')
        started = time.monotonic()
        if cycle % 2 == 0:  # mid-wait: the job runs in QEMU
            wait_until_created(obs, job)
            time.sleep(rng.uniform(0.0, 0.8))
        else:  # any moment: before the module, in the middle of the start, in the wait
            time.sleep(rng.uniform(0.3, 3.0))
        kill_group(first)
        killed_at.append((job, round(time.monotonic() - started, 2)))
        again = start_playbook(workdir, playbook, play_vars, f'{job}-2')
        out = again.communicate(timeout=120)[0]
        assert again.returncode == 0, f'{job}: re-run failed after kill at {killed_at[-1]}\n{out}'
        assert 'OUTCOME=succeeded' in out, out
    return killed_at


def test_killed_controller_then_rerun(workdir, make_image, qsd, qmp_observer):
    """Two lanes (two storage daemons, one ledger) of ten kill/re-run cycles each."""
    playbook = workdir / 'kill.yml'
    playbook.write_text(PLAYBOOK)
    ledger = workdir / 'ledger'
    lanes = []
    for lane in range(2):
        daemon = qsd(disks={'disk0': make_image(f'disk{lane}.qcow2', SIZE, pattern=0x5A)},
                     name=f'qsd{lane}')
        lanes.append((daemon, qmp_observer(daemon.obs_sock), range(lane, CYCLES, 2)))
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(run_lane, n, daemon, obs, workdir, playbook, ledger, cycles, n)
                   for n, (daemon, obs, cycles) in enumerate(lanes)]
        killed_at = [kill for future in futures for kill in future.result()]

    records = ledger_records(ledger)
    assert set(records) == {f'cycle-{c:02d}' for c in range(CYCLES)}
    for daemon, obs, cycles in lanes:
        created = created_counts(obs)
        for cycle in cycles:
            job = f'cycle-{cycle:02d}'
            assert created[job] == 1, f'{job} created {created[job]} times (kills: {killed_at})'
            record = records[job]
            assert record['state'] == 'started', record
            assert record['last']['outcome'] == 'succeeded', record
            assert record['targets'] == 'closed', record
        jobs = {j['id']: j['status'] for j in obs.cmd('query-jobs')}
        assert jobs == {f'cycle-{c:02d}': 'concluded' for c in cycles}, 'nothing else in QEMU'
        assert vj_nodes(obs) == [], 'the wait that saw each job conclude closed its target'
        for cycle in cycles:
            target = workdir / f'cycle-{cycle:02d}.qcow2'
            assert has_pattern(target, 0x5A, 0, SIZE), f'{target}: incomplete backup'
    print(f'kills (job, seconds after the playbook started): {sorted(killed_at)}')
    print(f'ledger temporary files left by killed writers: {ledger_leftovers(ledger)}')
