# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait notice latency: from QEMU's JOB_STATUS_CHANGE to concluded until the waiter returns.

Each sample is one backup job on a qemu-storage-daemon, started through the observer
monitor at 1 byte/s (so it stays running), then released (speed 0) at a random moment
while the waiter waits; it concludes some 20 ms later. The conclusion time is the
timestamp QEMU puts on its JOB_STATUS_CHANGE event (seen on the observer monitor); the
return time is taken where each waiter returns:

- job_wait, in the module: the module run in its own Python process, as ansible's module
  wrapper runs it on the target (bench/module_probe.py); the return is the moment the
  module hands its result to ``exit_json``.
- job_wait, module process exit: the same runs, until the process has exited (what the
  controller waits for: Python's interpreter shutdown is counted here).
- job_wait, ansible: a playbook loops over the jobs with job_wait; the return is when the
  controller receives the item's result (callback timestamp). Ansible's start-up and the
  module's start-up happen before the job concludes, so they are not counted; what is
  counted is the module's wait, its exit and the transfer of its result.
- until loop: job_info in ``until:`` with ``delay: 1``, timed like the previous one.
- 500 ms poll: a plain script polling query-jobs every 0.5 s on the same monitor.

A sample counts only if the waiter was already waiting when the job concluded (for
job_wait: its own ``elapsed`` is longer than the latency; for the until loop: more than
one attempt); the others are reported as discarded.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    BENCH,
    Row,
    event_time,
    finish,
    module_command,
    parse_module_output,
    read_times,
    run_playbook,
    workdir,
)
from harness.images import make_image
from harness.qmp import QMPConnection
from harness.qsd import start_qsd

DISK = 32 << 20
GOAL = 0.050


class Rig:
    """A storage daemon with a 32 MiB disk and two null targets, and its observer monitor."""

    def __init__(self, work: Any) -> None:
        self.work = work
        image = make_image(work.path / 'lat.qcow2', DISK, pattern=0x5A)
        self.daemon = work.start(start_qsd, disks={'disk0': image}, blockdevs=[
            {'driver': 'null-co', 'node-name': f'sink{i}', 'size': DISK} for i in range(2)],
            name='lat')
        self.started = 0
        self.obs = QMPConnection(self.daemon.obs_sock, timeout=30).connect()
        self.ledger = work.path / 'ledger'

    def hold(self, job: str) -> None:
        """Start a backup that stays running (1 byte/s) until :meth:`release`."""
        target = f'sink{self.started % 2}'  # a node serves one job at a time
        self.started += 1
        self.obs.cmd('blockdev-backup', {'job-id': job, 'device': 'disk0', 'target': target,
                                         'sync': 'full', 'speed': 1, 'auto-dismiss': False})

    def release(self, job: str) -> float:
        """Let the job finish; return QEMU's time of its conclusion."""
        self.obs.cmd('block-job-set-speed', device=job, speed=0)
        event = self.obs.wait_event('JOB_STATUS_CHANGE', 30, id=job, status='concluded')
        return event_time(event)

    def dismiss(self, job: str) -> None:
        self.obs.cmd('job-dismiss', id=job)

    def args(self) -> dict[str, Any]:
        return {'socket': str(self.daemon.sock), 'ledger_dir': str(self.ledger)}


def module_samples(rig: Rig, count: int, log: Callable[[str], None]
                   ) -> tuple[list[float], list[float], int]:
    """job_wait run as a module process per job: (return in the module, process exit)."""
    returned, exited, discarded = [], [], 0
    probe = rig.work.path / 'probe.jsonl'
    for i in range(count):
        job = f'm{i}'
        rig.hold(job)
        argv, env = module_command('job_wait', dict(rig.args(), name=[job], timeout=60),
                                   rig.work.path)
        argv = [argv[0], str(BENCH / 'module_probe.py'), 'job_wait', argv[-1]]
        env['VJ_PROBE'] = str(probe)
        probe.unlink(missing_ok=True)
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)
        time.sleep(0.8 + random.random())
        concluded = rig.release(job)
        out, err = proc.communicate(timeout=60)
        latency = time.time() - concluded
        result = parse_module_output(out, err)
        if result.get('failed') or result['elapsed'] <= latency:
            discarded += 1
        else:
            exited.append(latency)
            returned.append(read_probe(probe) - concluded)
        rig.dismiss(job)
    log(f'job_wait module: {len(exited)} samples')
    return returned, exited, discarded


def read_probe(path: Path) -> float:
    return float(json.loads(path.read_text().splitlines()[-1])['returned'])


def _item_result(times: Path, task_prefix: str, item: int, proc: subprocess.Popen[str],
                 timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in read_times(times):
            if line['event'] in ('item_ok', 'item_failed') and line['item'] == item and \
                    (line['task'] or '').startswith(task_prefix):
                return line
        if proc.poll() is not None:
            raise RuntimeError(f'playbook ended early:\n{proc.communicate()[0]}')
        time.sleep(0.005)
    raise TimeoutError(f'no result for item {item}')


def playbook_samples(rig: Rig, count: int, playbook: str, prefix: str,
                     log: Callable[[str], None]) -> tuple[list[float], int]:
    """A playbook looping over the jobs; the controller's receipt of each item is the return."""
    times = rig.work.path / f'times-{prefix}.jsonl'
    task = {'wait_loop.yml': 'Wait', 'until_loop.yml': 'Poll'}[playbook]
    rig.hold(f'{prefix}0')
    proc = run_playbook(rig.work.path, BENCH / 'playbooks' / playbook,
                        dict(rig.args(), prefix=prefix, count=count), times)
    values, discarded = [], 0
    for i in range(count):
        job = f'{prefix}{i}'
        if i:
            _item_result(times, task, i - 1, proc)
        if i + 1 < count:
            rig.hold(f'{prefix}{i + 1}')  # exists before its item starts
        time.sleep(1.2 + random.random())
        concluded = rig.release(job)
        line = _item_result(times, task, i, proc)
        latency = line['t'] - concluded
        waited = line.get('elapsed') if playbook == 'wait_loop.yml' else None
        attempts = line.get('attempts')
        valid = not line.get('failed') and (
            (waited is not None and waited > latency) or (attempts or 0) > 1)
        if valid:
            values.append(latency)
        else:
            discarded += 1
        rig.dismiss(job)
    finish(proc)
    log(f'{playbook}: {len(values)} samples')
    return values, discarded


def _poll(conn: QMPConnection, name: str, found: list[float]) -> None:
    while True:
        jobs = {j['id']: j for j in conn.cmd('query-jobs')}
        if jobs[name]['status'] == 'concluded':
            found.append(time.time())
            return
        time.sleep(0.5)


def poll_samples(rig: Rig, count: int, log: Callable[[str], None]) -> tuple[list[float], int]:
    """A plain client polling query-jobs every 500 ms on the collection's monitor."""
    values = []
    with QMPConnection(rig.daemon.sock, timeout=30) as conn:
        for i in range(count):
            job = f'p{i}'
            rig.hold(job)
            seen: list[float] = []
            thread = threading.Thread(target=_poll, args=(conn, job, seen))
            thread.start()
            time.sleep(0.3 + random.random())
            concluded = rig.release(job)
            thread.join(60)
            values.append(seen[0] - concluded)
            rig.dismiss(job)
    log(f'500 ms poll: {len(values)} samples')
    return values, 0


def run(count: int, log: Callable[[str], None], keep: bool = False) -> list[Row]:
    """Measure every waiter over ``count`` jobs each."""
    rows = []
    with workdir(keep) as work:
        rig = Rig(work)
        returned, exited, discarded = module_samples(rig, count, log)
        measured = [
            ('job_wait, in the module', (returned, discarded)),
            ('job_wait, module process exit', (exited, discarded)),
            ('job_wait, ansible task', playbook_samples(rig, count, 'wait_loop.yml', 'a', log)),
            ('job_info until (delay 1 s)',
             playbook_samples(rig, count, 'until_loop.yml', 'u', log)),
            ('plain 500 ms poll', poll_samples(rig, count, log)),
        ]
        for what, (values, discarded) in measured:
            goal = verdict = ''
            if what == 'job_wait, in the module':
                goal = '<= 50 ms median'
                verdict = 'met' if values and sorted(values)[len(values) // 2] <= GOAL else 'MISSED'
            extra = {'discarded': discarded, 'values': [round(v, 4) for v in values]}
            if discarded:
                verdict = (verdict + f' ({discarded} discarded)').strip()
            rows.append(Row.of('wait notice latency', what, values, goal=goal, verdict=verdict,
                               extra=extra))
    return rows
