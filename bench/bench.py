# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the benchmarks and print one table: bench/run [--quick] [name ...].

Every figure comes from this run; ratios are taken between measurements of the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import _common
import cost
import datapath
import fairness
import fanout
import instant_restore
import latency
import pull
import restore

BENCHMARKS = {
    'latency': lambda args, log: latency.run(args.count or (10 if args.quick else 50), log,
                                             args.keep),
    'cost': lambda args, log: cost.run(args.count or (8 if args.quick else 30), log, args.keep),
    'datapath': lambda args, log: datapath.run(args.count or (2 if args.quick else 5), log,
                                               args.keep, args.size),
    'fanout': lambda args, log: fanout.run(1 if args.quick else 2, log, args.keep),
    'restore': lambda args, log: restore.run(args.count or (2 if args.quick else 5), log,
                                             args.keep, args.size),
    'instant_restore': lambda args, log: instant_restore.run(
        args.count or (2 if args.quick else 5), log, args.keep),
    'fairness': lambda args, log: fairness.run(args.count or (10 if args.quick else 40), log,
                                               args.keep),
    'pull': lambda args, log: pull.run(args.count or (2 if args.quick else 5), log, args.keep,
                                       args.size),
}


def machine() -> str:
    qemu = subprocess.run(['qemu-system-x86_64', '--version'], capture_output=True, text=True,
                          check=False).stdout.splitlines()[0]
    ansible = subprocess.run([str(_common.VENV_BIN / 'ansible'), '--version'],
                             capture_output=True, text=True, check=False).stdout.splitlines()[0]
    load = os.getloadavg()
    return (f'{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, '
            f'{qemu}, {ansible}, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('names', nargs='*', choices=[[], *BENCHMARKS], default=[],
                        help='benchmarks to run (default: all)')
    parser.add_argument('--quick', action='store_true', help='fewer samples, smaller disk')
    parser.add_argument('--count', type=int, help='samples per measure')
    parser.add_argument('--size', type=int, default=1024, help='data path disk size in MiB')
    parser.add_argument('--json', type=Path, help='also write the rows (and samples) here')
    parser.add_argument('--keep', action='store_true', help='keep the work directories')
    args = parser.parse_args()
    if args.quick and args.size == 1024:
        args.size = 256
    names = args.names or list(BENCHMARKS)

    def log(text: str) -> None:
        print(f'[{time.strftime("%H:%M:%S")}] {text}', file=sys.stderr, flush=True)

    log(machine())
    rows: list[_common.Row] = []
    failed: list[str] = []
    for name in names:
        log(f'{name} ...')
        started = time.monotonic()
        try:
            rows += BENCHMARKS[name](args, log)
        except Exception as err:  # noqa: BLE001 - report it, run the others
            failed.append(name)
            log(f'{name} FAILED: {type(err).__name__}: {err}')
            continue
        log(f'{name} done in {time.monotonic() - started:.0f}s')
    print(_common.table(rows))
    if args.json:
        args.json.write_text(json.dumps({'machine': machine(),
                                         'rows': [dataclasses.asdict(r) for r in rows]},
                                        indent=1))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
