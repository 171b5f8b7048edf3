# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Data path: a backup of a disk full of non-zero data, three ways.

- the collection: ``ansible localhost -m vmjobs.qemu.backup`` (one raw disk, raw target,
  wait: concluded);
- the same module run without ansible (its own Python process, as on the target);
- a plain qemu.qmp script issuing the same blockdev-backup (bench/plain_backup.py);
- ``dd`` of the same bytes (bs=4M), file to file.

Each run writes a new target on the same file system as the source, in page cache (no
fsync anywhere: QEMU's default cache mode writes through the page cache too); targets are
deleted between runs, dirty pages are written back (sync) before each run, and the
three take turns at going first. The job time is QEMU's own: from the
JOB_STATUS_CHANGE to ``created`` to the one to ``concluded`` (observer monitor). The
wall time of each client is reported beside it.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from _common import (
    BENCH,
    VENV_PYTHON,
    Row,
    event_time,
    median,
    run_adhoc,
    run_direct,
    workdir,
)
from harness.nodes import image_nodes
from harness.qmp import QMPConnection
from harness.qsd import start_qsd

GOAL_SCRIPT = 1.05
GOAL_DD = 0.8


def fill(path: Path, mib: int) -> None:
    """A raw image of ``mib`` MiB of the byte 0x5A (no zero blocks to skip)."""
    chunk = b'\x5a' * (4 << 20)
    with path.open('wb') as handle:
        for _chunk in range(mib // 4):
            handle.write(chunk)


def job_time(obs: QMPConnection, job: str) -> float:
    obs.cmd('query-version')
    stamps = {e['data']['status']: event_time(e) for e in obs.events
              if e['event'] == 'JOB_STATUS_CHANGE' and e['data']['id'] == job}
    obs.events.clear()
    return stamps['concluded'] - stamps['created']


def run(count: int, log: Callable[[str], None], keep: bool = False,
        mib: int = 1024) -> list[Row]:
    with workdir(keep) as work:
        source = work.path / 'source.raw'
        fill(source, mib)
        subprocess.run(['cat', str(source)], stdout=subprocess.DEVNULL, check=True)  # cache
        daemon = work.start(start_qsd, blockdevs=image_nodes('disk0', source, 'raw'),
                            name='data')
        obs = QMPConnection(daemon.obs_sock, timeout=600).connect()
        args = {'socket': str(daemon.sock), 'ledger_dir': str(work.path / 'ledger')}
        size = mib << 20
        jobs: dict[str, list[float]] = {'collection': [], 'module': [], 'script': []}
        walls: dict[str, list[float]] = {'collection': [], 'module': [], 'script': [], 'dd': []}

        def collection(i: int) -> None:
            target = work.path / f'c{i}.raw'
            proc, wall = run_adhoc(work.path, 'vmjobs.qemu.backup', dict(
                args, name=f'c{i}', disks=[{'device': 'disk0', 'target': str(target),
                                            'format': 'raw'}], wait='concluded',
                wait_timeout=3600))
            if proc.returncode:
                raise RuntimeError(proc.stdout + proc.stderr)
            walls['collection'].append(wall)
            jobs['collection'].append(job_time(obs, f'c{i}.disk0'))
            run_direct('job', dict(args, name=f'c{i}', state='absent', forget=True), work.path)
            target.unlink()

        def module(i: int) -> None:
            target = work.path / f'm{i}.raw'
            start = time.time()
            result, end = run_direct('backup', dict(
                args, name=f'm{i}', disks=[{'device': 'disk0', 'target': str(target),
                                            'format': 'raw'}], wait='concluded',
                wait_timeout=3600), work.path)
            if result.get('failed'):
                raise RuntimeError(result['msg'])
            walls['module'].append(end - start)
            jobs['module'].append(job_time(obs, f'm{i}.disk0'))
            run_direct('job', dict(args, name=f'm{i}', state='absent', forget=True), work.path)
            target.unlink()

        def script(i: int) -> None:
            target = work.path / f's{i}.raw'
            start = time.perf_counter()
            subprocess.run([str(VENV_PYTHON), str(BENCH / 'plain_backup.py'), str(daemon.sock),
                            'disk0', str(target), str(size), f's{i}'], check=True, timeout=3600)
            walls['script'].append(time.perf_counter() - start)
            jobs['script'].append(job_time(obs, f's{i}'))
            target.unlink()

        def dd(i: int) -> None:
            target = work.path / f'd{i}.raw'
            start = time.perf_counter()
            subprocess.run(['dd', f'if={source}', f'of={target}', 'bs=4M', 'status=none'],
                           check=True, timeout=3600)
            walls['dd'].append(time.perf_counter() - start)
            target.unlink()

        ways = [collection, module, script, dd]
        for i in range(count):
            for way in ways[i % 4:] + ways[:i % 4]:  # each way takes its turn at going first
                os.sync()  # the previous run's dirty pages are not this run's I/O
                way(i)
            log(f'data path run {i + 1}/{count}')
        ratio = median(jobs['collection']) / median(jobs['script'])
        speed = {k: size / median(v) / (1 << 20) for k, v in jobs.items()}
        speed['dd'] = size / median(walls['dd']) / (1 << 20)
        of_dd = speed['collection'] / speed['dd']
        what = f'{mib} MiB'
        return [
            Row.of('data path', f'{what}: backup job, collection', jobs['collection']),
            Row.of('data path', f'{what}: backup job, module without ansible', jobs['module']),
            Row.of('data path', f'{what}: backup job, plain script', jobs['script']),
            Row.of('data path', f'{what}: dd', walls['dd']),
            Row('data path', 'job time collection/script', count, ratio, float('nan'), 'x',
                goal=f'<= {GOAL_SCRIPT}', verdict='met' if ratio <= GOAL_SCRIPT else 'MISSED'),
            Row('data path', 'throughput collection/dd', count, of_dd, float('nan'), 'x',
                goal=f'>= {GOAL_DD}', verdict='met' if of_dd >= GOAL_DD else 'MISSED',
                extra={'MiB/s': {k: round(v) for k, v in speed.items()}}),
            Row.of('data path', f'{what}: wall, ansible ad hoc backup', walls['collection']),
            Row.of('data path', f'{what}: wall, module without ansible', walls['module']),
            Row.of('data path', f'{what}: wall, plain script', walls['script']),
            Row('data path', 'job time module/script', count,
                median(jobs['module']) / median(jobs['script']), float('nan'), 'x'),
        ]
