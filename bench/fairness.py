# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Monitor fairness: while job_wait waits on a VM, how long does a job_info on it take?

A backup crawls at 64 KiB/s on a qemu-storage-daemon; job_wait (a module process) waits
for it, holding the one-client monitor for up to 0.9 s at a time. job_info (a module
process, as the module runs on the target) is run again and again at random moments,
and so is a bare QMP connection (until the greeting). The same are measured without the
waiter for comparison. Goal: the worst job_info within 1 s.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Callable

from _common import Row, module_command, run_direct, workdir
from harness.images import make_image
from harness.qmp import QMPConnection
from harness.qsd import start_qsd

GOAL = 1.0


def _measure(count: int, args: dict, work: object) -> tuple[list[float], list[float]]:
    infos, greetings = [], []
    for _round in range(count):
        time.sleep(random.uniform(0.05, 0.9))
        start = time.time()
        result, end = run_direct('job_info', args, work.path)
        assert not result.get('failed'), result
        infos.append(end - start)
        start = time.perf_counter()
        with QMPConnection(args['socket'], timeout=30) as conn:
            greetings.append(time.perf_counter() - start)
            conn.cmd('query-version')
    return infos, greetings


def run(count: int, log: Callable[[str], None], keep: bool = False) -> list[Row]:
    with workdir(keep) as work:
        image = make_image(work.path / 'f.qcow2', '64M', pattern=0x5A)
        daemon = work.start(start_qsd, disks={'disk0': image}, blockdevs=[
            {'driver': 'null-co', 'node-name': 'sink', 'size': 64 << 20}], name='fair')
        args = {'socket': str(daemon.sock), 'ledger_dir': str(work.path / 'ledger')}
        with QMPConnection(daemon.obs_sock) as obs:
            obs.cmd('blockdev-backup', {'job-id': 'crawl', 'device': 'disk0', 'target': 'sink',
                                        'sync': 'full', 'speed': 64 << 10,
                                        'auto-dismiss': False})
            alone_info, alone_greet = _measure(count, args, work)
            argv, env = module_command('job_wait', dict(args, name=['crawl'], timeout=3600),
                                       work.path)
            waiter = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
            time.sleep(1.0)
            busy_info, busy_greet = _measure(count, args, work)
            still = waiter.poll() is None
            waiter.kill()
            waiter.communicate()
            assert still, 'the waiter was waiting all along'
            obs.cmd('job-cancel', id='crawl')
        log(f'fairness: {count} samples each')
        worst = max(busy_info)
        return [
            Row.of('monitor fairness', 'job_info alone', alone_info),
            Row.of('monitor fairness', 'job_info while job_wait waits', busy_info,
                   goal='worst <= 1 s', verdict=f"worst {worst * 1000:.0f} ms: "
                   + ('met' if worst <= GOAL else 'MISSED'), extra={'max': worst}),
            Row.of('monitor fairness', 'QMP greeting alone', alone_greet),
            Row.of('monitor fairness', 'QMP greeting while job_wait waits', busy_greet,
                   extra={'max': max(busy_greet)}),
        ]
