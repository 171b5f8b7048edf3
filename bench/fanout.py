# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fan-out: 20 VMs on two hypervisors backed up by the collection's backup playbook
(playbooks/backup.yml, role vmjobs.qemu.backup), with forks against one at a time.

The inventory has the 20 VMs as hosts, in two groups ``hv1`` and ``hv2`` (the two
hypervisors; both are this machine, reached with the local connection). Every VM is a
paused QEMU with one 32 MiB disk of non-zero data. Each run backs up all 20 with a new
date stamp (so new job names): ``-f 20`` (all at once) and ``-f 1`` (one at a time)
alternate. The role starts the backup, waits for it, dismisses it and checks the image.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from _common import REPO, VENV_PYTHON, Row, finish, median, run_playbook, workdir
from harness.images import make_image
from harness.vm import start_vm

VMS = 20


def inventory(work: object, vms: list) -> str:
    groups: dict[str, dict] = {'hv1': {'hosts': {}}, 'hv2': {'hosts': {}}}
    for i, vm in enumerate(vms):
        groups['hv1' if i < VMS // 2 else 'hv2']['hosts'][f'vm{i:02d}'] = {
            'backup_socket': str(vm.sock)}
    return json.dumps({'all': {
        'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': str(VENV_PYTHON),
                 'backup_dir': str(work.path / 'backups'),
                 'backup_ledger_dir': str(work.path / 'ledger')},
        'children': {'vms': {'children': groups}}}})


def run(reps: int, log: Callable[[str], None], keep: bool = False) -> list[Row]:
    with workdir(keep) as work:
        vms = []
        for i in range(VMS):
            image = make_image(work.path / f'vm{i:02d}.qcow2', '32M', pattern=0x5A)
            vms.append(work.start(start_vm, disks={'disk0': image}, name=f'vm{i:02d}'))
        path = work.path / 'inventory.json'
        path.write_text(inventory(work, vms))
        times: dict[int, list[float]] = {20: [], 1: []}
        for rep in range(reps):
            for forks in (20, 1):
                start = time.perf_counter()
                finish(run_playbook(work.path, REPO / 'playbooks' / 'backup.yml',
                                    {'backup_stamp': f'r{rep}f{forks}', 'backup_keep_chains': 0},
                                    None, inventory=str(path), args=['-f', str(forks)]))
                times[forks].append(time.perf_counter() - start)
                log(f'fan-out: forks={forks}: {times[forks][-1]:.1f}s')
        speedup = median(times[1]) / median(times[20])
        return [
            Row.of('fan-out', f'{VMS} VMs / 2 hosts, one at a time (-f 1)', times[1]),
            Row.of('fan-out', f'{VMS} VMs / 2 hosts, forks (-f 20)', times[20]),
            Row('fan-out', 'speed-up of forks', reps, speedup, float('nan'), 'x'),
        ]
