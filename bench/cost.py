# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-task cost: a job_info task against ansible.builtin.ping on the same host.

- ad hoc: ``ansible localhost -m ...`` wall time, the two alternating;
- in a playbook: the time between two loop items' results (the controller's view of one
  task execution: worker, module transfer, interpreter start, the module, its result);
- the module alone: job_info run in its own Python process (no ansible).

The VM has one concluded backup (a live QEMU job and a ledger record), so job_info has
something to report.
"""

from __future__ import annotations

from collections.abc import Callable

from _common import (
    BENCH,
    Row,
    finish,
    median,
    read_times,
    run_adhoc,
    run_direct,
    run_playbook,
    workdir,
)
from harness.images import make_image
from harness.qsd import start_qsd

GOAL = 1.25


def _item_gaps(lines: list[dict], task: str) -> list[float]:
    starts = [line['t'] for line in lines if line['event'] == 'runner_start' and line['task'] == task]
    items = [line['t'] for line in lines if line['event'] == 'item_ok' and line['task'] == task]
    stamps = starts[:1] + items
    return [b - a for a, b in zip(stamps, stamps[1:])]


def run(count: int, log: Callable[[str], None], keep: bool = False) -> list[Row]:
    with workdir(keep) as work:
        daemon = work.start(start_qsd, disks={'disk0': make_image(work.path / 'c.qcow2', '16M')},
                            name='cost')
        args = {'socket': str(daemon.sock), 'ledger_dir': str(work.path / 'ledger')}
        backup = dict(args, name='one', type='backup', device='disk0',
                      target=str(work.path / 'one.qcow2'), wait='concluded')
        result = run_direct('block_job', backup, work.path)[0]
        assert result.get('changed'), result
        run_adhoc(work.path, 'ansible.builtin.ping')  # warm caches
        info, ping = [], []
        for _round in range(count):
            for module, module_args, into in (('vmjobs.qemu.job_info', args, info),
                                              ('ansible.builtin.ping', None, ping)):
                proc, seconds = run_adhoc(work.path, module, module_args)
                if proc.returncode:
                    raise RuntimeError(proc.stdout + proc.stderr)
                into.append(seconds)
        log(f'ad hoc: {count} each')
        times = work.path / 'times.jsonl'
        finish(run_playbook(work.path, BENCH / 'playbooks' / 'task_cost.yml',
                            dict(args, count=count), times))
        lines = read_times(times)
        info_tasks, ping_tasks = _item_gaps(lines, 'Info'), _item_gaps(lines, 'Ping')
        direct = []
        for _round in range(count):
            start = __import__('time').time()
            _result, end = run_direct('job_info', args, work.path)
            direct.append(end - start)
        ratio = median(info) / median(ping)
        task_ratio = median(info_tasks) / median(ping_tasks)
        verdict = 'met' if ratio <= GOAL else 'MISSED'
        return [
            Row.of('per-task cost', 'ad hoc ansible.builtin.ping', ping),
            Row.of('per-task cost', 'ad hoc job_info', info),
            Row('per-task cost', 'ad hoc ratio job_info/ping', count, ratio, float('nan'), 'x',
                goal=f'<= {GOAL}', verdict=verdict),
            Row.of('per-task cost', 'playbook task: ping', ping_tasks),
            Row.of('per-task cost', 'playbook task: job_info', info_tasks),
            Row('per-task cost', 'playbook ratio job_info/ping', count, task_ratio, float('nan'),
                'x', goal=f'<= {GOAL}', verdict='met' if task_ratio <= GOAL else 'MISSED'),
            Row.of('per-task cost', 'job_info module alone (no ansible)', direct),
        ]
