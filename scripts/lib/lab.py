"""Throwaway QEMU VMs and an inventory to try the collection's playbooks on (scripts/lab).

    scripts/lab start DIR          two paused, guest-less VMs (vm1, vm2) with known
                                   data, and DIR/inventory.yml for the playbooks
    scripts/lab destinations DIR   for each VM, a destination QEMU waiting for it
                                   (-incoming defer) on the images the VM uses now
    scripts/lab stop DIR           stop every QEMU of the lab and remove DIR

Each VM has disk0 (one qcow2 image, 256 MiB, 192 MiB of data) and disk1 (a base
image and two overlays). Everything lives in DIR; the lab writes nowhere else.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import typing as t
from pathlib import Path

from qemu.qmp import QMPClient, QMPError

VMS = ('vm1', 'vm2')
STATE = 'lab.json'


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def image(path: Path, size: str, writes: list[tuple[int, int, int]], backing: Path | None = None) -> None:
    """A qcow2 image, with ``(pattern, offset MiB, length MiB)`` written into it."""
    options = ['-b', str(backing), '-F', 'qcow2'] if backing else []
    run('qemu-img', 'create', '-q', '-f', 'qcow2', *options, str(path), *([size] if size else []))
    for pattern, offset, length in writes:
        run('qemu-io', '-f', 'qcow2', '-c', f'write -q -P {pattern:#x} {offset}M {length}M', str(path))


def images(vm: Path) -> dict[str, Path]:
    """The image files of a VM, named after it (moved disks share one directory)."""
    names = ('disk0', 'disk1-base', 'disk1-snap1', 'disk1-snap2')
    return {name: vm / f'{vm.name}-{name}.qcow2' for name in names}


def make_disks(vm: Path, seed: int) -> dict[str, Path]:
    """disk0 and disk1 (base <- snap1 <- snap2) of one VM; returns the active images."""
    files = images(vm)
    image(files['disk0'], '256M', [(seed, 0, 128), (seed + 1, 128, 64)])
    image(files['disk1-base'], '64M', [(seed + 2, 0, 64)])
    image(files['disk1-snap1'], '', [(seed + 3, 8, 8)], backing=files['disk1-base'])
    image(files['disk1-snap2'], '', [(seed + 4, 16, 8)], backing=files['disk1-snap1'])
    return {'disk0': files['disk0'], 'disk1': files['disk1-snap2']}


#: QEMU refuses deprecated QMP commands and arguments (where it has -compat).
COMPAT = 'deprecated-input=reject,deprecated-output=hide'


def compat_args() -> list[str]:
    """``-compat COMPAT`` if this qemu-system-x86_64 accepts it (probed, not by version)."""
    probe = subprocess.run(['qemu-system-x86_64', '-compat', COMPAT, '-version'],
                           capture_output=True, check=False)
    return ['-compat', COMPAT] if probe.returncode == 0 else []


def start_qemu(vm: Path, role: str, disks: dict[str, str], incoming: bool = False) -> int:
    """A paused, guest-less QEMU with ``disks`` (qdev id -> active image); returns its pid."""
    argv = ['qemu-system-x86_64', '-M', 'q35', '-S', '-nodefaults', '-display', 'none',
            '-m', '64', '-accel', 'tcg', *compat_args()]
    for device, path in disks.items():
        argv += ['-blockdev', f'driver=file,node-name={device}-file,filename={path}',
                 '-blockdev', f'driver=qcow2,node-name={device}-fmt,file={device}-file',
                 '-device', f'virtio-blk-pci,drive={device}-fmt,id={device}']
    sock = vm / f'{role}.sock'
    argv += ['-chardev', f'socket,id=qmp0,path={sock},server=on,wait=off',
             '-mon', 'chardev=qmp0,mode=control', '-daemonize',
             '-pidfile', str(vm / f'{role}.pid')]
    if incoming:
        argv += ['-incoming', 'defer']
    run(*argv)
    return int((vm / f'{role}.pid').read_text())


def inventory(top: Path, python: str) -> dict:
    hosts = {}
    for name in VMS:
        vm = top / name
        files = images(vm)
        hosts[name] = {
            'vm_socket': str(vm / 'qmp.sock'),
            'backup_socket': str(vm / 'qmp.sock'),
            'vm_hypervisor': 'hv1',
            'vm_dest_socket': str(vm / 'dest.sock'),
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
    for sub in ('backups', 'fast', *VMS):
        (top / sub).mkdir(parents=True, exist_ok=True)
    state: dict[str, list[int]] = {'pids': []}
    for seed, name in enumerate(VMS):
        disks = make_disks(top / name, 0x10 * (seed + 1))
        state['pids'].append(start_qemu(top / name, 'qmp', {d: str(p) for d, p in disks.items()}))
        (top / STATE).write_text(json.dumps(state))  # what stop must stop, even after a failure
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


def load(top: Path) -> dict[str, list[int]]:
    if not (top / STATE).exists():
        sys.exit(f'lab: no lab in {top} (scripts/lab start {top} makes one)')
    return t.cast('dict[str, list[int]]', json.loads((top / STATE).read_text()))


def destinations(top: Path) -> None:
    state = load(top)
    for name in VMS:
        vm = top / name
        if (vm / 'dest.sock').exists():
            print(f'lab: {name} has a destination already')
            continue
        disks = active_images(vm / 'qmp.sock')
        state['pids'].append(start_qemu(vm, 'dest', disks, incoming=True))
        (top / STATE).write_text(json.dumps(state))
        print(f'lab: destination of {name} waits on {vm / "dest.sock"} with '
              + ', '.join(f'{d}={p}' for d, p in sorted(disks.items())))


def stop(top: Path) -> None:
    if not (top / STATE).exists():
        print(f'lab: no lab in {top}, nothing to stop')
        return
    pids = load(top)['pids']
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 5
    for pid in pids:
        while time.monotonic() < deadline and os.path.exists(f'/proc/{pid}'):
            time.sleep(0.05)
        if os.path.exists(f'/proc/{pid}'):
            os.kill(pid, signal.SIGKILL)
    subprocess.run(['rm', '-rf', '--one-file-system', str(top)], check=True)
    print(f'lab: stopped {len(pids)} QEMU processes and removed {top}')


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
