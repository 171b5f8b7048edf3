# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore: a chain (a full backup and three incrementals) made into one standalone image.

- the collection: the ``restore`` module run without ansible (its own Python process, as
  on the target), ``image`` the chain's top, a qcow2 target; it starts its own
  qemu-storage-daemon, copies with ``blockdev-mirror sync=full`` into a target written
  through the page cache (and written back while the module waits), closes the target
  (flushed) and stops the daemon before it returns: its wall time is the whole restore,
  its data on disk;
- ``qemu-img convert -O qcow2`` of the same top image (read through the same chain),
  followed by an ``fsync`` of its target, so that its data is on disk too (its time
  without the ``fsync`` is reported beside it);
- ``qemu-img convert -t none -O qcow2``: its target opened with O_DIRECT (on disk when it
  returns).

The full image holds ``mib`` MiB of non-zero data; each incremental rewrites an eighth of
the disk somewhere else. Targets are deleted between runs, dirty pages are written back
(sync) before each run, and the three take turns at going first. The sources are read
into the page cache once before the runs, for both alike. The ratio is the collection's
throughput over qemu-img's (convert and fsync's wall time over the restore's); a
second ratio takes the module's own wait for its job (its ``elapsed``: from the job's
start to its target closed) instead of the module's whole run.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from _common import Row, median, run_direct, workdir

GOAL = 0.9


def make_chain(folder: Path, mib: int) -> Path:
    """full <- inc1 <- inc2 <- inc3 in ``folder`` (relative backing names); the top."""
    full = folder / 'full.qcow2'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', str(full), f'{mib}M'], check=True)
    subprocess.run(['qemu-io', '-f', 'qcow2', '-c', f'write -P 0x5a 0 {mib}M', str(full)],
                   check=True, stdout=subprocess.DEVNULL)
    below = full
    for index in range(1, 4):
        image = folder / f'inc{index}.qcow2'
        subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', below.name, '-F',
                        'qcow2', str(image)], check=True, cwd=folder)
        eighth = mib // 8
        subprocess.run(['qemu-io', '-f', 'qcow2', '-c',
                        f'write -P {0x10 + index} {index * 2 * eighth}M {eighth}M', str(image)],
                       check=True, stdout=subprocess.DEVNULL)
        below = image
    return below


def run(count: int, log: Callable[[str], None], keep: bool = False,
        mib: int = 1024) -> list[Row]:
    with workdir(keep) as work:
        top = make_chain(work.path, mib)
        for image in work.path.glob('*.qcow2'):  # both read from the page cache
            subprocess.run(['cat', str(image)], stdout=subprocess.DEVNULL, check=True)
        walls: dict[str, list[float]] = {'collection': [], 'convert': []}
        buffered: list[float] = []  # qemu-img convert without the fsync of its target
        direct: list[float] = []  # qemu-img convert -t none (O_DIRECT target)
        waits: list[float] = []  # the module's own wait for the job (its ``elapsed``)

        def collection(i: int) -> None:
            target = work.path / f'r{i}.qcow2'
            start = time.time()
            result, end = run_direct('restore', {
                'ledger_dir': str(work.path / 'ledger'), 'name': f'r{i}', 'image': str(top),
                'target': str(target), 'wait_timeout': 3600}, work.path)
            if result.get('failed') or result['job']['outcome'] != 'succeeded':
                raise RuntimeError(result.get('msg') or str(result))
            walls['collection'].append(end - start)
            waits.append(result['elapsed'])
            target.unlink()

        def convert(i: int) -> None:
            target = work.path / f'c{i}.qcow2'
            start = time.perf_counter()
            subprocess.run(['qemu-img', 'convert', '-O', 'qcow2', str(top), str(target)],
                           check=True, timeout=3600)
            buffered.append(time.perf_counter() - start)
            handle = os.open(target, os.O_RDONLY)
            try:
                os.fsync(handle)
            finally:
                os.close(handle)
            walls['convert'].append(time.perf_counter() - start)
            target.unlink()

        def convert_direct(i: int) -> None:
            target = work.path / f'd{i}.qcow2'
            start = time.perf_counter()
            subprocess.run(['qemu-img', 'convert', '-t', 'none', '-O', 'qcow2', str(top),
                            str(target)], check=True, timeout=3600)
            direct.append(time.perf_counter() - start)
            target.unlink()

        ways = [collection, convert, convert_direct]
        for i in range(count):
            for way in ways[i % 3:] + ways[:i % 3]:
                os.sync()
                way(i)
            log(f'restore run {i + 1}/{count}')
        ratio = median(walls['convert']) / median(walls['collection'])
        what = f'{mib} MiB chain (full + 3 incrementals)'
        speed = {k: round(mib / median(v)) for k, v in walls.items()}
        return [
            Row.of('restore', f'{what}: restore module (no ansible)', walls['collection']),
            Row.of('restore', f'{what}: its job, start to closed target', waits),
            Row.of('restore', f'{what}: qemu-img convert, then fsync', walls['convert']),
            Row.of('restore', f'{what}: qemu-img convert (no fsync)', buffered),
            Row.of('restore', f'{what}: qemu-img convert -t none', direct),
            Row('restore', 'throughput restore/convert', count, ratio, float('nan'), 'x',
                goal=f'>= {GOAL}', verdict='met' if ratio >= GOAL else 'MISSED',
                extra={'MiB/s': speed}),
            Row('restore', 'throughput restore job/convert', count,
                median(walls['convert']) / median(waits), float('nan'), 'x'),
            Row('restore', 'throughput restore/convert without fsync', count,
                median(buffered) / median(walls['collection']), float('nan'), 'x'),
            Row('restore', 'throughput restore/convert -t none', count,
                median(direct) / median(walls['collection']), float('nan'), 'x'),
        ]
