# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Instant restore: from the task's start to a VM whose restored disk answers reads.

For a backup chain (a full backup and an incremental on it) of a 1 GiB and of a 16 GiB
disk, the ``instant_restore`` module is run in its own Python process (no ansible, as the
other module benchmarks do) against a paused VM with a free PCIe slot; the clock stops
when a read of the new disk's first and last 64 KiB, through the VM's own device (HMP
``qemu-io -d``), has answered. The stream then runs on unlimited and is not part of the
figure. One new VM per sample, started before the clock.

The goal: the time does not grow with the disk's size (16 GiB / 1 GiB at most 1.25x),
and stays well under a second.

Run alone: ``.venv/bin/python bench/instant_restore.py [--count N]``; or ``bench/run
instant_restore``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from _common import Row, median, module_command, parse_module_output, table, workdir
from harness.images import make_image, write_pattern
from harness.qmp import QMPConnection
from harness.vm import start_vm

#: Disk sizes compared, in GiB.
SIZES = (1, 16)
#: How much longer the larger disk may take.
GOAL = 1.25
MIB = 1 << 20
PORT = ['-device', 'pcie-root-port,id=hotplug1,chassis=1,bus=pcie.0']


def chain(where: Path, gib: int) -> Path:
    """A full backup with data at both ends, and an incremental on it; its top image."""
    size = gib << 30
    full = make_image(where / f'full-{gib}.qcow2', size)
    write_pattern(full, 0x11, 0, 64 * MIB)
    write_pattern(full, 0x12, size - 64 * MIB, 64 * MIB)
    incr = make_image(where / f'incr-{gib}.qcow2', size, backing=full)
    write_pattern(incr, 0x22, 32 * MIB, 16 * MIB)
    return incr


def sample(work: Path, image: Path, gib: int, index: int) -> float:
    """One instant restore on a new VM: seconds from the module's start to reads answered."""
    daemon = start_vm(work, disks={'disk0': make_image(work / f'os-{gib}-{index}.qcow2', '16M')},
                      name=f'ir{gib}-{index}', extra_args=PORT)
    obs = QMPConnection(daemon.obs_sock, timeout=60).connect()
    try:
        args = {'socket': str(daemon.sock), 'ledger_dir': str(work / 'ledger'),
                'name': f'ir-{gib}-{index}', 'image': str(image),
                'target': str(work / f'restored-{gib}-{index}.qcow2'), 'disk': 'restored',
                'bus': 'hotplug1'}
        argv, env = module_command('instant_restore', args, work)
        start = time.perf_counter()
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600,
                              stdin=subprocess.DEVNULL, check=False)
        result = parse_module_output(proc.stdout, proc.stderr)
        if result.get('failed') or not result.get('changed'):
            raise RuntimeError(f'instant_restore: {result}')
        for offset in (0, (gib << 30) - 64 * 1024):
            reply = obs.cmd('human-monitor-command', {'command-line': (
                'qemu-io -d /machine/peripheral/restored/virtio-backend '
                f'"read {offset} 64k"')})
            if str(reply).strip():
                raise RuntimeError(f'read at {offset}: {reply}')
        return time.perf_counter() - start
    finally:
        obs.close()
        daemon.stop()


def run(count: int, log: Callable[[str], None], keep: bool = False) -> list[Row]:
    rows, medians = [], {}
    with workdir(keep) as work:
        for gib in SIZES:
            image = chain(work.path, gib)
            times = [sample(work.path, image, gib, i) for i in range(count)]
            medians[gib] = median(times)
            log(f'{gib} GiB: {", ".join(f"{t * 1000:.0f} ms" for t in times)}')
            rows.append(Row.of('instant_restore', f'{gib} GiB disk: task start to reads answered',
                               times, goal='well under 1 s',
                               verdict='ok' if medians[gib] < 1 else 'MISSED'))
    ratio = medians[SIZES[-1]] / medians[SIZES[0]]
    rows.append(Row('instant_restore', f'{SIZES[-1]} GiB / {SIZES[0]} GiB (medians)', count,
                    ratio, ratio, unit='x', goal=f'<= {GOAL}x',
                    verdict='ok' if ratio <= GOAL else 'MISSED'))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--count', type=int, default=5, help='samples per disk size')
    parser.add_argument('--keep', action='store_true', help='keep the work directory')
    args = parser.parse_args()
    rows = run(args.count, lambda text: print(text, file=sys.stderr, flush=True), args.keep)
    print(table(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
