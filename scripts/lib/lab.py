"""Throwaway QEMU VMs and an inventory to try the collection's playbooks on (scripts/lab).

    scripts/lab start DIR          two paused, guest-less VMs (vm1, vm2) with known
                                   data, and DIR/inventory.yml for the playbooks
    scripts/lab destinations DIR   for each VM, a destination QEMU waiting for it
                                   (-incoming defer) on the images the VM uses now
    scripts/lab stop DIR           stop every QEMU of the lab and remove DIR

Each VM has disk0 (one qcow2 image, 256 MiB, 192 MiB of data) and disk1 (a base
image and two overlays). Everything lives in DIR; the lab writes nowhere else. The
VMs are booted and stopped by the collection's role vmjobs.qemu.test_vm (lab.yml), one
directory of it per VM: DIR/vm1 holds vm1's images, its QMP socket vm1.sock and, once
started, its destination's vm1-dest.sock.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

from qemu.qmp import QMPClient, QMPError

VMS = ('vm1', 'vm2')
REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(__file__).with_name('lab.yml')
RECORD = 'test_vm.json'


def disks(name: str, seed: int) -> list[dict[str, t.Any]]:
    """disk0 (256 MiB, 192 MiB of data) and disk1 (base <- snap1 <- snap2), as test_vm_vms disks."""
    def writes(*spans: tuple[int, int, int]) -> list[str]:
        return [f'{pattern:#x} {offset}M {length}M' for pattern, offset, length in spans]
    return [
        {'id': 'disk0', 'size': '256M', 'images': [
            {'file': f'{name}-disk0.qcow2', 'writes': writes((seed, 0, 128), (seed + 1, 128, 64))}]},
        {'id': 'disk1', 'size': '64M', 'images': [
            {'file': f'{name}-disk1-base.qcow2', 'writes': writes((seed + 2, 0, 64))},
            {'file': f'{name}-disk1-snap1.qcow2', 'writes': writes((seed + 3, 8, 8))},
            {'file': f'{name}-disk1-snap2.qcow2', 'writes': writes((seed + 4, 16, 8))}]},
    ]


def images(vm: Path) -> dict[str, Path]:
    """The image files of a VM, named after it (moved disks share one directory)."""
    names = ('disk0', 'disk1-base', 'disk1-snap1', 'disk1-snap2')
    return {name: vm / f'{vm.name}-{name}.qcow2' for name in names}


def role(top: Path, state: str, dirs: list[dict[str, t.Any]]) -> None:
    """Run vmjobs.qemu.test_vm over ``dirs`` ({dir, vms}); its output only if it fails."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / 'build' / 'collections'),
               ANSIBLE_NOCOLOR='1')
    env.pop('ANSIBLE_CONFIG', None)
    env.pop('ANSIBLE_INVENTORY', None)
    extra = json.dumps({'lab_state': state, 'lab_dirs': dirs,
                        'ansible_python_interpreter': sys.executable})
    done = subprocess.run([str(Path(sys.executable).with_name('ansible-playbook')), '-i', 'localhost,',
                           '-c', 'local', '-e', extra, str(PLAYBOOK)], env=env, cwd=top,
                          capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f'{done.stdout}{done.stderr}lab: vmjobs.qemu.test_vm state={state} failed')


def inventory(top: Path, python: str) -> dict:
    hosts = {}
    for name in VMS:
        vm = top / name
        files = images(vm)
        hosts[name] = {
            'vm_socket': str(vm / f'{name}.sock'),
            'backup_socket': str(vm / f'{name}.sock'),
            'vm_hypervisor': 'hv1',
            'vm_dest_socket': str(vm / f'{name}-dest.sock'),
            'vm_disks': [{'device': 'disk0', 'path': str(files['disk0'])}],
            'vm_snapshots': [{'device': 'disk1', 'base': str(files['disk1-base']),
                              'overlays': [str(files['disk1-snap1']), str(files['disk1-snap2'])]}],
        }
    ledger = '{{ lab_ledger_dir }}'
    return {'all': {
        'vars': {
            'ansible_connection': 'local',
            'ansible_python_interpreter': python,
            'lab_ledger_dir': str(top / 'ledger'),
            'backup_dir': str(top / 'backups'),
            'move_disks_target_dir': str(top / 'fast'),
            'backup_ledger_dir': ledger,
            'disk_move_ledger_dir': ledger,
            'snapshot_merge_ledger_dir': ledger,
            'live_migration_ledger_dir': ledger,
            'vmjobs_progress': 'always',
            'vmjobs_progress_interval': 1,
        },
        'children': {'vms': {'hosts': hosts}},
    }}


def start(top: Path) -> None:
    if top.exists() and any(top.iterdir()):
        sys.exit(f'lab: {top} is not empty; stop that lab first (scripts/lab stop {top})')
    for sub in ('backups', 'fast'):
        (top / sub).mkdir(parents=True, exist_ok=True)
    role(top, 'present', [{'dir': str(top / name), 'vms': [{'name': name, 'disks': disks(name, 0x10 * (seed + 1))}]}
                          for seed, name in enumerate(VMS)])
    # JSON is YAML: ansible reads inventory.yml as it is.
    (top / 'inventory.yml').write_text(json.dumps(inventory(top, sys.executable), indent=2) + '\n')
    print(f'lab: started {", ".join(VMS)} (paused, no guest) with disk0 and disk1 in {top}')
    print(f'lab: inventory {top / "inventory.yml"}')


def active_images(sock: Path) -> dict[str, str]:
    """qdev id -> the image each disk of the VM behind ``sock`` uses now."""
    async def ask() -> list[dict]:
        client = QMPClient('lab')
        await client.connect(str(sock))
        try:
            return await client.execute('query-block')
        finally:
            await client.disconnect()
    try:
        blocks = asyncio.run(ask())
    except QMPError as err:
        sys.exit(f'lab: cannot ask the VM behind {sock} for its disks: {err}')
    disks = {}
    for block in blocks:
        parts = block.get('qdev', '').split('/')
        if len(parts) > 3 and parts[2] == 'peripheral' and block.get('inserted'):
            disks[parts[3]] = block['inserted']['file']
    return disks


def destinations(top: Path) -> None:
    if not (top / VMS[0] / RECORD).exists():
        sys.exit(f'lab: no lab in {top} (scripts/lab start {top} makes one)')
    dirs = []
    for name in VMS:
        vm = top / name
        if (vm / f'{name}-dest.sock').exists():
            print(f'lab: {name} has a destination already')
            continue
        active = active_images(vm / f'{name}.sock')
        dirs.append({'dir': str(vm), 'vms': [{'name': f'{name}-dest', 'incoming': True, 'disks': [
            {'id': device, 'images': [{'path': path}]} for device, path in sorted(active.items())]}]})
        print(f'lab: destination of {name} waits on {vm / f"{name}-dest.sock"} with '
              + ', '.join(f'{d}={p}' for d, p in sorted(active.items())))
    if dirs:
        role(top, 'present', dirs)


def stop(top: Path) -> None:
    dirs = [{'dir': str(top / name), 'vms': []} for name in VMS if (top / name / RECORD).exists()]
    if not dirs:
        print(f'lab: no lab in {top}, nothing to stop')
        return
    role(top, 'absent', dirs)
    subprocess.run(['rm', '-rf', '--one-file-system', str(top)], check=True)
    print(f'lab: stopped the VMs of {len(dirs)} lab directories and removed {top}')


def main() -> None:
    commands = {'start': start, 'destinations': destinations, 'stop': stop}
    if len(sys.argv) != 3 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    try:
        commands[sys.argv[1]](Path(sys.argv[2]).absolute())
    except subprocess.CalledProcessError as err:
        sys.exit(f"lab: {' '.join(err.cmd)} failed (exit {err.returncode})")
    except OSError as err:
        sys.exit(f'lab: {err}')


if __name__ == '__main__':
    main()
